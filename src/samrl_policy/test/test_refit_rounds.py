"""refit_rounds: the diagnostic that refits a fresh actor on some of a DAgger run's rounds."""
import argparse

import numpy as np
import pytest
import torch

from samrl_policy.dataset import DEMO_FIELDS, AggregatedDataset, ShardBuilder
from samrl_policy.refit_rounds import epoch_batches, parse_rounds, refit, round_weights


def test_equal_rounds_give_every_round_the_same_share():
    rounds = np.array([0] * 10 + [1] * 30 + [2] * 60)
    weights = round_weights(rounds, equal_rounds=True)
    shares = [weights[rounds == r].sum() for r in (0, 1, 2)]
    assert shares == pytest.approx([1 / 3] * 3)
    assert round_weights(rounds, equal_rounds=False) is None


def test_an_epoch_covers_every_sample_once_unless_weighted():
    rng = np.random.default_rng(0)
    batches = epoch_batches(rng, 10, 4, None)
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    weighted = epoch_batches(rng, 10, 4, np.full(10, 0.1))
    assert len(weighted) == 2 and all(len(b) == 4 for b in weighted)


def test_rounds_are_a_range_or_a_list_and_anything_else_is_refused():
    assert parse_rounds('0-3') == [0, 1, 2, 3] and parse_rounds('0,2,5') == [0, 2, 5]
    with pytest.raises(argparse.ArgumentTypeError, match='rounds'):
        parse_rounds('first')


def test_a_refit_learns_labels_that_depend_on_the_proprioception():
    builder, rng = ShardBuilder(), np.random.default_rng(0)
    for index in range(96):
        proprio = rng.uniform(-1, 1, 4)
        action = np.clip(np.r_[proprio, proprio[:3]], -1, 1)
        builder.append(torch.zeros(5, 64, 64), proprio=proprio, action=action, episode=index // 8,
                       round=index // 48, step=index % 8, view=0, view_params=np.zeros(5))
    data = AggregatedDataset(DEMO_FIELDS)
    data.add(builder.build())
    _, losses = refit(data, epochs=15, learning_rate=3e-3, batch_size=16, equal_rounds=True)
    assert losses[-1] < 0.3 * losses[0]


def test_label_statistics_count_each_state_once_and_the_labels_at_the_bound():
    from samrl_policy.refit_rounds import label_statistics
    builder = ShardBuilder()
    for step, (view, action) in enumerate([(0, [1.0, 0, 0, 0, 0, 0, 0]), (1, [1.0, 0, 0, 0, 0, 0, 0]),
                                           (0, [0.5, 0, 0, 0, 0, -1.0, 0])]):
        builder.append(torch.zeros(5, 8, 8), proprio=np.zeros(4), action=np.array(action), episode=0, round=3,
                       step=step, view=view, view_params=np.zeros(5))
    data = AggregatedDataset(DEMO_FIELDS)
    data.add(builder.build())
    stats = label_statistics(data)[3]
    assert stats['states'] == 2
    assert stats['saturated'][0] == 0.5 and stats['saturated'][5] == 0.5 and stats['mean_abs'][0] == 0.75


def test_dimension_errors_show_a_hedging_dimension():
    """An actor that gets dimension 0 right and answers 0.2 where dimension 5's label is -1 or +1."""
    from samrl_policy.refit_rounds import dimension_errors
    builder = ShardBuilder()
    labels = [[1.0, 0, 0, 0, 0, -1.0, 0], [-1.0, 0, 0, 0, 0, 1.0, 0], [0.2, 0, 0, 0, 0, 0.1, 0]]
    for step, action in enumerate(labels):
        builder.append(torch.zeros(5, 8, 8), proprio=np.full(4, float(step)), action=np.array(action), episode=0,
                       round=0, step=step, view=0, view_params=np.zeros(5))
    data = AggregatedDataset(DEMO_FIELDS)
    data.add(builder.build())

    class Hedging(torch.nn.Module):
        def forward(self, image, proprio):
            action = torch.zeros(len(proprio), 7)
            action[:, 0] = torch.tensor([1.0, -1.0, 0.2])[proprio[:, 0].long()]
            action[:, 5] = 0.2
            return action

    errors = dimension_errors(Hedging(), data)
    assert errors['mean_abs_error'][0] == 0.0 and errors['mean_abs_error'][5] == pytest.approx(0.7)
    assert errors['decided_share'][5] == pytest.approx(0.667, abs=1e-3)
    assert errors['decided_sign_agreement'][0] == 1.0 and errors['decided_sign_agreement'][5] == 0.5
    assert errors['decided_mean_abs_output'][5] == pytest.approx(0.2)


def test_a_heldout_shard_must_come_from_a_comparable_run_with_another_seed(tmp_path):
    import json

    from samrl_policy.refit_rounds import heldout_shards
    config = {'task': 'peg_insertion', 'image_size': [64, 64], 'image_zoom': 2.0, 'seed': 0}
    run = tmp_path / 'run' / 'actor'
    assert heldout_shards(run, config, None) == [run / 'data' / 'heldout.npz']

    def other_run(name: str, **changes) -> object:
        shard = tmp_path / name / 'actor' / 'data' / 'round_000.npz'
        shard.parent.mkdir(parents=True)
        shard.write_bytes(b'')
        (shard.parent.parent / 'config.json').write_text(json.dumps({**config, **changes}))
        return shard

    good = other_run('seed1', seed=1)
    assert heldout_shards(run, config, [good]) == [good]
    with pytest.raises(ValueError, match='seed 0'):
        heldout_shards(run, config, [other_run('same_seed')])
    with pytest.raises(ValueError, match='image_zoom'):
        heldout_shards(run, config, [other_run('zoom1', seed=1, image_zoom=1.0)])
    with pytest.raises(ValueError, match='not a shard of a run'):
        heldout_shards(run, config, [tmp_path / 'nowhere.npz'])


def test_episodes_are_counted_per_round():
    from samrl_policy.refit_rounds import episode_count
    builder = ShardBuilder()
    for round_index, episode in [(0, 0), (0, 0), (0, 1), (1, 0)]:
        builder.append(torch.zeros(5, 8, 8), proprio=np.zeros(4), action=np.zeros(7), episode=episode,
                       round=round_index, step=0, view=0, view_params=np.zeros(5))
    data = AggregatedDataset(DEMO_FIELDS)
    data.add(builder.build())
    assert episode_count(data) == 3
