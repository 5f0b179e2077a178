"""DAgger (Eq. 8) on the toy task: it learns, it leaves a complete run directory, and it resumes.

A stopped run (here: killed once while fitting round 1 and once while collecting round 2) must
end exactly as the run that never stopped: same weights, same logs, same card metrics.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_toys import (  # noqa: E402  (test helpers beside this file)
    NARROW_VIEWS,
    SMALL_NETWORK,
    Interrupted,
    StoppingExpert,
    ToyEnv,
    ToyExpert,
    ToyViews,
)

from samrl_policy import dagger  # noqa: E402
from samrl_policy.checkpoints import load_actor  # noqa: E402
from samrl_policy.dagger import (  # noqa: E402
    DAggerConfig,
    ExponentialBetaSchedule,
    LinearBetaSchedule,
    action_errors,
    best_round,
    beta_schedule,
    train_dagger,
)
from samrl_policy.dataset import (  # noqa: E402
    DEMO_FIELDS,
    AggregatedDataset,
    DatasetError,
    decode_images,
    encode_images,
    load_shard,
    save_shard,
)
from samrl_policy.networks import Actor  # noqa: E402
from samrl_policy.training import FitSettings, Run, RunError, episode_seed, read_table, running_path  # noqa: E402

CONFIG = DAggerConfig(rounds=3, episodes_per_round=4, views_per_state=3, beta_parameter=2, epochs_per_round=8,
                      batch_size=32, learning_rate=3e-3, learning_rate_schedule='cosine', heldout_episodes=3,
                      eval_episodes=3, network=SMALL_NETWORK)
ERROR_REDUCTION = 0.75          # the trained actor's held-out action error, at most this fraction of an untrained one's


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_dagger(directory: Path, config: DAggerConfig = CONFIG, expert: ToyExpert | None = None):
    with Run(directory, asdict(config), config.seed, 'pytest test_dagger', progress=False) as run:
        return train_dagger(run, ToyEnv(), expert or ToyExpert(), ToyViews(**NARROW_VIEWS), config)


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    """(run directory, final actor, its record) of a run that never stopped."""
    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp('dagger') / 'run'
    actor, record = run_dagger(directory)
    return directory, actor, record


def test_the_learning_rate_is_constant_or_decays_over_the_epoch_budget():
    assert [FitSettings(4, 0.1).rate(epoch) for epoch in range(4)] == [0.1] * 4
    cosine = FitSettings(4, 0.1, schedule='cosine')
    assert [round(cosine.rate(epoch), 6) for epoch in range(5)] == [0.1, 0.085355, 0.05, 0.014645, 0.0]
    with pytest.raises(ValueError, match='schedule must be one of'):
        DAggerConfig(learning_rate_schedule='step')


def test_each_round_fit_logs_its_decaying_rate(finished):
    rows = read_table(finished[0] / 'logs' / 'dagger_epochs.csv')
    for name in {row['name'] for row in rows}:
        rates = [row['learning_rate'] for row in rows if row['name'] == name]
        assert rates[0] == CONFIG.learning_rate and all(np.diff(rates) < 0), (name, rates)


def test_beta_starts_at_one_and_follows_its_schedule():
    linear, exponential = LinearBetaSchedule(4), ExponentialBetaSchedule(0.5)
    assert [linear(r) for r in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert [exponential(r) for r in range(3)] == [1.0, 0.5, 0.25]
    assert beta_schedule('linear', 2)(1) == 0.5
    with pytest.raises(ValueError, match='unknown beta schedule'):
        beta_schedule('cosine', 1)


def test_dagger_reduces_the_action_error_against_the_expert(finished):
    directory, actor, record = finished
    heldout = AggregatedDataset(DEMO_FIELDS)
    heldout.add(load_shard(directory / 'data' / 'heldout.npz', DEMO_FIELDS))
    torch.manual_seed(0)
    untrained = action_errors(Actor(SMALL_NETWORK), heldout)['l2']
    rounds = read_table(directory / 'logs' / 'dagger_rounds.csv')
    assert rounds[-1]['heldout_l2'] < ERROR_REDUCTION * untrained, (rounds[-1], untrained)
    epochs = read_table(directory / 'logs' / 'dagger_epochs.csv')
    assert epochs[-1]['loss'] < 0.5 * epochs[0]['loss']
    assert [row['beta'] for row in rounds] == [1.0, 0.5, 0.0]
    assert rounds[-1]['heldout_l2'] < rounds[0]['heldout_l2']


def test_the_actor_pins_the_actions_the_expert_kept_constant_in_round_0_when_asked(finished, tmp_path):
    _, actor, _ = finished
    assert actor.config.pinned_actions == ()                                   # off by default
    pinned, _ = run_dagger(tmp_path / 'pinned', replace(CONFIG, rounds=1, pin_constant_actions=True))
    assert pinned.config.pinned_actions == ((3, 0.0), (4, 0.0), (5, 0.0), (6, 0.0))  # ToyExpert moves x, y, z only


def test_a_run_leaves_data_checkpoints_cards_logs_and_curves(finished):
    directory, actor, record = finished
    for r in range(CONFIG.rounds):
        assert (directory / 'data' / f'round_{r:03d}.npz').is_file()
        assert (directory / 'checkpoints' / f'actor_round_{r:03d}_card.json').is_file()
    assert not list(directory.rglob('*_training.pt')) and not list(directory.rglob('*.partial'))
    loaded, stored = load_actor(directory / 'checkpoints' / 'actor.pt')
    assert stored == record and torch.equal(loaded.head[0].weight, actor.head[0].weight)
    card = json.loads((directory / 'checkpoints' / 'actor_card.json').read_text())
    assert card['command'] == 'pytest test_dagger' and card['seed'] == CONFIG.seed
    assert card['data']['rounds'] == card['selected_round'] + 1
    assert card['data']['samples'] == card['metrics']['samples']
    assert 0.0 <= card['metrics']['success_rate'] <= 1.0
    assert json.loads((directory / 'config.json').read_text())['views_per_state'] == CONFIG.views_per_state
    steps = [row['step'] for row in read_table(directory / 'logs' / 'dagger_epochs.csv')]
    assert steps == list(range(len(steps))) and len(steps) == card['epochs_total']
    assert list((directory / 'logs' / 'tensorboard').glob('events.out.tfevents.*'))
    assert (directory / 'dagger_curves.png').stat().st_size > 0


def test_the_published_actor_is_the_round_that_succeeded_most(finished):
    directory, actor, record = finished
    rates = [row['success_rate'] for row in read_table(directory / 'logs' / 'dagger_rounds.csv')]
    assert record['round_success_rates'] == rates and rates[record['selected_round']] == max(rates)
    selected, _ = load_actor(directory / 'checkpoints' / f"actor_round_{record['selected_round']:03d}.pt")
    assert torch.equal(selected.head[0].weight, actor.head[0].weight)
    assert best_round([{'metrics': {'success_rate': r}} for r in (0.2, 0.6, 0.4, 0.6)]) == 3   # later on a tie


def test_each_state_is_labelled_once_and_rendered_from_k_views_the_acting_view_first(finished):
    directory, _, _ = finished
    shards = [load_shard(directory / 'data' / f'round_{r:03d}.npz', DEMO_FIELDS) for r in range(CONFIG.rounds)]
    for r, shard in enumerate(shards):
        assert (shard['round'] == r).all()
        views = shard['view'].reshape(-1, CONFIG.views_per_state)
        assert (views == np.arange(CONFIG.views_per_state)).all()
        labels = shard['action'].reshape(-1, CONFIG.views_per_state, 7)
        assert (labels == labels[:, :1]).all()                  # one label per state
        params = shard['view_params'].reshape(-1, CONFIG.views_per_state, 3)
        first_of_episode = shard['step'].reshape(-1, CONFIG.views_per_state)[:, 0] == 0
        episode_view = np.maximum.accumulate(np.where(first_of_episode, np.arange(len(params)), 0))
        assert (params[:, 0] == params[episode_view, 0]).all()  # view 0 is the episode's acting view


def test_a_stopped_run_goes_on_and_ends_as_the_run_that_never_stopped(finished, tmp_path, monkeypatch):
    directory, actor, record = finished
    stopped = tmp_path / 'run'
    fits = {'epochs': 0}

    def epoch_then_stop(*args, **kwargs):
        fits['epochs'] += 1
        if fits['epochs'] > CONFIG.epochs_per_round + 3:         # in round 1's fit, after 3 epochs
            raise Interrupted('stopped while fitting')
        return real_epoch(*args, **kwargs)

    real_epoch = dagger.train_epoch
    monkeypatch.setattr(dagger, 'train_epoch', epoch_then_stop)
    with pytest.raises(Interrupted):
        run_dagger(stopped)
    assert (stopped / 'checkpoints' / 'actor_round_001_training.pt').is_file()
    monkeypatch.setattr(dagger, 'train_epoch', real_epoch)
    with pytest.raises(Interrupted):                            # round 1's fit goes on; round 2 stops at its 3rd label
        run_dagger(stopped, expert=StoppingExpert(stop_after=3))
    assert not (stopped / 'data' / 'round_002.npz').exists()
    resumed, resumed_record = run_dagger(stopped)
    for name, value in actor.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert resumed_record['metrics'] == record['metrics']
    for table in ('dagger_epochs', 'dagger_rounds'):
        assert (stopped / 'logs' / f'{table}.csv').read_text() == (directory / 'logs' / f'{table}.csv').read_text()


def test_rerunning_a_finished_run_collects_and_fits_nothing(finished, tmp_path, monkeypatch):
    copy = tmp_path / 'run'
    shutil.copytree(finished[0], copy)
    monkeypatch.setattr(dagger, 'train_epoch', lambda *a, **k: pytest.fail('fitted again'))
    expert = ToyExpert()
    _, record = run_dagger(copy, expert=expert)
    assert expert.calls == 0 and record == finished[2]


def test_a_run_directory_refuses_another_configuration(finished, tmp_path):
    copy = tmp_path / 'run'
    shutil.copytree(finished[0], copy)
    with pytest.raises(RunError, match="differs in \\['rounds'\\]"):
        Run(copy, asdict(replace(CONFIG, rounds=4)), CONFIG.seed, 'pytest')


def test_fixed_view_renders_the_default_view_only_and_stops_at_the_target_error(tmp_path):
    """Table I's protocol: the Fixed-View actor's fit stops at a given training error."""
    target = 0.5
    config = replace(CONFIG, fixed_view=True, rounds=2, epochs_per_round=40, target_error=target)
    _, record = run_dagger(tmp_path / 'fixed', config)
    shard = load_shard(tmp_path / 'fixed' / 'data' / 'round_000.npz', DEMO_FIELDS)
    assert (shard['view'] == 0).all() and np.allclose(shard['view_params'], ToyViews().default().numpy())
    rounds = read_table(tmp_path / 'fixed' / 'logs' / 'dagger_rounds.csv')
    assert all(row['final_training_error'] <= target and row['epochs'] < config.epochs_per_round for row in rounds)


def test_the_data_set_stores_compressed_images_and_refuses_bad_shards(tmp_path):
    rng = np.random.default_rng(0)
    images = torch.rand(6, 5, 8, 8)
    images[:, 3] = torch.from_numpy(rng.uniform(0.2, 1.8, (6, 8, 8))).float()
    stored = encode_images(images)
    assert stored['colour_mask'].dtype == np.uint8 and stored['depth'].dtype == np.float16
    decoded = decode_images(stored['colour_mask'], stored['depth'])
    assert (decoded[:, [0, 1, 2, 4]] - images[:, [0, 1, 2, 4]]).abs().max() <= 0.5 / 255 + 1e-6
    assert (decoded[:, 3] - images[:, 3]).abs().max() <= 1e-3          # float16: about 1 mm at 2 m
    shard = {**stored, **{name: np.zeros((6, 2)) for name in DEMO_FIELDS}, 'episode': np.repeat([1, 2, 3], 2)}
    save_shard(tmp_path / 'a.npz', shard)
    data = AggregatedDataset(DEMO_FIELDS, max_bytes=2 * sum(a.nbytes for a in shard.values()))
    data.load([tmp_path / 'a.npz', tmp_path / 'a.npz'])
    assert len(data) == 12
    with pytest.raises(DatasetError, match='over its bound'):
        data.add(shard)
    train, held = data.split_by_episode(rng, 0.34)
    assert not set(data.arrays['episode'][train]) & set(data.arrays['episode'][held])
    (tmp_path / 'cut.npz').write_bytes((tmp_path / 'a.npz').read_bytes()[:300])
    with pytest.raises(DatasetError, match='cut.npz is not a readable data shard'):
        load_shard(tmp_path / 'cut.npz', DEMO_FIELDS)
    save_shard(tmp_path / 'few.npz', {**stored, 'proprio': np.zeros((6, 2))})
    with pytest.raises(DatasetError, match='lacks the fields'):
        load_shard(tmp_path / 'few.npz', DEMO_FIELDS)


def test_a_resumed_round_skips_the_episode_a_process_died_in(tmp_path):
    """nimble can abort the process inside an episode; the resumed run must not die in it again."""
    directory = tmp_path / 'run'
    (directory / 'data').mkdir(parents=True)
    died_in = episode_seed('dagger', CONFIG.seed, 1)
    ledger_file = running_path(directory / 'data' / 'round_000.npz')
    ledger_file.write_text(json.dumps({'skipped': [], 'running': died_in}))   # as an aborted process leaves it
    run_dagger(directory)
    stats = json.loads((directory / 'data' / 'round_000.json').read_text())
    shard = load_shard(directory / 'data' / 'round_000.npz', DEMO_FIELDS)
    assert stats['skipped_episodes'] == 1 and stats['episodes'] == CONFIG.episodes_per_round - 1
    assert died_in not in set(shard['episode'].tolist()) and not ledger_file.exists()
