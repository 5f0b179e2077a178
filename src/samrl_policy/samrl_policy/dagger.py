"""DAgger for the actor pi_sim(I) (Ross et al. 2011; paper Sec. III-D.2, Eq. 8).

One round, in the order imitation's DAgger trainer has it:

1. roll out: at each step the expert's action is executed with probability beta(round), the
   learner's otherwise; beta_0 = 1, so round 0 is the expert's own demonstrations;
2. label: at every visited state the expert's action is the label, and the state is rendered
   from K camera poses: the episode's acting view (the one the learner acts from) and K - 1
   fresh draws from the view distribution. Fixed View: the default view only (K = 1);
3. aggregate: the round's samples are one shard on disk (data/round_NNN.npz); the data set is
   all rounds so far;
4. fit: the actor is trained on all of it with Eq. 8, warm-started from the previous round with
   a fresh Adam (its rate constant or decayed over the round's epochs, learning_rate_schedule),
   until an epoch's training error is <= target_error or epochs_per_round ran;
5. evaluate: the action error on a held-out set (expert rollouts from held-out seeds, labelled
   and rendered the same way, never trained on) and the learner's success rate alone on
   evaluation seeds (one random view per episode; Fixed View: the default view);
6. checkpoint: checkpoints/actor_round_NNN.pt with its card.

After the last round, actor.pt is the round whose learner succeeded most often on the evaluation
seeds (the later one on a tie): Ross et al. return the best of the rounds' policies on validation,
and late rounds, trained mostly on the learner's own failures, are not always the best.

Eq. 8 is ||a_hat - a||; we minimise its square (summed over the action's dimensions), averaged
over samples. A state has K samples, so that mean is (1/K) x the per-state sum over views of
Eq. 8 squared, averaged over states: the paper's sum over views up to a constant.

Table I's protocol (the Fixed-View actor stopped at the multi-view actor's training error): run
the multi-view actor, then a Fixed-View run with target_error = the multi-view card's
`final_training_error`.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple, Protocol

import numpy as np
import torch

from samrl_policy.checkpoints import card_path, load_actor, save_network
from samrl_policy.dataset import DEMO_FIELDS, AggregatedDataset, ShardBuilder, load_shard, save_shard
from samrl_policy.interfaces import ACTION_DIM, Env, Expert, Observation, ViewDistribution
from samrl_policy.networks import Actor, NetworkConfig, constant_actions, network_config_for
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

ACTION_LIMIT = 1.0              # actions are in [-ACTION_LIMIT, ACTION_LIMIT] on every dimension
EVAL_BATCH = 256                # samples a forward pass when measuring errors (memory, not results)


# -- the expert / learner mixing (imitation's beta schedules) -------------------------------------
class BetaSchedule(Protocol):
    def __call__(self, round_index: int) -> float:
        """Probability that the expert's action is executed at a step of this round."""


@dataclass(frozen=True)
class LinearBetaSchedule:
    """beta = 1 at round 0, falling linearly to 0 at round `rampdown_rounds` and staying there."""

    rampdown_rounds: int

    def __call__(self, round_index: int) -> float:
        return float(min(1.0, max(0.0, 1.0 - round_index / self.rampdown_rounds)))


@dataclass(frozen=True)
class ExponentialBetaSchedule:
    """beta = decay ** round (Ross et al.'s beta_i = p^(i-1))."""

    decay: float

    def __call__(self, round_index: int) -> float:
        return float(self.decay ** round_index)


def beta_schedule(name: str, parameter: float) -> BetaSchedule:
    """'linear' (parameter: rounds to reach 0) or 'exponential' (parameter: the decay per round)."""
    if name == 'linear':
        return LinearBetaSchedule(int(parameter))
    if name == 'exponential':
        return ExponentialBetaSchedule(float(parameter))
    raise ValueError(f'unknown beta schedule {name!r}; linear or exponential')


@dataclass(frozen=True)
class DAggerConfig:
    """One DAgger run. Defaults are sized for a task in M on 2 CPU cores (labels cost seconds)."""

    rounds: int = 6
    # 6 a round overfit the needle-threading actor (held-out error rose from 0.45 to 1.47 while the
    # training error fell to 0.03, README); labels cost about 0.1 s and renders 40-60 ms, so a round of
    # 40 episodes with K = 4 takes about 10 minutes on 2 cores.
    episodes_per_round: int = 40
    max_episode_steps: int = 60         # a cap; the env's own time limit usually ends episodes first
    views_per_state: int = 4            # K renders of each visited state (multi-view)
    fixed_view: bool = False            # Table I's Fixed View: the default view only, K = 1
    beta: str = 'linear'
    beta_parameter: float = 4.0         # linear: beta reaches 0 at round 4
    epochs_per_round: int = 20          # the epoch budget of each round's fit
    target_error: float = 0.0           # stop a round's fit once its training error is <= this
    batch_size: int = 64
    learning_rate: float = 1e-3
    # 'cosine' decays each round's rate to 0 over epochs_per_round. The peg's actor fitted 10 epochs at a
    # constant rate had training error 0.30; 30 epochs with cosine decay reached 0.06 on the same data (README).
    learning_rate_schedule: str = 'constant'
    heldout_episodes: int = 3
    eval_episodes: int = 10
    seed: int = 0
    network: NetworkConfig | None = None  # None: NetworkConfig defaults with the env's proprio size
    # The actor outputs round 0's constant label dimensions as they are. Off by default: the peg's expert never
    # tilts, but contact in M tilts the peg under a learner, and a pinned actor cannot take the tilt back (README).
    pin_constant_actions: bool = False
    max_bytes: int = 6 * 2 ** 30         # the data set's memory bound (dataset.py)

    def __post_init__(self) -> None:
        counts = {name: getattr(self, name) for name in ('rounds', 'episodes_per_round', 'max_episode_steps',
                                                         'views_per_state', 'epochs_per_round', 'batch_size',
                                                         'heldout_episodes', 'eval_episodes')}
        if min(counts.values()) < 1:
            raise ValueError(f'DAggerConfig needs at least 1 of each of {counts}')
        beta_schedule(self.beta, self.beta_parameter)          # refuses an unknown schedule now, not at round 1
        FitSettings(self.epochs_per_round, self.learning_rate, schedule=self.learning_rate_schedule)   # and this one

    @property
    def renders_per_state(self) -> int:
        return 1 if self.fixed_view else self.views_per_state


class EpisodeResult(NamedTuple):
    success: bool
    steps: int
    expert_steps: int           # steps whose executed action was the expert's
    label_seconds: float        # time spent in expert.act


# -- collecting a round ---------------------------------------------------------------------------
def expert_label(expert: Expert, env: Env) -> np.ndarray:
    """The expert's action at env's state; env is put back where it was, whatever the expert did to it."""
    snap = env.snapshot()
    action = np.asarray(expert.act(env), dtype=np.float64)
    env.restore(snap)
    if action.shape != (ACTION_DIM,) or not np.isfinite(action).all():
        raise ValueError(f'the expert returned {action!r}; expected {ACTION_DIM} finite numbers')
    return np.clip(action, -ACTION_LIMIT, ACTION_LIMIT)   # the actor's tanh cannot go beyond either


@torch.no_grad()
def learner_action(actor: Actor, obs: Observation) -> np.ndarray:
    """The actor's (7,) action for one observation."""
    return actor(obs.image[None].float(), obs.proprio[None].float())[0].double().numpy()


def acting_view(views: ViewDistribution, rng: np.random.Generator, fixed_view: bool) -> torch.Tensor:
    """The view an episode is acted from: a draw from the distribution, or the default view."""
    return views.default() if fixed_view else views.sample(rng, 1)[0]


def label_views(views: ViewDistribution, rng: np.random.Generator, acting: torch.Tensor, count: int) -> torch.Tensor:
    """(count, k) views a state is rendered from: the acting view first, then fresh draws."""
    if count == 1:
        return acting[None]
    return torch.cat([acting[None], views.sample(rng, count - 1).to(acting.dtype)])


def run_episode(env: Env, expert: Expert, views: ViewDistribution, actor: Actor | None, beta: float,
                seed: int, round_index: int, config: DAggerConfig, rng: np.random.Generator,
                builder: ShardBuilder) -> EpisodeResult:
    """One DAgger episode: label and render every visited state into `builder`, act with the mixture."""
    env.reset(seed)
    expert.reset()
    acting = acting_view(views, rng, config.fixed_view)
    success, steps, expert_steps, label_seconds = False, 0, 0, 0.0
    for step in range(config.max_episode_steps):
        started = time.perf_counter()
        label = expert_label(expert, env)
        label_seconds += time.perf_counter() - started
        observations = []
        for index, params in enumerate(label_views(views, rng, acting, config.renders_per_state)):
            obs = env.observe(views.camera_pose(params))
            observations.append(obs)
            builder.append(obs.image, proprio=obs.proprio, action=label, episode=seed, round=round_index,
                           step=step, view=index, view_params=params)
        use_expert = actor is None or rng.random() < beta
        action = label if use_expert else learner_action(actor, observations[0])
        outcome = env.step(action)
        steps, expert_steps, success = step + 1, expert_steps + use_expert, bool(outcome.success)
        if outcome.done:
            break
    return EpisodeResult(success, steps, expert_steps, label_seconds)


def collect(run: Run, env: Env, expert: Expert, views: ViewDistribution, actor: Actor | None, beta: float,
            seeds: list[int], round_index: int, config: DAggerConfig, rng: np.random.Generator,
            ledger: EpisodeLedger | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Episodes from `seeds` -> (the shard of their samples, statistics of the collection); the
    `ledger`'s episodes that killed an earlier process are skipped."""
    builder, results = ShardBuilder(), []
    pending = seeds if ledger is None else ledger.pending(seeds)
    for seed in run.bar(pending, desc=f'collect round {round_index}', unit='episode', leave=False):
        with ledger.episode(seed) if ledger is not None else nullcontext():
            results.append(run_episode(env, expert, views, actor, beta, seed, round_index, config, rng, builder))
    steps = sum(r.steps for r in results)
    stats = {'beta': beta, 'episodes': len(results), 'skipped_episodes': len(seeds) - len(pending),
             'states': steps, 'samples': len(builder),
             'expert_fraction': sum(r.expert_steps for r in results) / max(steps, 1),
             'rollout_success': float(np.mean([r.success for r in results])),
             'seconds_per_label': sum(r.label_seconds for r in results) / max(steps, 1)}
    return builder.build(), stats


# -- fitting (Eq. 8) ------------------------------------------------------------------------------
def actor_loss(actor: Actor, images: torch.Tensor, proprio: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 8 squared: mean over samples of ||pi(I) - a_expert||^2."""
    return (actor(images, proprio) - labels).pow(2).sum(dim=1).mean()


def train_epoch(actor: Actor, optimizer: torch.optim.Optimizer, dataset: AggregatedDataset,
                rng: np.random.Generator, batch_size: int) -> dict:
    """One pass over the data set; its mean loss is the epoch's training error."""
    total, count = 0.0, 0
    for indices in dataset.minibatches(rng, batch_size):
        batch = dataset.demo_batch(indices)                         # sample (decoded to float32)
        loss = actor_loss(actor, batch.images, batch.proprio, batch.expert_actions)
        optimizer.zero_grad(set_to_none=True)                       # actor step
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(indices), count + len(indices)
    return {'loss': total / count, 'samples': count}


@torch.no_grad()
def predictions(actor: Actor, dataset: AggregatedDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 7) actor outputs and (N, 7) expert labels over every sample, in batches."""
    outputs, labels = [], []
    for start in range(0, len(dataset), EVAL_BATCH):
        batch = dataset.demo_batch(np.arange(start, min(start + EVAL_BATCH, len(dataset))))
        outputs.append(actor(batch.images, batch.proprio))
        labels.append(batch.expert_actions)
    return torch.cat(outputs), torch.cat(labels)


def action_errors(actor: Actor, dataset: AggregatedDataset) -> dict:
    """Over every sample: mean ||pi(I) - a||^2 (the loss) and mean ||pi(I) - a|| (Eq. 8, action units)."""
    output, label = predictions(actor, dataset)
    squared = (output - label).pow(2).sum(dim=1)
    return {'mse': squared.mean().item(), 'l2': squared.sqrt().mean().item()}


@torch.no_grad()
def success_rate(env: Env, actor: Actor, views: ViewDistribution, seeds: list[int], fixed_view: bool,
                 max_steps: int, rng: np.random.Generator) -> float:
    """The learner alone, each episode from its own acting view: the fraction of successes."""
    successes = 0
    for seed in seeds:
        env.reset(seed)
        pose = views.camera_pose(acting_view(views, rng, fixed_view))
        for _ in range(max_steps):
            outcome = env.step(learner_action(actor, env.observe(pose)))
            if outcome.done:
                break
        successes += bool(outcome.success)
    return successes / len(seeds)


# -- the rounds -----------------------------------------------------------------------------------
def train_dagger(run: Run, env: Env, expert: Expert, views: ViewDistribution,
                 config: DAggerConfig) -> tuple[Actor, dict]:
    """All rounds of a run, going on after the last finished one; (the final actor, its record)."""
    heldout = AggregatedDataset(DEMO_FIELDS, config.max_bytes)
    heldout.add(_heldout_shard(run, env, expert, views, config))
    data = AggregatedDataset(DEMO_FIELDS, config.max_bytes)
    actor, record, epochs_done = None, {}, 0
    for round_index in run.bar(range(config.rounds), desc='DAgger', unit='round'):
        name = f'actor_round_{round_index:03d}'
        if (run.checkpoint_dir / f'{name}.pt').exists():                # finished before a stop
            actor, record = load_actor(run.checkpoint_dir / f'{name}.pt')
            epochs_done = record['epochs_total']
            run.log('dagger_rounds', round_index, record['metrics'])   # in case the stop came before its row
            continue
        # 1-2. roll out with the round's beta, label and render every visited state (skipped if saved)
        shard_stats = _round_shard(run, env, expert, views, actor, round_index, config)
        # 3. aggregate: the data set is every round so far
        _load_rounds(run, data, round_index)
        # 4. fit on all of it (Eq. 8), warm-started, until the target error or the epoch budget
        actor = actor if actor is not None else _new_actor(run, config, data)
        settings = FitSettings(config.epochs_per_round, config.learning_rate, config.target_error,
                               config.learning_rate_schedule)
        history = fit(run, name, actor, lambda net, opt, rng: train_epoch(net, opt, data, rng, config.batch_size),
                      settings, 'dagger_epochs', first_step=epochs_done)
        epochs_done += len(history)
        # 5. evaluate: held-out action error, the learner's success rate
        record = _round_record(run, env, actor, views, config, round_index, data, heldout, history,
                               shard_stats, epochs_done)
        # 6. checkpoint with its card, then log (a stop in between leaves the round finished)
        save_network(run.checkpoint_dir / f'{name}.pt', actor, record)
        finish_fit(run, name)
        run.log('dagger_rounds', round_index, record['metrics'])
    actor, record = _best_round(run, config.rounds)
    save_network(run.checkpoint_dir / 'actor.pt', actor, record)
    plot_curves(run, DAGGER_PANELS, run.directory / 'dagger_curves.png', 'DAgger (Eq. 8)')
    return actor, record


def best_round(records: list[dict]) -> int:
    """Index of the round with the highest learner success rate; the later round on a tie."""
    rates = [record['metrics']['success_rate'] for record in records]
    return max(range(len(rates)), key=lambda index: (rates[index], index))


def _best_round(run: Run, rounds: int) -> tuple[Actor, dict]:
    """The selected round's actor and its record, marked with the selection."""
    paths = [run.checkpoint_dir / f'actor_round_{index:03d}.pt' for index in range(rounds)]
    records = [json.loads(card_path(path).read_text()) for path in paths]
    selected = best_round(records)
    actor, record = load_actor(paths[selected])
    return actor, {**record, 'selected_round': selected,
                   'round_success_rates': [r['metrics']['success_rate'] for r in records]}


DAGGER_PANELS = (Panel('dagger_epochs', ('loss',), 'training error ||pi(I) - a||^2', log_scale=True),
                 Panel('dagger_rounds', ('heldout_l2', 'training_l2'), 'action error ||pi(I) - a||'),
                 Panel('dagger_rounds', ('success_rate', 'beta'), 'success rate / beta'))


def _heldout_shard(run: Run, env: Env, expert: Expert, views: ViewDistribution, config: DAggerConfig) -> dict:
    """The expert's episodes from held-out seeds, labelled like a round; collected once per run."""
    path = run.data_dir / 'heldout.npz'
    if not path.exists():
        seeds = [episode_seed('heldout', config.seed, i) for i in range(config.heldout_episodes)]
        ledger = EpisodeLedger(running_path(path))
        shard, _ = collect(run, env, expert, views, None, 1.0, seeds, -1, config, run.rng('heldout'), ledger)
        save_shard(path, shard)
        ledger.close()
    return load_shard(path, DEMO_FIELDS)


def _round_shard(run: Run, env: Env, expert: Expert, views: ViewDistribution, actor: Actor | None,
                 round_index: int, config: DAggerConfig) -> dict:
    """Collect the round's data unless a stopped run already saved it; the collection's statistics."""
    path = run.data_dir / f'round_{round_index:03d}.npz'
    stats_path = run.data_dir / f'round_{round_index:03d}.json'
    if not path.exists():
        first = round_index * config.episodes_per_round
        seeds = [episode_seed('dagger', config.seed, first + i) for i in range(config.episodes_per_round)]
        beta = beta_schedule(config.beta, config.beta_parameter)(round_index)
        ledger = EpisodeLedger(running_path(path))
        shard, stats = collect(run, env, expert, views, actor, beta, seeds, round_index, config,
                               run.rng('collect', round_index), ledger)
        stats_path.write_text(json.dumps(stats, indent=2) + '\n')     # before the shard: a shard has its stats
        save_shard(path, shard)
        ledger.close()
    return json.loads(stats_path.read_text())


def _load_rounds(run: Run, data: AggregatedDataset, last_round: int) -> None:
    """Bring the data set up to rounds 0..last_round (rounds already in it are not read again)."""
    have = set(np.unique(data.arrays['round']).tolist()) if len(data) else set()
    data.load([run.data_dir / f'round_{r:03d}.npz' for r in range(last_round + 1) if r not in have])


def _new_actor(run: Run, config: DAggerConfig, data: AggregatedDataset) -> Actor:
    """A seeded actor whose proprioception normalisation, and with config.pin_constant_actions the action
    dimensions it pins, come from round 0's data."""
    network = network_config_for(config.network, data.arrays['proprio'].shape[1])
    if config.pin_constant_actions and not network.pinned_actions:
        network = replace(network, pinned_actions=constant_actions(data.field('action')))
    with torch.random.fork_rng():
        torch.manual_seed(run.torch_seed('actor', 'init'))
        actor = Actor(network)
    actor.proprio.fit(data.field('proprio').float())
    return actor


def _round_record(run: Run, env: Env, actor: Actor, views: ViewDistribution, config: DAggerConfig,
                  round_index: int, data: AggregatedDataset, heldout: AggregatedDataset, history: list[dict],
                  shard_stats: dict, epochs_done: int) -> dict:
    """The round's card: command, seed, data, metrics."""
    seeds = [episode_seed('evaluation', config.seed, i) for i in range(config.eval_episodes)]
    held = action_errors(actor, heldout)
    train = action_errors(actor, data)
    metrics = {'round': round_index, 'beta': shard_stats['beta'], 'samples': len(data),
               'epochs': len(history), 'final_training_error': history[-1]['loss'],
               'training_mse': train['mse'], 'training_l2': train['l2'],
               'heldout_mse': held['mse'], 'heldout_l2': held['l2'],
               'success_rate': success_rate(env, actor, views, seeds, config.fixed_view,
                                            config.max_episode_steps, run.rng('evaluation')),
               'rollout_success': shard_stats['rollout_success']}
    return {'command': run.command, 'seed': config.seed, 'stage': 'dagger', 'config': asdict(config),
            'timing': {'seconds_per_label': shard_stats['seconds_per_label']},   # of this round's collection
            'data': {'run': str(run.directory), 'rounds': round_index + 1, 'samples': len(data),
                     'megabytes': data.nbytes / 2 ** 20, 'heldout_samples': len(heldout),
                     'evaluation_seeds': [seeds[0], seeds[-1]] if seeds else []},
            'epochs_total': epochs_done, 'final_training_error': history[-1]['loss'], 'metrics': metrics}
