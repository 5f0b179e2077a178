"""Where does the learner go wrong? An actor's episode in M, step by step, beside the expert.

The actor acts alone from a start view drawn as DAgger's evaluation draws them (the run's evaluation
seeds, START_VIEW_SEED). At every state it visits this prints the actor's action, the expert's label
at that state, the cosine between their translations and the task's measures (evaluate()). A learner
whose moves turn against the labels once it is off the expert's states (cosine near -1) extrapolates
from what it was fitted on; one that agrees with them but misses reads the scene too coarsely.

    python -m samrl_policy.action_trace out/learn_at_sim/peg_insertion
    python -m samrl_policy.action_trace out/learn_at_sim/peg_insertion_tk \
        --checkpoint out/learn_at_sim/peg_insertion_tk/actor/checkpoints/actor_round_001.pt --episode 2 --json t.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from samrl_policy.dagger import acting_view, expert_label, learner_action
from samrl_policy.training import episode_seed

START_VIEW_SEED = 1              # as refit_rounds: one set of start views for every actor compared
TRANSLATION = slice(0, 3)        # the action's translation (x, y, z)
YAW = 5                          # the action's rotation about z
MIN_NORM = 1e-6                  # a translation shorter than this has no direction


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two vectors; 0 when either is (nearly) zero."""
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.dot(a, b) / norms) if norms > MIN_NORM else 0.0


def trace_episode(env, actor, expert, views, seed: int, start_view: torch.Tensor, max_steps: int) -> list[dict]:
    """One episode of `actor` acting alone from `start_view`: per step the actor's action, the expert's label
    at the same state (the env is put back after labelling) and the task's measures after the step."""
    env.reset(seed)
    expert.reset()
    pose, rows = views.camera_pose(start_view), []
    for step in range(max_steps):
        action = learner_action(actor, env.observe(pose))
        label = expert_label(expert, env)
        outcome = env.step(action)
        measures = {k: float(v) for k, v in outcome.info.items() if isinstance(v, (int, float, bool, np.floating))}
        rows.append({'step': step, 'actor': action.tolist(), 'expert': label.tolist(),
                     'translation_cosine': cosine(action[TRANSLATION], label[TRANSLATION]),
                     'success': bool(outcome.success), 'measures': measures})
        if outcome.done:
            break
    return rows


def format_rows(rows: list[dict]) -> str:
    """A table: step, actor and expert translation and yaw, their cosine, the task's measures."""
    lines = ['step  actor (x y z | yaw)         expert (x y z | yaw)        cos   measures']
    for row in rows:
        actor, expert = np.asarray(row['actor']), np.asarray(row['expert'])
        measures = ', '.join(f'{k} {v:.3g}' for k, v in row['measures'].items() if k not in ('step', 'success'))
        lines.append(f'{row["step"]:4d}  {_action_text(actor)}  {_action_text(expert)}  '
                     f'{row["translation_cosine"]:+.2f}  {measures}')
    return '\n'.join(lines)


def _action_text(action: np.ndarray) -> str:
    return ' '.join(f'{v:+.2f}' for v in action[TRANSLATION]) + f' | {action[YAW]:+.2f}'


def main(argv: list[str] | None = None) -> int:
    from samrl_policy.checkpoints import load_actor
    from samrl_policy.expert import ExpertConfig, TrajectoryExpert
    from samrl_policy.learn_at_sim import run_image_size, run_image_zoom
    from samrl_policy.model_env import ModelEnv
    from samrl_viewpoint.views import ViewSpace
    parser = argparse.ArgumentParser(prog='python -m samrl_policy.action_trace', description=__doc__.split('\n')[0])
    parser.add_argument('run_dir', type=Path, help='a Learn@Sim run directory (out/learn_at_sim/<task>)')
    parser.add_argument('--checkpoint', type=Path, help='the actor (default: the run\'s actor.pt)')
    parser.add_argument('--episode', type=int, default=0, help='index among the run\'s evaluation episodes')
    parser.add_argument('--steps', type=int, help='step cap (default: the run\'s max_episode_steps)')
    parser.add_argument('--fixed-view', action='store_true', help='act from the default view')
    parser.add_argument('--json', type=Path, help='also write the rows here')
    args = parser.parse_args(argv)
    if args.episode < 0:
        parser.error(f'--episode must be >= 0, got {args.episode}')
    config = json.loads((args.run_dir / 'actor' / 'config.json').read_text())
    torch.set_num_threads(2)
    actor, _ = load_actor(args.checkpoint or args.run_dir / 'actor.pt')
    env = ModelEnv(config['task'], image_size=run_image_size(args.run_dir), zoom=run_image_zoom(args.run_dir))
    views = ViewSpace(config['task'])
    rng = np.random.default_rng(START_VIEW_SEED)
    for _ in range(args.episode + 1):                         # the start view evaluation gives this episode
        start_view = acting_view(views, rng, args.fixed_view)
    seed = episode_seed('evaluation', config['seed'], args.episode)
    rows = trace_episode(env, actor.eval(), TrajectoryExpert(ExpertConfig(**config['expert'])), views, seed,
                         start_view, args.steps or config['max_episode_steps'])
    print(format_rows(rows))
    if args.json:
        args.json.write_text(json.dumps({'seed': seed, 'rows': rows}, indent=1) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
