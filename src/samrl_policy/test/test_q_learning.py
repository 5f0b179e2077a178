"""The sensing-aware Q (Eq. 9) on the toy task: returns, the fit, the card and resuming.

The actor here is an untrained one: Q's job is to predict the return of whatever actor it is
given, and on the toy task the returns of any actor vary strongly with the state, so a fit that
works ranks them.
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
from learning_toys import SMALL_NETWORK, SUCCESS_REWARD, Interrupted, ToyEnv, ToyViews  # noqa: E402

from samrl_policy import q_learning  # noqa: E402
from samrl_policy.checkpoints import load_q  # noqa: E402
from samrl_policy.interfaces import ACTION_DIM  # noqa: E402
from samrl_policy.dataset import RETURN_FIELDS, AggregatedDataset, ShardBuilder, load_shard  # noqa: E402
from samrl_policy.networks import Actor  # noqa: E402
from samrl_policy.q_learning import QConfig, discounted_returns, train_q  # noqa: E402
from samrl_policy.training import Run, read_table  # noqa: E402

CONFIG = QConfig(episodes=40, episodes_per_shard=10, epochs=10, batch_size=32, learning_rate=3e-3,
                 network=SMALL_NETWORK)
MIN_RANK_CORRELATION = 0.6      # Spearman's, between Q and the return on held-out episodes


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _actor() -> Actor:
    with torch.random.fork_rng():
        torch.manual_seed(1)
        return Actor(SMALL_NETWORK).eval()


def run_q(directory: Path, config: QConfig = CONFIG):
    with Run(directory, asdict(config), config.seed, 'pytest test_q_learning', progress=False) as run:
        return train_q(run, ToyEnv(), _actor(), ToyViews(), config)


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp('q') / 'run'
    q, record = run_q(directory)
    return directory, q, record


def test_discounted_returns_sum_the_following_rewards():
    rewards = np.array([1.0, -2.0, 0.5, 3.0])
    gamma = 0.9
    expected = [sum(gamma ** (i - t) * rewards[i] for i in range(t, len(rewards))) for t in range(len(rewards))]
    assert np.allclose(discounted_returns(rewards, gamma), expected)


def test_every_step_stores_its_return_and_each_episode_one_view(finished):
    directory, _, _ = finished
    shard = load_shard(directory / 'data' / 'q_000.npz', RETURN_FIELDS)
    for episode in np.unique(shard['episode']):
        steps = shard['episode'] == episode
        assert np.allclose(shard['return'][steps], discounted_returns(shard['reward'][steps], CONFIG.gamma), atol=1e-5)
        assert (shard['view_params'][steps] == shard['view_params'][steps][0]).all()
        assert np.array_equal(shard['step'][steps], np.arange(steps.sum()))


class LuckyEnv(ToyEnv):
    """The toy task, but episodes of even seeds succeed at their third step whatever the actor does."""

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self.lucky = seed % 2 == 0

    def step(self, action: np.ndarray):
        outcome = super().step(action)
        if self.lucky and self.t == 3:
            outcome = type(outcome)(outcome.reward + SUCCESS_REWARD, True, True)
        return outcome


def test_successful_and_failed_episodes_are_both_recorded_with_their_own_returns():
    builder, results = ShardBuilder(), []
    for seed in (10, 11):
        results.append(q_learning.run_episode(LuckyEnv(), _actor(), ToyViews(), seed, CONFIG,
                                              np.random.default_rng(seed), builder))
    shard = builder.build()
    assert [r['success'] for r in results] == [True, False] and results[0]['steps'] == 3
    assert shard['success'].tolist() == [True] * 3 + [False] * results[1]['steps']
    assert shard['reward'][2] > 0 > shard['reward'][3]           # the success reward, then a failure's step


def test_q_ranks_the_returns_of_held_out_episodes(finished):
    _, _, record = finished
    metrics = record['metrics']
    assert metrics['heldout_rank_correlation'] > MIN_RANK_CORRELATION, metrics
    assert metrics['heldout_mse'] < metrics['heldout_return_variance'], metrics     # better than the mean


def test_q_is_shipped_with_a_card_and_logs(finished):
    directory, q, record = finished
    loaded, stored = load_q(directory / 'checkpoints' / 'q.pt')
    assert stored == record and torch.equal(loaded.return_mean, q.return_mean)
    card = json.loads((directory / 'checkpoints' / 'q_card.json').read_text())
    assert card['data']['episodes'] == CONFIG.episodes and card['config']['gamma'] == CONFIG.gamma
    counts = card['data']
    assert counts['training_samples'] + counts['validation_samples'] + counts['heldout_samples'] == counts['samples']
    assert (directory / 'q_curves.png').is_file() and (directory / 'logs' / 'q_fit.csv').is_file()


def _stop_after(calls: int, function):
    """`function`, raising Interrupted from its (calls + 1)-th call on."""
    count = {'calls': 0}

    def wrapper(*args, **kwargs):
        count['calls'] += 1
        if count['calls'] > calls:
            raise Interrupted(f'stopped in call {count["calls"]} of {function.__name__}')
        return function(*args, **kwargs)
    return wrapper


def test_a_stopped_q_run_goes_on_and_ends_as_the_run_that_never_stopped(finished, tmp_path, monkeypatch):
    directory, q, record = finished
    stopped = tmp_path / 'run'
    real_episode, real_epoch = q_learning.run_episode, q_learning.train_epoch
    monkeypatch.setattr(q_learning, 'run_episode', _stop_after(25, real_episode))     # in the third shard
    with pytest.raises(Interrupted):
        run_q(stopped)
    assert sorted(p.name for p in (stopped / 'data').glob('q_*.npz')) == ['q_000.npz', 'q_001.npz']
    monkeypatch.setattr(q_learning, 'run_episode', real_episode)
    monkeypatch.setattr(q_learning, 'train_epoch', _stop_after(4, real_epoch))
    with pytest.raises(Interrupted):
        run_q(stopped)
    assert (stopped / 'checkpoints' / 'q_training.pt').is_file()
    monkeypatch.setattr(q_learning, 'train_epoch', real_epoch)
    resumed, resumed_record = run_q(stopped)
    assert resumed_record['metrics'] == record['metrics']
    for name, value in q.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    for table in ('q_epochs', 'q_fit'):
        assert (stopped / 'logs' / f'{table}.csv').read_text() == (directory / 'logs' / f'{table}.csv').read_text()


def test_a_finished_q_run_run_again_fits_nothing_and_returns_its_q(finished, tmp_path, monkeypatch):
    directory, q, record = finished
    shutil.copytree(directory, tmp_path / 'run')

    def no_fit(*args, **kwargs):
        raise AssertionError('a finished run was fitted again')
    monkeypatch.setattr(q_learning, 'fit', no_fit)
    monkeypatch.setattr(q_learning, 'collect_shards', no_fit)
    again, again_record = run_q(tmp_path / 'run')
    assert again_record['metrics'] == record['metrics']
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), q.state_dict().values()))


def test_the_published_q_is_the_epoch_with_the_lowest_validation_loss(finished):
    directory, q, record = finished
    rows = read_table(directory / 'logs' / 'q_epochs.csv')
    losses = [row['validation_loss'] for row in rows]
    metrics = record['metrics']
    assert len(losses) == CONFIG.epochs and metrics['best_epoch'] == int(np.argmin(losses))
    assert metrics['validation_loss'] == pytest.approx(min(losses))
    assert record['data']['validation_samples'] > 0 and not (directory / 'checkpoints' / 'q_best_epoch.pt').exists()
    data = AggregatedDataset(RETURN_FIELDS, CONFIG.max_bytes)
    data.load(sorted((directory / 'data').glob('q_*.npz')))
    with Run(directory, asdict(CONFIG), CONFIG.seed, 'pytest', progress=False) as run:     # the fit's own split
        train_idx, _ = data.split_by_episode(run.rng('q-split'), CONFIG.heldout_fraction)
        _, validation_idx = q_learning.split_episodes(data, train_idx, run.rng('q-validation'),
                                                      CONFIG.validation_fraction)
    assert q_learning.validation_loss(q, data, validation_idx) == pytest.approx(min(losses), rel=1e-5)


def test_rollouts_of_one_start_state_share_it_and_see_it_from_their_own_views(tmp_path):
    config = QConfig(episodes=8, episodes_per_shard=4, views_per_state=2, epochs=1, batch_size=32,
                     network=SMALL_NETWORK)
    directory = tmp_path / 'run'
    _, record = run_q(directory, config)
    shards = [load_shard(path, RETURN_FIELDS) for path in sorted((directory / 'data').glob('q_*.npz'))]
    first = {name: np.concatenate([shard[name] for shard in shards]) for name in ('episode', 'step', 'view_params')}
    starts = first['step'] == 0
    states, views = first['episode'][starts], first['view_params'][starts]
    assert len(states) == 8 and len(np.unique(states)) == 4
    for state in np.unique(states):
        pair = views[states == state]
        assert len(pair) == 2 and not np.allclose(pair[0], pair[1])
    assert record['data']['episodes'] == 4          # start states: the splits keep a state's views together
    assert isinstance(record['metrics']['heldout_view_pairs'], int)
    _, stored = load_q(directory / 'checkpoints' / 'q.pt')          # the weights-only loader takes its record
    assert stored['metrics']['heldout_view_pairs'] == record['metrics']['heldout_view_pairs']


def test_view_ranking_compares_q_only_between_views_of_one_state(monkeypatch):
    # start states 1 and 2, three and two views; state 3 has one view (no pair)
    episode = np.array([1, 1, 1, 2, 2, 3])
    returns = np.array([5.0, 1.0, 3.0, 2.0, 2.0, 9.0])      # state 2's two views tie: not a pair
    predicted = np.array([0.9, 0.1, 0.2, 0.0, 1.0, -5.0])   # orders (5, 1), (5, 3) right, (1, 3) right too
    data = AggregatedDataset(RETURN_FIELDS, 2 ** 20)
    builder = ShardBuilder()
    for e, r in zip(episode, returns):
        builder.append(torch.zeros(5, 4, 4), proprio=np.zeros(3), action=np.zeros(7), reward=0.0, success=False,
                       episode=int(e), step=0, view_params=np.zeros(6), **{'return': float(r)})
    data.add(builder.build())
    monkeypatch.setattr(q_learning, 'q_predictions', lambda q, data, indices: predicted[indices])
    ranking = q_learning.view_ranking(None, data, np.arange(6))
    assert ranking == {'view_pairs': 3, 'view_pair_accuracy': 1.0}
    predicted[2] = 0.05                                     # now (1, 3) is ordered wrong
    assert q_learning.view_ranking(None, data, np.arange(6))['view_pair_accuracy'] == pytest.approx(2 / 3)


def test_rollouts_of_one_state_branch_after_the_same_prefix_and_store_steps_from_there(tmp_path):
    config = QConfig(episodes=12, episodes_per_shard=6, views_per_state=3, branch_steps=4, epochs=1, batch_size=32,
                     network=SMALL_NETWORK)
    directory = tmp_path / 'run'
    with Run(directory, asdict(config), config.seed, 'pytest', progress=False) as run:
        prefixes = [q_learning.prefix_length(run, config, rollout) for rollout in range(config.episodes)]
        assert all(prefixes[k] == prefixes[k - k % 3] for k in range(config.episodes))    # one per state
        assert len(set(prefixes)) > 1 and max(prefixes) <= config.branch_steps
    run_q(directory, config)
    data = AggregatedDataset(RETURN_FIELDS, CONFIG.max_bytes)
    data.load(sorted((directory / 'data').glob('q_*.npz')))
    starts = np.flatnonzero(data.arrays['step'] == 0)
    assert len(starts) == config.episodes
    for state in np.unique(data.arrays['episode']):
        first = starts[data.arrays['episode'][starts] == state]
        proprio = data.arrays['proprio'][first]
        assert len(first) == 3 and np.allclose(proprio, proprio[0])    # the same branch state, three views
    env, views = ToyEnv(), ToyViews()                                   # a prefix of k steps is where the state is
    seed = q_learning.state_seed(config, 0)
    assert q_learning.branch_state(env, _actor(), views, seed, prefixes[0]) == prefixes[0] and env.t == prefixes[0]


def test_a_prefix_that_ends_the_episode_branches_at_the_start():
    env = LuckyEnv()                                                     # even seeds end at step 3
    assert q_learning.branch_state(env, _actor(), ToyViews(), 10, 5) == 0 and env.t == 0
    assert q_learning.branch_state(env, _actor(), ToyViews(), 10, 2) == 2 and env.t == 2


def test_the_ranking_term_is_small_when_q_orders_the_pair_and_pulls_it_that_way():
    data, builder, env, views = AggregatedDataset(RETURN_FIELDS, 2 ** 20), ShardBuilder(), ToyEnv(), ToyViews()
    env.reset(1)
    for k, params in enumerate(views.sample(np.random.default_rng(0), 2)):     # one state, two views
        obs = env.observe(views.camera_pose(params))
        builder.append(obs.image, proprio=obs.proprio, action=np.zeros(ACTION_DIM), reward=0.0, success=False,
                       episode=1, step=0, view_params=params.numpy(), **{'return': float(k)})
    data.add(builder.build())
    pairs = q_learning.view_pairs(data, np.arange(2))
    assert pairs.tolist() == [[1, 0]]                                    # the higher return first
    with torch.random.fork_rng():
        torch.manual_seed(0)
        q = q_learning.QNetwork(SMALL_NETWORK)
    optimizer = torch.optim.SGD(q.parameters(), lr=0.05)
    before = q_learning.ranking_loss(q, data, pairs).item()
    for _ in range(20):
        loss = q_learning.ranking_loss(q, data, pairs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert q_learning.ranking_loss(q, data, pairs).item() < before
    assert q_learning.view_ranking(q, data, np.arange(2)) == {'view_pairs': 1, 'view_pair_accuracy': 1.0}
    with pytest.raises(ValueError, match='views_per_state >= 2'):
        QConfig(ranking_weight=1.0)


def test_a_ranking_fit_logs_its_term_and_ranks_held_out_views_better_than_chance(tmp_path):
    config = QConfig(episodes=60, episodes_per_shard=20, views_per_state=6, epochs=8, batch_size=32,
                     learning_rate=3e-3, ranking_weight=1.0, network=SMALL_NETWORK)
    _, record = run_q(tmp_path / 'run', config)
    rows = read_table(tmp_path / 'run' / 'logs' / 'q_epochs.csv')
    assert all(row['ranking_loss'] > 0 for row in rows) and rows[-1]['ranking_loss'] < rows[0]['ranking_loss']
    assert all(0.0 <= row['validation_view_pair_accuracy'] <= 1.0 for row in rows)
    assert (tmp_path / 'run' / 'q_curves.png').is_file()
    metrics = record['metrics']
    assert metrics['training_view_pairs'] > 0 and metrics['heldout_view_pairs'] > 0, metrics
    assert metrics['training_view_pair_accuracy'] > 0.5, metrics


def test_a_training_fraction_fits_fewer_states_against_the_same_held_out_and_validation_states(finished, tmp_path):
    _, _, whole = finished
    _, part = run_q(tmp_path / 'run', replace(CONFIG, training_fraction=0.5))
    for split in ('heldout_samples', 'validation_samples', 'samples'):
        assert part['data'][split] == whole['data'][split], split
    assert part['data']['training_states'] == round(0.5 * whole['data']['training_states'])
    assert part['data']['training_samples'] < whole['data']['training_samples']
    with pytest.raises(ValueError, match='training_fraction'):
        replace(CONFIG, training_fraction=0.0)
