"""The sensing-aware Q(I, a), fitted to the actor's discounted returns (paper Sec. III-D.3, Eq. 9).

Data: the trained actor acts alone in M, each episode from one camera pose drawn from the view
distribution and kept for the episode (the pose the actor sees is what Q must judge: from a
poor view the actor acts worse and the return is lower). Every step stores the render, the
proprioception, the actor's action a_t and the discounted return from there,

    R_t = sum_{i >= t} gamma^(i - t) r_i,

with the env's own rewards, for successful and failed episodes alike. (The paper prints
gamma^(T - i), which weighs the last reward most for every t; we read it as the usual return.)

Views of one state. With `views_per_state` > 1, consecutive rollouts share a state and each sees it
from its own view, so the data show what the view alone does to the return. The shared state is
the start state, or with `branch_steps` > 0 the state after a prefix of 0..branch_steps actor steps
from the default view (drawn per state; the prefix is not stored): the view step acts at every
control step, so Q must rank views mid-episode too. Samples store `step` counted from that branch
state, so step 0 marks the states whose views are compared.

Fit: Eq. 9, ||Q(I_t, a_t) - R_t||^2 averaged over samples, on standardised returns (networks.py
keeps the scale). Eq. 9 alone is dominated by differences between states and time steps, which
the view step never compares; `ranking_weight` > 0 adds a view-ranking term on the pairs of
views of one branch state whose returns differ, log(1 + exp(-(Q_better - Q_worse))) in
standardised units (Bradley-Terry), so Q learns what the view step asks of it: which of two
views of the same state the actor does better from.

The episodes (states) are split three ways, whole each: training, validation and held-out. Q
memorises its training returns within a few tens of epochs (needle threading: a standardised
training loss of 0.003 against a held-out MSE of 28 for a return variance of 37), so the published
Q is the epoch with the lowest validation loss (early stopping), and the held-out episodes, used for
nothing else, measure the fit: mean squared error in the reward's units, Spearman's rank
correlation between Q and R_t, and how often Q orders two views of one state as their returns do,
which is what the view step relies on (it only compares Q at two poses of one state).

Rollouts are saved in shards of episodes_per_shard episodes (data/q_NNN.npz), so a stopped run
collects only what it has not yet saved, and the fit goes on from its last epoch (training.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.stats import spearmanr

from samrl_policy.checkpoints import load_q, save_network
from samrl_policy.dagger import learner_action
from samrl_policy.dataset import RETURN_FIELDS, AggregatedDataset, ShardBuilder, save_shard
from samrl_policy.interfaces import Env, ViewDistribution
from samrl_policy.networks import Actor, NetworkConfig, QNetwork, network_config_for
from samrl_policy.training import (
    EpisodeLedger,
    FitSettings,
    Panel,
    Run,
    episode_seed,
    finish_fit,
    fit,
    plot_curves,
    running_path,
)

GAMMA = 0.98                    # discount per control step: returns look about 1 / (1 - GAMMA) = 50 steps ahead
RETURN_TIE = 1e-6               # returns closer than this do not order two views
EVAL_BATCH = 256                # samples a forward pass when measuring the fit (memory, not results)
Q_NAME = 'q'


@dataclass(frozen=True)
class QConfig:
    """One Q run."""

    episodes: int = 200
    episodes_per_shard: int = 20
    views_per_state: int = 1            # rollouts from one state, each from its own random view
    branch_steps: int = 0               # most actor steps (default view) before those rollouts branch
    max_episode_steps: int = 60         # a cap; the env's own time limit usually ends episodes first
    gamma: float = GAMMA
    epochs: int = 30
    target_loss: float = 0.0            # stop once an epoch's (standardised) training loss is <= this
    batch_size: int = 64
    learning_rate: float = 1e-3
    ranking_weight: float = 0.0         # of the view-ranking term beside Eq. 9 (needs views_per_state > 1)
    heldout_fraction: float = 0.2       # of the episodes, kept out of the fit to measure it
    validation_fraction: float = 0.15   # of the other episodes, kept out of the fit to pick its epoch (0: the last)
    training_fraction: float = 1.0      # of the remaining states fitted (< 1: a learning curve over the data, with
                                        # the same held-out and validation states as the whole run)
    seed: int = 0
    network: NetworkConfig | None = None  # None: NetworkConfig defaults with the env's proprio size
    max_bytes: int = 6 * 2 ** 30

    def __post_init__(self) -> None:
        counts = {name: getattr(self, name) for name in ('episodes', 'episodes_per_shard', 'views_per_state',
                                                         'max_episode_steps', 'epochs', 'batch_size')}
        if min(counts.values()) < 1:
            raise ValueError(f'QConfig needs at least 1 of each of {counts}')
        if self.episodes < 2:
            raise ValueError(f'episodes {self.episodes} must be >= 2: Q is fitted on some and measured on others')
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f'gamma {self.gamma} must be in [0, 1], heldout_fraction {self.heldout_fraction} '
                             f'in (0, 1)')
        if not 0.0 < self.training_fraction <= 1.0:
            raise ValueError(f'training_fraction {self.training_fraction} must be in (0, 1]')
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f'validation_fraction {self.validation_fraction} must be in [0, 1)')
        if self.branch_steps < 0 or self.ranking_weight < 0.0:
            raise ValueError(f'branch_steps {self.branch_steps} and ranking_weight {self.ranking_weight} must be >= 0')
        if self.ranking_weight > 0.0 and self.views_per_state < 2:
            raise ValueError(f'ranking_weight {self.ranking_weight} ranks views of one state: it needs '
                             f'views_per_state >= 2, got {self.views_per_state}')


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """R_t = sum_{i >= t} gamma^(i - t) r_i for every step t of one episode."""
    returns = np.zeros(len(rewards))
    following = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns


# -- collecting the actor's returns ---------------------------------------------------------------
@torch.no_grad()
def run_episode(env: Env, actor: Actor, views: ViewDistribution, seed: int, config: QConfig,
                rng: np.random.Generator, builder: ShardBuilder, prefix_steps: int = 0) -> dict:
    """The actor alone from one random view, after `prefix_steps` from the default view (the branch
    state); every step from the branch state on into `builder` with its return."""
    prefix_steps = branch_state(env, actor, views, seed, prefix_steps)
    params = views.sample(rng, 1)[0]
    pose = views.camera_pose(params)
    steps = []
    for _ in range(config.max_episode_steps - prefix_steps):
        obs = env.observe(pose)
        action = learner_action(actor, obs)
        outcome = env.step(action)
        steps.append((obs, action, float(outcome.reward)))
        if outcome.done:
            break
    success = bool(outcome.success)
    returns = discounted_returns(np.array([reward for _, _, reward in steps]), config.gamma)
    for step, ((obs, action, reward), ret) in enumerate(zip(steps, returns)):
        builder.append(obs.image, proprio=obs.proprio, action=action, reward=reward, success=success,
                       episode=seed, step=step, view_params=params, **{'return': ret})
    return {'success': success, 'return': float(returns[0]), 'steps': len(steps), 'prefix_steps': prefix_steps}


def branch_state(env: Env, actor: Actor, views: ViewDistribution, seed: int, prefix_steps: int) -> int:
    """Put `env` in the state after the actor's first `prefix_steps` steps from the default view; if the
    episode ends within them, in its start state. The prefix length used."""
    env.reset(seed)
    pose = views.camera_pose(views.default())
    for _ in range(prefix_steps):
        if env.step(learner_action(actor, env.observe(pose))).done:
            env.reset(seed)                     # M is deterministic: every view of this state does the same
            return 0
    return prefix_steps


def collect_shards(run: Run, env: Env, actor: Actor, views: ViewDistribution, config: QConfig) -> list[dict]:
    """Roll out every shard a stopped run has not saved yet; the statistics of those collected now."""
    stats = []
    shards = range(-(-config.episodes // config.episodes_per_shard))
    for shard in run.bar(shards, desc='Q rollouts', unit='shard', leave=False):
        path = run.data_dir / f'q_{shard:03d}.npz'
        if path.exists():
            continue
        first = shard * config.episodes_per_shard
        builder, rng, ledger = ShardBuilder(), run.rng('q-collect', shard), EpisodeLedger(running_path(path))
        rollouts = range(first, min(first + config.episodes_per_shard, config.episodes))
        for index in ledger.pending(rollouts):      # without the episodes an earlier process died in
            with ledger.episode(index):
                stats.append(run_episode(env, actor, views, state_seed(config, index), config, rng, builder,
                                         prefix_length(run, config, index)))
        save_shard(path, builder.build())
        ledger.close()
    return stats


def state_seed(config: QConfig, rollout: int) -> int:
    """The start state of a rollout: `views_per_state` consecutive rollouts share it (and its `episode` id,
    so the splits keep all views of a state on one side)."""
    return episode_seed('q', config.seed, rollout // config.views_per_state)


def prefix_length(run: Run, config: QConfig, rollout: int) -> int:
    """The actor steps before a rollout branches: drawn in 0..branch_steps once per state, so shared by its views."""
    if config.branch_steps == 0:
        return 0
    return int(run.rng('q-branch', rollout // config.views_per_state).integers(config.branch_steps + 1))


# -- fitting (Eq. 9) ------------------------------------------------------------------------------
def q_loss(q: QNetwork, images: torch.Tensor, proprio: torch.Tensor, actions: torch.Tensor,
           returns: torch.Tensor) -> torch.Tensor:
    """Eq. 9 squared, in standardised units: mean of (Q_std(I, a) - (R - mean) / std)^2."""
    target = (returns - q.return_mean) / q.return_std
    return (q.standardised(images, proprio, actions) - target).pow(2).mean()


def ranking_loss(q: QNetwork, data: AggregatedDataset, pairs: np.ndarray) -> torch.Tensor:
    """The view-ranking term: mean of log(1 + exp(-(Q_std(better) - Q_std(worse)))) over (better, worse) pairs."""
    margin = q.standardised(*_inputs(data.return_batch(pairs[:, 0]))) - q.standardised(
        *_inputs(data.return_batch(pairs[:, 1])))
    return torch.nn.functional.softplus(-margin).mean()


def validation_loss(q: QNetwork, data: AggregatedDataset, indices: np.ndarray, pairs: np.ndarray | None = None,
                    ranking_weight: float = 0.0) -> float:
    """The fit's standardised loss on samples Q is not fitted to: Eq. 9, plus the weighted ranking term on
    their view pairs."""
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(indices), EVAL_BATCH):
            batch = data.return_batch(indices[start:start + EVAL_BATCH])
            total += q_loss(q, batch.images, batch.proprio, batch.actions, batch.returns).item() * len(batch.returns)
        loss = total / len(indices)
        if ranking_weight > 0.0 and pairs is not None and len(pairs):
            chunks = [pairs[start:start + EVAL_BATCH] for start in range(0, len(pairs), EVAL_BATCH)]
            ranked = sum(ranking_loss(q, data, chunk).item() * len(chunk) for chunk in chunks)
            loss += ranking_weight * ranked / len(pairs)
    return loss


def train_epoch(q: QNetwork, optimizer: torch.optim.Optimizer, data: AggregatedDataset, indices: np.ndarray,
                rng: np.random.Generator, batch_size: int, pairs: np.ndarray | None = None,
                ranking_weight: float = 0.0) -> dict:
    """One pass over the training samples; its mean loss (and, ranking, the mean of each term)."""
    ranking = ranking_weight > 0.0 and pairs is not None and len(pairs) > 0
    total = ranked = 0.0
    for batch_indices in data.minibatches(rng, batch_size, indices):
        batch = data.return_batch(batch_indices)                    # sample (decoded to float32)
        loss = q_loss(q, batch.images, batch.proprio, batch.actions, batch.returns)
        if ranking:                                                 # as many view pairs, drawn with replacement
            rank = ranking_loss(q, data, pairs[rng.integers(len(pairs), size=batch_size)])
            ranked += rank.item() * len(batch_indices)
            loss = loss + ranking_weight * rank
        optimizer.zero_grad(set_to_none=True)                       # Q step
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch_indices)
    metrics = {'loss': total / len(indices)}
    if ranking:
        metrics['ranking_loss'] = ranked / len(indices)
    return metrics


@torch.no_grad()
def q_predictions(q: QNetwork, data: AggregatedDataset, indices: np.ndarray) -> np.ndarray:
    """Q(I, a) of these samples."""
    predictions = [q(*_inputs(data.return_batch(indices[start:start + EVAL_BATCH])))
                   for start in range(0, len(indices), EVAL_BATCH)]
    return torch.cat(predictions).numpy() if predictions else np.zeros(0)


def _inputs(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return batch.images, batch.proprio, batch.actions


def view_pairs(data: AggregatedDataset, indices: np.ndarray) -> np.ndarray:
    """(better, worse) sample indices, (pairs, 2): the first steps of two rollouts from one branch state
    (`views_per_state` > 1) whose returns differ, the higher return first."""
    first = indices[data.arrays['step'][indices] == 0]
    returns, states = data.arrays['return'][first].astype(np.float64), data.arrays['episode'][first]
    pairs = []
    for state in np.unique(states):
        at = np.flatnonzero(states == state)
        for i, j in ((i, j) for k, i in enumerate(at) for j in at[k + 1:]):
            if abs(returns[i] - returns[j]) > RETURN_TIE:
                pairs.append((first[i], first[j]) if returns[i] > returns[j] else (first[j], first[i]))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def view_ranking(q: QNetwork, data: AggregatedDataset, indices: np.ndarray) -> dict:
    """How often Q orders two views of one branch state as the actor's returns from them do.

    This is what the view step needs of Q (it compares Q at two poses of one state), and what the
    pooled rank correlation does not measure: most of its spread is between states."""
    pairs = view_pairs(data, indices)
    if not len(pairs):
        return {'view_pairs': 0, 'view_pair_accuracy': None}
    samples = np.unique(pairs)
    predicted = np.zeros(len(data))
    predicted[samples] = q_predictions(q, data, samples)
    right = int(np.sum(predicted[pairs[:, 0]] > predicted[pairs[:, 1]]))
    return {'view_pairs': len(pairs), 'view_pair_accuracy': right / len(pairs)}


@torch.no_grad()
def q_fit(q: QNetwork, data: AggregatedDataset, indices: np.ndarray) -> dict:
    """How well Q predicts R_t on these samples: MSE (reward units squared) and Spearman's rank correlation."""
    predicted = q_predictions(q, data, indices)
    returns = data.arrays['return'][indices].astype(np.float64)
    rank = spearmanr(predicted, returns).statistic if np.ptp(returns) > 0 and np.ptp(predicted) > 0 else 0.0
    return {'mse': float(np.mean((predicted - returns) ** 2)), 'rank_correlation': float(rank),
            'return_variance': float(np.var(returns))}


# -- the run --------------------------------------------------------------------------------------
def train_q(run: Run, env: Env, actor: Actor, views: ViewDistribution, config: QConfig) -> tuple[QNetwork, dict]:
    """Collect the actor's returns, fit Q on the training episodes, report the held-out fit; (Q, its record).

    A run that already published q.pt returns it: nothing is collected or fitted again."""
    if (run.checkpoint_dir / 'q.pt').exists():
        return load_q(run.checkpoint_dir / 'q.pt')
    collect_shards(run, env, actor.eval(), views, config)
    data = AggregatedDataset(RETURN_FIELDS, config.max_bytes)
    data.load(sorted(run.data_dir.glob('q_*.npz')))
    train_idx, heldout_idx = data.split_by_episode(run.rng('q-split'), config.heldout_fraction)
    train_idx, validation_idx = split_episodes(data, train_idx, run.rng('q-validation'), config.validation_fraction)
    if config.training_fraction < 1.0:      # drawn after the other splits, so those stay the whole run's
        _, train_idx = split_episodes(data, train_idx, run.rng('q-subset'), config.training_fraction)
    q = _new_q(run, config, data, train_idx)
    best = BestEpoch(run.checkpoint_dir / 'q_best_epoch.pt')
    train_pairs, validation_pairs = view_pairs(data, train_idx), view_pairs(data, validation_idx)

    def epoch(net: QNetwork, optimizer: torch.optim.Optimizer, rng: np.random.Generator) -> dict:
        metrics = train_epoch(net, optimizer, data, train_idx, rng, config.batch_size, train_pairs,
                              config.ranking_weight)
        if len(validation_idx):
            metrics['validation_loss'] = validation_loss(net.eval(), data, validation_idx, validation_pairs,
                                                         config.ranking_weight)
            if config.ranking_weight > 0.0:             # what the ranking term is for, on states it never saw
                metrics['validation_view_pair_accuracy'] = view_ranking(net, data, validation_idx)['view_pair_accuracy']
            net.train()
            best.offer(net, metrics['validation_loss'])
        return metrics

    history = fit(run, Q_NAME, q, epoch, FitSettings(config.epochs, config.learning_rate, config.target_loss),
                  'q_epochs')
    best.restore(q)
    record = _record(run, config, data, (train_idx, validation_idx, heldout_idx), q, history)
    save_network(run.checkpoint_dir / 'q.pt', q, record)
    finish_fit(run, Q_NAME)
    best.path.unlink(missing_ok=True)
    run.log('q_fit', 0, record['metrics'])
    panels = Q_PANELS + (Q_RANKING_PANEL,) if config.ranking_weight > 0.0 else Q_PANELS
    plot_curves(run, panels, run.directory / 'q_curves.png', 'Q regression (Eq. 9)')
    return q, record


Q_PANELS = (Panel('q_epochs', ('loss', 'validation_loss', 'ranking_loss'), 'loss (standardised returns)',
                  log_scale=True),)
Q_RANKING_PANEL = Panel('q_epochs', ('validation_view_pair_accuracy',), 'validation view-pair accuracy')


def split_episodes(data: AggregatedDataset, indices: np.ndarray, rng: np.random.Generator,
                   fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """`indices` split by whole episodes: (the rest, about `fraction` of the episodes); nothing split off at 0."""
    episodes = np.unique(data.arrays['episode'][indices])
    count = min(int(round(fraction * len(episodes))), len(episodes) - 1)
    if count < 1:
        return indices, indices[:0]
    chosen = np.isin(data.arrays['episode'][indices], rng.choice(episodes, size=count, replace=False))
    return indices[~chosen], indices[chosen]


class BestEpoch:
    """The weights of the epoch with the lowest validation loss so far, kept on disk so a resumed fit
    still knows them (the loss is stored with them)."""

    def __init__(self, path):
        self.path = path
        self.loss = torch.load(path, weights_only=True)['loss'] if path.exists() else float('inf')

    def offer(self, q: QNetwork, loss: float) -> None:
        if loss < self.loss:
            self.loss = loss
            torch.save({'loss': loss, 'state': q.state_dict()}, self.path)

    def restore(self, q: QNetwork) -> None:
        """Q with the best epoch's weights (unchanged when nothing was validated)."""
        if self.path.exists():
            q.load_state_dict(torch.load(self.path, weights_only=True)['state'])
            q.eval()


def _new_q(run: Run, config: QConfig, data: AggregatedDataset, train_idx: np.ndarray) -> QNetwork:
    """A seeded Q network normalised with the training samples' proprioception and returns."""
    network = network_config_for(config.network, data.arrays['proprio'].shape[1])
    with torch.random.fork_rng():
        torch.manual_seed(run.torch_seed('q', 'init'))
        q = QNetwork(network)
    q.proprio.fit(data.field('proprio', train_idx).float())
    q.fit_return_scale(data.field('return', train_idx).float())
    return q


def _record(run: Run, config: QConfig, data: AggregatedDataset, splits: tuple[np.ndarray, np.ndarray, np.ndarray],
            q: QNetwork, history: list[dict]) -> dict:
    """Q's card: command, seed, data, the fit on training and held-out episodes (splits: training,
    validation and held-out sample indices)."""
    train_idx, validation_idx, heldout_idx = splits
    held, train = q_fit(q, data, heldout_idx), q_fit(q, data, train_idx)
    episodes = np.unique(data.arrays['episode'])
    first_steps = data.arrays['step'] == 0
    validated = [row['validation_loss'] for row in history if 'validation_loss' in row]
    metrics = {'epochs': len(history), 'final_training_loss': history[-1]['loss'],
               'best_epoch': int(np.argmin(validated)) if validated else len(history) - 1,
               'validation_loss': float(min(validated)) if validated else float('nan'),
               'heldout_mse': held['mse'], 'heldout_rank_correlation': held['rank_correlation'],
               'heldout_return_variance': held['return_variance'],
               'training_mse': train['mse'], 'training_rank_correlation': train['rank_correlation'],
               **{f'heldout_{name}': value for name, value in view_ranking(q, data, heldout_idx).items()},
               **{f'training_{name}': value for name, value in view_ranking(q, data, train_idx).items()},
               'episode_success_rate': float(data.arrays['success'][first_steps].mean()),
               'mean_episode_return': float(data.arrays['return'][first_steps].mean())}
    return {'command': run.command, 'seed': config.seed, 'stage': 'q', 'config': asdict(config),
            'data': {'run': str(run.directory), 'episodes': len(episodes), 'samples': len(data),
                     'training_samples': len(train_idx), 'validation_samples': len(validation_idx),
                     'heldout_samples': len(heldout_idx),
                     'training_states': len(np.unique(data.arrays['episode'][train_idx])),
                     'megabytes': data.nbytes / 2 ** 20},
            'metrics': metrics}
