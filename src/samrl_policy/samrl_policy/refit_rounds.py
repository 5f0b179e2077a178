"""Was it the fit or the data? A fresh actor fitted on some rounds of a finished DAgger run.

DAgger's later rounds are mostly the learner's own states, labelled by the expert. When a run's
success falls after a round, this refits a new actor from scratch on a chosen set of the run's
shards (cosine learning-rate decay, a fixed epoch budget), optionally with every round weighted
equally, and reports its training and held-out errors and its success rate on the run's own
evaluation seeds. Only the run's files are read; nothing in the run is changed.

    python -m samrl_policy.refit_rounds out/learn_at_sim/needle_threading/actor --rounds 0-1
    python -m samrl_policy.refit_rounds out/learn_at_sim/needle_threading/actor --rounds 0-5 --equal-rounds
    python -m samrl_policy.refit_rounds out/learn_at_sim/needle_threading/actor --rounds 0-5 --labels-only
    python -m samrl_policy.refit_rounds out/learn_at_sim/peg_insertion/fixed_actor --rounds 0-2 --encoder pooled
    python -m samrl_policy.refit_rounds out/learn_at_sim/peg_insertion/actor --rounds 0-2 --save out/refit/actor.pt
    python -m samrl_policy.refit_rounds out/learn_at_sim/peg_insertion/actor --rounds 0-1 \
        --checkpoint out/learn_at_sim/peg_insertion/actor.pt       # that actor's errors on the shards, no refit
    python -m samrl_policy.refit_rounds out/learn_at_sim/peg_insertion/actor --rounds 0 \
        --checkpoint out/learn_at_sim/peg_insertion/actor.pt \
        --heldout out/learn_at_sim/peg_insertion_seed1/actor/data/round_000.npz   # a larger held-out set

A run's own held-out set is DAggerConfig.heldout_episodes (3) expert episodes: enough for the errors
of moves that change every step, but a quantity drawn once per episode (the peg block's yaw) is seen
only 3 times there. --heldout measures on round shards of another run of the same task, render size
and zoom under another seed, whose episodes this run never saw.

Every report starts with the labels of each round: states, mean |a| and the fraction of labels at
the action bound, per action dimension (translation x y z, rotation x y z, gripper). The actor's
errors are also given per action dimension: which of the moves it has not learned.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from samrl_policy.checkpoints import load_actor, save_network
from samrl_policy.dagger import action_errors, actor_loss, predictions, success_rate
from samrl_policy.dataset import DEMO_FIELDS, AggregatedDataset
from samrl_policy.networks import ENCODERS, Actor, NetworkConfig
from samrl_policy.training import config_image_zoom, episode_seed

SATURATED = 0.99             # |a| above this is at the action bound (actions are in [-1, 1])
DECIDED = 0.5                # |a| of a label at least this says clearly which way to move
START_VIEW_SEED = 1          # rng of the evaluation's start views (one set for every refit compared)
TORCH_THREADS = 2


def round_weights(rounds: np.ndarray, equal_rounds: bool) -> np.ndarray | None:
    """Sampling probabilities: each round's samples share 1 / (number of rounds); None: uniform over samples."""
    if not equal_rounds:
        return None
    names, counts = np.unique(rounds, return_counts=True)
    size = dict(zip(names.tolist(), counts.tolist()))
    weights = np.array([1.0 / size[r] for r in rounds.tolist()])
    return weights / weights.sum()


def label_statistics(data: AggregatedDataset) -> dict[int, dict]:
    """Per round: states (one label each: the acting view's sample), mean |a| and the fraction at the
    action bound, per action dimension."""
    rounds, views = data.arrays['round'], data.arrays['view']
    actions = data.arrays['action']
    result = {}
    for name in np.unique(rounds).tolist():
        labels = np.abs(actions[(rounds == name) & (views == 0)])
        result[int(name)] = {'states': len(labels), 'mean_abs': np.round(labels.mean(axis=0), 3).tolist(),
                             'saturated': np.round((labels > SATURATED).mean(axis=0), 3).tolist()}
    return result


def _rounded(values: torch.Tensor) -> list[float]:
    return np.round(values.numpy(), 3).tolist()


@torch.no_grad()
def dimension_errors(actor: Actor, data: AggregatedDataset) -> dict[str, list[float]]:
    """Per action dimension, over every sample: mean |pi(I) - a|; and over the labels with |a| >= DECIDED, the
    share of outputs with the label's sign and the outputs' mean |pi(I)| (a hedging actor stays near 0)."""
    output, label = predictions(actor, data)
    decided = label.abs() >= DECIDED
    agrees = (torch.sign(output) == torch.sign(label)) & decided
    count = decided.sum(dim=0).clamp(min=1)
    return {'mean_abs_error': _rounded((output - label).abs().mean(dim=0)),
            'decided_share': _rounded(decided.float().mean(dim=0)),
            'decided_sign_agreement': _rounded(agrees.sum(dim=0) / count),
            'decided_mean_abs_output': _rounded((output.abs() * decided).sum(dim=0) / count)}


def epoch_batches(rng: np.random.Generator, count: int, batch_size: int, weights: np.ndarray | None):
    """One epoch's index batches: a shuffle, or `count // batch_size` weighted draws with replacement."""
    if weights is None:
        order = rng.permutation(count)
        return [np.sort(order[start:start + batch_size]) for start in range(0, count, batch_size)]
    return [np.sort(rng.choice(count, batch_size, p=weights)) for _ in range(count // batch_size)]


def refit(data: AggregatedDataset, epochs: int, learning_rate: float, batch_size: int, equal_rounds: bool,
          seed: int = 0, encoder: str = NetworkConfig.encoder, progress: bool = True,
          tool_position: bool = True, image_zoom: float = 1.0) -> tuple[Actor, list[float]]:
    """A fresh actor with `encoder` fitted on `data` (Eq. 8 squared) with cosine decay; (the actor, loss per epoch).
    image_zoom: the zoom the shards' renders were made at (the 3D keypoint encoders back-project with it)."""
    torch.manual_seed(seed)
    actor = Actor(NetworkConfig(proprio_dim=data.arrays['proprio'].shape[1], encoder=encoder,
                                tool_position=tool_position, image_zoom=image_zoom))
    actor.proprio.fit(data.field('proprio').float())
    optimizer = torch.optim.Adam(actor.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    rng, weights, losses = np.random.default_rng(seed), round_weights(data.arrays['round'], equal_rounds), []
    for _ in (bar := tqdm(range(epochs), desc='refit', unit='epoch', disable=not progress)):
        total = 0.0
        batches = epoch_batches(rng, len(data), batch_size, weights)
        for indices in batches:
            batch = data.demo_batch(indices)                                       # sample
            loss = actor_loss(actor, batch.images, batch.proprio, batch.expert_actions)
            optimizer.zero_grad(set_to_none=True)                                  # actor step
            loss.backward()
            optimizer.step()
            total += loss.item()
        schedule.step()                                                            # cosine decay per epoch
        losses.append(total / len(batches))
        bar.set_postfix(loss=f'{losses[-1]:.4f}')
    return actor.eval(), losses


def _errors(actor: Actor, data: AggregatedDataset, heldout: AggregatedDataset) -> dict:
    with torch.no_grad():
        return {'training': action_errors(actor, data), 'heldout': action_errors(actor, heldout),
                'training_per_dimension': dimension_errors(actor, data),
                'heldout_per_dimension': dimension_errors(actor, heldout)}


def heldout_shards(run: Path, config: dict, paths: list[Path] | None) -> list[Path]:
    """The shards to measure held-out errors on: the run's own heldout.npz, or round shards of another run
    whose renders are made the same way and whose episode seeds are not this run's (another run seed)."""
    if not paths:
        return [run / 'data' / 'heldout.npz']
    for path in paths:
        other_config = path.parent.parent / 'config.json'
        if not path.exists() or not other_config.exists():
            raise ValueError(f'{path}: not a shard of a run directory (<run>/data/*.npz beside <run>/config.json)')
        other = json.loads(other_config.read_text())
        differing = [key for key in ('task', 'image_size') if other.get(key) != config.get(key)]
        differing += ['image_zoom'] if config_image_zoom(other) != config_image_zoom(config) else []
        if differing:
            raise ValueError(f'{path}: its run differs from {run} in {differing}; its renders are not comparable')
        if other.get('seed') == config.get('seed'):
            raise ValueError(f'{path}: its run has this run\'s seed {config.get("seed")}, so its episodes may be '
                             f'ones this run trained on; use a run with another --seed')
    return paths


def episode_count(data: AggregatedDataset) -> int:
    """Distinct (round, episode) pairs: how many episodes, so how many draws of a per-episode quantity."""
    return len(np.unique(np.stack([data.arrays['round'], data.arrays['episode']]), axis=1).T)


def parse_rounds(text: str) -> list[int]:
    """'0-5' or '0,1,4' -> the round numbers."""
    try:
        if '-' in text:
            first, last = (int(part) for part in text.split('-'))
            return list(range(first, last + 1))
        return [int(part) for part in text.split(',')]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f'rounds: expected "0-5" or "0,1,4", got {text!r}') from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m samrl_policy.refit_rounds', description=__doc__.split('\n')[0])
    parser.add_argument('run', type=Path, help='a DAgger stage directory (e.g. out/learn_at_sim/<task>/actor)')
    parser.add_argument('--rounds', type=parse_rounds, required=True, help='"0-5" or "0,1,4"')
    parser.add_argument('--epochs', type=int, default=30)
    parser.add_argument('--learning-rate', type=float, default=1e-3)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--equal-rounds', action='store_true', help='weight every round equally, not every sample')
    parser.add_argument('--eval-episodes', type=int, default=20)
    parser.add_argument('--labels-only', action='store_true', help='only the label statistics, no refit')
    parser.add_argument('--encoder', choices=ENCODERS, default=NetworkConfig.encoder,
                        help='the actor\'s image encoder (default %(default)s; networks.py)')
    parser.add_argument('--no-tool-position', dest='tool_position', action='store_false',
                        help='leave the tool\'s world position out of the head\'s inputs (NetworkConfig.tool_position)')
    parser.add_argument('--save', type=Path, help='write the refitted actor here (a checkpoint and its card)')
    parser.add_argument('--checkpoint', type=Path,
                        help='no refit: report this actor\'s errors on the rounds\' shards and the held-out one')
    parser.add_argument('--heldout', type=Path, nargs='+', metavar='SHARD',
                        help='measure held-out errors on these round shards of a run with another --seed '
                             '(default: the run\'s own data/heldout.npz, 3 episodes)')
    args = parser.parse_args(argv)
    from samrl_policy.model_env import ModelEnv
    from samrl_viewpoint.views import ViewSpace
    torch.set_num_threads(TORCH_THREADS)
    config = json.loads((args.run / 'config.json').read_text())
    zoom = config_image_zoom(config)
    paths = [args.run / 'data' / f'round_{r:03d}.npz' for r in args.rounds]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        parser.error(f'no such shards: {", ".join(missing)}')
    data, heldout = AggregatedDataset(DEMO_FIELDS), AggregatedDataset(DEMO_FIELDS)
    data.load(paths)
    try:
        heldout_paths = heldout_shards(args.run, config, args.heldout)
    except ValueError as exc:
        parser.error(str(exc))
    heldout.load(heldout_paths)
    report = {'rounds': args.rounds, 'samples': len(data), 'labels': label_statistics(data),
              'heldout_shards': [str(p) for p in heldout_paths],
              'heldout_samples': len(heldout), 'heldout_episodes': episode_count(heldout)}
    if args.labels_only:
        print(json.dumps(report, indent=2))
        return 0
    if args.checkpoint:
        actor = load_actor(args.checkpoint)[0].eval()
        report = {**report, 'checkpoint': str(args.checkpoint), **_errors(actor, data, heldout)}
        print(json.dumps(report, indent=2))
        return 0
    actor, losses = refit(data, args.epochs, args.learning_rate, args.batch_size, args.equal_rounds,
                          encoder=args.encoder, tool_position=args.tool_position, image_zoom=zoom)
    env = ModelEnv(config['task'], image_size=tuple(config['image_size']), zoom=zoom)
    seeds = [episode_seed('evaluation', config['seed'], i) for i in range(args.eval_episodes)]
    rate = success_rate(env, actor, ViewSpace(config['task']), seeds, config['fixed_view'],
                        config['max_episode_steps'], np.random.default_rng(START_VIEW_SEED))
    report = {**report, 'encoder': args.encoder, 'tool_position': args.tool_position, 'epochs': args.epochs,
              'equal_rounds': args.equal_rounds,
              'final_training_error': losses[-1], **_errors(actor, data, heldout), 'success_rate': rate}
    if args.save:
        command = 'python -m samrl_policy.refit_rounds ' + ' '.join(sys.argv[1:] if argv is None else argv)
        save_network(args.save, actor, {'command': command, 'run': str(args.run), 'metrics': report})
    print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
