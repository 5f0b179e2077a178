"""Can the view step help this actor at all? Two measurements in M, on seeds of their own.

The view step (Eq. 10) raises success only if the actor does better from some views than from others
and Q can tell which. Both are measured here, with the camera held still through each episode:

- **Image reliance**: the actor from its start view, once with its own render and once with the render
  of another start state (seed + OTHER_STATE_OFFSET) from the same view and with its own proprioception.
  An actor whose success does not drop when it sees the wrong scene acts from its proprioception: no
  view can be better for it than another.
- **View dependence**: `views` start views for each start state (the first the task's default view).
  How many states the actor solves from some views but not others, how often it would solve a state
  from its best view, and how often Q(I(P), pi(I(P))) at the start orders two views of one state as
  their outcomes do (pairs with one success and one failure; 0.5 is chance).
- **Smoothness** (--smoothness): does the outcome change smoothly with the view? Each of `views`
  random views of a state is paired with a view one camera move away (a random move within the view
  step's per-step bounds, projected onto the reachable views). If two views one move apart agree on
  the outcome no more often than two random views of the state, the outcome is chaotic at the view
  step's scale: neither Q nor its gradient can find the better views, whatever Q is trained on.

    python -m samrl_policy.view_probe needle_threading [--run-dir shipped] [--states 40] [--views 6]
        [--smoothness] [--json F]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from samrl_common.reports import write_json
from samrl_policy.dagger import learner_action
from samrl_policy.training import episode_seed

PROBE_RUN_SEED = 5              # episode_seed('evaluation', PROBE_RUN_SEED, i): no run trains or tunes on these
OTHER_STATE_OFFSET = 1000       # the seed whose scene the 'other image' episodes are shown
VIEW_STREAM = 11                # rng stream of the probe's start views


def run_still(env, actor, pose: torch.Tensor, seed: int, other_env=None) -> bool:
    """One episode of the actor with the camera still at `pose`; with `other_env`, every image it sees is
    that env's render (another start state) from the same pose. Success."""
    env.reset(seed)
    if other_env is not None:
        other_env.reset(seed + OTHER_STATE_OFFSET)
    outcome = None
    for _ in range(env.max_episode_steps):
        observation = env.observe(pose)
        if other_env is not None:
            observation = type(observation)(other_env.observe(pose).image, observation.proprio)
        outcome = env.step(learner_action(actor, observation))
        if outcome.done:
            break
    return bool(outcome.success)


@torch.no_grad()
def image_reliance(env, other_env, actor, views, seeds: list[int], fixed_view: bool = False) -> dict:
    """Success from each seed's start view with the actor's own render and with another state's."""
    rng = np.random.default_rng(VIEW_STREAM)
    own, other = [], []
    for seed in seeds:
        pose = views.camera_pose(views.default() if fixed_view else views.sample(rng, 1)[0])
        own.append(run_still(env, actor, pose, seed))
        other.append(run_still(env, actor, pose, seed, other_env))
    return {'episodes': len(seeds), 'success_own_image': float(np.mean(own)),
            'success_other_state_image': float(np.mean(other))}


def view_dependence(env, actor, q_of_view, views, seeds: list[int], views_per_state: int) -> dict:
    """Outcomes of each start state from several still views, and how Q at the start ranks them.

    q_of_view(env, params) -> Q at the current state of env from view params (a float)."""
    rng = np.random.default_rng([VIEW_STREAM, views_per_state])
    outcomes, q_values = [], []
    for seed in seeds:
        candidates = [views.default(), *views.sample(rng, views_per_state - 1)]
        row, q_row = [], []
        for params in candidates:
            env.reset(seed)
            q_row.append(q_of_view(env, params))
            with torch.no_grad():
                row.append(run_still(env, actor, views.camera_pose(params), seed))
        outcomes.append(row)
        q_values.append(q_row)
    return summarise_views(np.array(outcomes, dtype=bool), np.array(q_values))


@torch.no_grad()
def view_smoothness(env, actor, views, neighbour, seeds: list[int], views_per_state: int) -> dict:
    """How often a view and one a camera move away give the same outcome, against two random views of the state.

    neighbour(params, rng) -> a view one camera move from params."""
    rng = np.random.default_rng([VIEW_STREAM, views_per_state, 1])
    one_move, random_pair = [], []
    for seed in seeds:
        candidates = views.sample(rng, views_per_state)
        outcomes = [run_still(env, actor, views.camera_pose(params), seed) for params in candidates]
        moved = [run_still(env, actor, views.camera_pose(neighbour(params, rng)), seed) for params in candidates]
        one_move += [a == b for a, b in zip(outcomes, moved)]
        random_pair += [outcomes[i] == outcomes[j] for i in range(len(outcomes)) for j in range(i + 1, len(outcomes))]
    return {'states': len(seeds), 'one_move_pairs': len(one_move), 'one_move_agreement': float(np.mean(one_move)),
            'random_view_agreement': float(np.mean(random_pair)) if random_pair else None}


def summarise_views(outcomes: np.ndarray, q_values: np.ndarray) -> dict:
    """outcomes, q_values: (states, views), the first view the default one."""
    solved = outcomes.mean(axis=1)
    right = pairs = 0
    for row, q_row in zip(outcomes, q_values):
        for i in np.flatnonzero(row):
            for j in np.flatnonzero(~row):
                pairs += 1
                right += bool(q_row[i] > q_row[j])
    return {'states': len(outcomes), 'views_per_state': outcomes.shape[1], 'success': float(outcomes.mean()),
            'success_default_view': float(outcomes[:, 0].mean()),
            'success_best_view': float(outcomes.any(axis=1).mean()),
            'success_from_every_view': float(outcomes.all(axis=1).mean()),
            'states_with_mixed_outcomes': float(np.mean((solved > 0) & (solved < 1))),
            'q_pairs': pairs, 'q_pair_accuracy': right / pairs if pairs else None}


def main(argv: list[str] | None = None) -> int:
    from samrl_description.tasks import TASK_NAMES
    from samrl_policy.learn_at_sim import SHIPPED, load_policies, run_dir_of, run_image_size, run_image_zoom
    from samrl_policy.model_env import ModelEnv
    from samrl_viewpoint.active_view import sensing_q
    from samrl_viewpoint.views import ViewSpace
    parser = argparse.ArgumentParser(prog='python -m samrl_policy.view_probe', description=__doc__.split('\n')[0])
    parser.add_argument('task', choices=TASK_NAMES)
    parser.add_argument('--run-dir', default=SHIPPED, help=f'run directory, or {SHIPPED!r} (default)')
    parser.add_argument('--states', type=int, default=40, help='start states (default 40)')
    parser.add_argument('--views', type=int, default=6, help='still views per start state (default 6)')
    parser.add_argument('--smoothness', action='store_true',
                        help='also pair each of a state\'s views with one a camera move away (twice the rollouts)')
    parser.add_argument('--json', type=Path, help='also write the figures here')
    args = parser.parse_args(argv)
    if args.states < 1 or args.views < 2:
        parser.error(f'--states must be >= 1 and --views >= 2, got {args.states} and {args.views}')
    torch.set_num_threads(2)
    run_dir = run_dir_of(args.run_dir, args.task)
    size, policies, views = run_image_size(run_dir), load_policies(run_dir), ViewSpace(args.task)
    zoom = run_image_zoom(run_dir)
    env, other_env = (ModelEnv(args.task, image_size=size, zoom=zoom) for _ in range(2))
    seeds = [episode_seed('evaluation', PROBE_RUN_SEED, i) for i in range(args.states)]

    def q_at(probe_env, params) -> float:
        with torch.no_grad():
            return float(sensing_q(probe_env.observe, policies.actor, policies.q_network, views)(params))

    report = {'task': args.task, 'run_dir': str(run_dir),
              'image_reliance': {'actor': image_reliance(env, other_env, policies.actor, views, seeds),
                                 'fixed_actor': image_reliance(env, other_env, policies.fixed_actor, views, seeds,
                                                               fixed_view=True)},
              'view_dependence': view_dependence(env, policies.actor, q_at, views, seeds, args.views)}
    if args.smoothness:
        report['smoothness'] = view_smoothness(env, policies.actor, views, one_camera_move(views), seeds, args.views)
    print(json.dumps(report, indent=1))
    write_json(args.json, report)
    return 0


def one_camera_move(views):
    """neighbour(params, rng): a uniformly random move within one view step's bounds, projected to a reachable view."""
    from samrl_viewpoint.view_step import ViewStepBounds
    bounds = ViewStepBounds().as_tensor()

    def neighbour(params: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        move = torch.from_numpy(rng.uniform(-1.0, 1.0, len(bounds))) * bounds
        return views.project(params + move, anchor=params)
    return neighbour


if __name__ == '__main__':
    raise SystemExit(main())
