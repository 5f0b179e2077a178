"""The Learn@Sim actor in the PyBullet world, with M set to the world's true state at every step.

Algorithm 1 without a residual (a_real = a_sim) has three gaps between Table I in M and the task
graph in the world: M's physics against the world's, Real2Sim's error, and the graph's latency. This
controller removes the last two: each step it reads the world's true object placements and tool
pose (privileged, as the oracles do), renders them as M does from the world's camera, and applies
the actor's action. Its success rate is what a perfect tracker with no latency would reach, so the
gap to Table I's column is M's physics alone (`samrl eval <task> --controller actor`).

Sim-side, as the benches are: it imports the simulator, and no node imports it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from samrl_description.tasks import GRIPPER_WIDTHS_M, check_task
from samrl_model.sim_adapter import placements
from samrl_policy.dagger import learner_action
from samrl_policy.learn_at_sim import SHIPPED, load_policies, run_dir_of
from samrl_policy.model_env import command_from_action
from samrl_policy.policy_core import ModelStateView, checked_progress, image_size_of
from samrl_sim.commands import EeDeltaCommand

ACTORS = ('actor', 'fixed_actor')       # the multi-view actor, the Fixed-View actor


class ActorOnTruth:
    """An oracle-shaped controller (reset(world), act(world)) running one of a run's actors."""

    def __init__(self, task: str, run_dir: Path, which: str = 'actor'):
        if which not in ACTORS:
            raise ValueError(f'actor must be one of {", ".join(ACTORS)}, got {which!r}')
        self.task = check_task(task)
        policies = load_policies(run_dir)
        self.actor = getattr(policies, which).eval()
        self.view = ModelStateView(task, image_size_of(Path(run_dir), self.actor), zoom=self.actor.config.image_zoom)

    def reset(self, world) -> None:
        del world       # memoryless: every step starts from the world's state

    def act(self, world) -> EeDeltaCommand:
        tcp = world.tcp_pose()
        progress = checked_progress(world.task_state().step, world.task.max_episode_steps)
        camera = torch.as_tensor(world.camera_pose().as_matrix(), dtype=torch.float64)
        observation = self.view.observe(placements(world), tcp, progress, camera)
        with torch.no_grad():
            action = torch.as_tensor(learner_action(self.actor, observation))
        delta = command_from_action(torch.as_tensor(tcp.position, dtype=torch.float64), action)
        return EeDeltaCommand(tuple(float(v) for v in delta[:3]), tuple(float(v) for v in delta[3:]),
                              GRIPPER_WIDTHS_M[self.task])


# --- side by side: the same actor from the same start in M and in the world -------------------------

def side_by_side(task: str, run_dir: Path, seed: int, which: str = 'fixed_actor',
                 steps: int | None = None) -> list[dict]:
    """Per step (0: the shared start), the task's measures (success, tip or peg offsets ...) in M and in
    the world, each acting on its own state from the world's default camera: where M's physics parts
    from the world's."""
    from samrl_policy.model_env import ModelEnv
    from samrl_sim.world import World
    agent = ActorOnTruth(task, run_dir, which)
    world = World(task)
    try:
        world.reset(seed=seed)
        env = ModelEnv(task, image_size=image_size_of(Path(run_dir), agent.actor), seed=seed,
                       zoom=agent.actor.config.image_zoom)
        camera = torch.as_tensor(world.camera_pose().as_matrix(), dtype=torch.float64)
        rows = [{'step': 0, 'model': _measures(env.task.evaluate(env.state, env.memory)),
                 'world': _measures(world.task_state().info)}]       # the same start
        done_m = done_w = False
        for step in range(steps or world.task.max_episode_steps):
            row = {'step': step + 1}
            if not done_m:
                with torch.no_grad():
                    outcome = env.step(learner_action(agent.actor, env.observe(camera)))
                row['model'], done_m = _measures(outcome.info), outcome.done
            if not done_w:
                result = world.step(agent.act(world))
                row['world'], done_w = _measures(result.state.info), result.state.success or result.state.truncated
            rows.append(row)
            if done_m and done_w:
                break
        return rows
    finally:
        world.close()


def _measures(info: dict) -> dict:
    return {key: float(value) for key, value in info.items() if key not in ('step', 'normalized_reward')}


def format_side_by_side(rows: list[dict]) -> str:
    """A table: per step, each measure as 'M / world' (a side whose episode ended shows '-')."""
    keys = sorted({key for row in rows for side in ('model', 'world') for key in row.get(side, {})})
    lines = ['step  ' + '  '.join(f'{key:>28}' for key in keys)]
    for row in rows:
        cells = []
        for key in keys:
            m, w = (row.get(side, {}).get(key) for side in ('model', 'world'))
            cells.append(f'{_cell(m)} / {_cell(w)}'.rjust(28))
        lines.append(f'{row["step"]:4d}  ' + '  '.join(cells))
    return '\n'.join(lines)


def _cell(value: float | None) -> str:
    return '-' if value is None else f'{value:+.4f}'


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    parser = argparse.ArgumentParser(prog='python -m samrl_policy.world_eval',
                                     description='one episode of an actor in M and in the PyBullet world, side '
                                                 'by side (per step: the task\'s measures as M / world)')
    parser.add_argument('task')
    parser.add_argument('--run-dir', default=SHIPPED, help='run directory ({task} is replaced), or "shipped" (default)')
    parser.add_argument('--actor', default='fixed_actor', choices=ACTORS)
    parser.add_argument('--seed', type=int, default=900000000, help='the episode\'s seed (default: Table I\'s first)')
    parser.add_argument('--steps', type=int, help='at most this many steps (default: the task\'s budget)')
    parser.add_argument('--json', metavar='PATH', help='also write the rows as JSON')
    args = parser.parse_args(argv)
    rows = side_by_side(args.task, run_dir_of(args.run_dir, args.task), args.seed, args.actor, args.steps)
    print(format_side_by_side(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
