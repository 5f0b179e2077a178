"""Do the expert's DAgger labels depend on its history? Warm-started against memoryless labels.

In DAgger (dagger.run_episode) the expert keeps its previous plan between the steps of an episode
(a receding-horizon warm start), also when the learner's action was executed. This rolls a
trained actor out in M and, at every state it visits, labels the state twice: with the expert as
DAgger runs it (warm, the episode's history) and with a fresh one (reset, no history). It reports
how far apart the two labels are, per action dimension and overall. Large gaps mean labels that
the state alone does not explain.

    python -m samrl_policy.label_consistency out/learn_at_sim/needle_threading --episodes 10
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from samrl_policy.dagger import expert_label, learner_action
from samrl_policy.training import episode_seed

START_VIEW_SEED = 1
LARGE_GAP = 0.5              # a gap ||warm - fresh|| above this is counted as a disagreement (action units)


def label_gaps(env, actor, warm, fresh, views, seeds: list[int], max_steps: int) -> np.ndarray:
    """(states, 7) warm label - fresh label at every state the actor visits from a random view."""
    rng, gaps = np.random.default_rng(START_VIEW_SEED), []
    for seed in seeds:
        env.reset(seed)
        warm.reset()
        pose = views.camera_pose(views.sample(rng, 1)[0])
        for _ in range(max_steps):
            fresh.reset()                                   # no history: the state alone
            gaps.append(expert_label(warm, env) - expert_label(fresh, env))
            outcome = env.step(learner_action(actor, env.observe(pose)))
            if outcome.done:
                break
    return np.array(gaps)


def summarise_gaps(gaps: np.ndarray) -> dict:
    norms = np.linalg.norm(gaps, axis=1)
    return {'states': len(gaps), 'mean_gap': float(norms.mean()), 'p95_gap': float(np.percentile(norms, 95)),
            'disagreeing_fraction': float((norms > LARGE_GAP).mean()),
            'mean_abs_gap_per_dimension': np.round(np.abs(gaps).mean(axis=0), 3).tolist()}


def main(argv: list[str] | None = None) -> int:
    from samrl_policy.checkpoints import load_actor
    from samrl_policy.expert import ExpertConfig, TrajectoryExpert
    from samrl_policy.learn_at_sim import run_image_size, run_image_zoom
    from samrl_policy.model_env import ModelEnv
    from samrl_viewpoint.views import ViewSpace
    parser = argparse.ArgumentParser(prog='python -m samrl_policy.label_consistency',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('run_dir', type=Path, help='a Learn@Sim run directory (out/learn_at_sim/<task>)')
    parser.add_argument('--checkpoint', type=Path, help='the actor to roll out (default: the run\'s actor.pt)')
    parser.add_argument('--episodes', type=int, default=10)
    args = parser.parse_args(argv)
    config = json.loads((args.run_dir / 'actor' / 'config.json').read_text())
    torch.set_num_threads(2)
    actor, _ = load_actor(args.checkpoint or args.run_dir / 'actor.pt')
    env = ModelEnv(config['task'], image_size=run_image_size(args.run_dir), zoom=run_image_zoom(args.run_dir))
    expert_config = ExpertConfig(**config['expert'])
    seeds = [episode_seed('evaluation', config['seed'], i) for i in range(args.episodes)]
    gaps = label_gaps(env, actor.eval(), TrajectoryExpert(expert_config), TrajectoryExpert(expert_config),
                      ViewSpace(config['task']), seeds, config['max_episode_steps'])
    print(json.dumps(summarise_gaps(gaps), indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
