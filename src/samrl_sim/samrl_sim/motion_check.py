"""Stress test of the arm's motion safety: random and adversarial commands, counted by outcome.

A learning agent sends anything inside (and outside) the action bounds, so the per-step limits
must hold for what the arm actually does, not only for what was commanded. The commands come in
runs of one kind so that pushes reach the workspace walls and rotations reach the joint limits.
Run `python -m samrl_sim.motion_check --commands 10000` for the figures of all tasks.
"""
from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from samrl_description.geometry import Pose
from samrl_sim.commands import EeDeltaCommand
from samrl_sim.envs import SamrlEnv
from samrl_sim.safety import EeLimits, ToolMotion
from samrl_sim.tasks import TASK_NAMES
from samrl_sim.world import World, check_measured_step

COMMAND_KINDS = ('random', 'at_limits', 'out_of_workspace', 'large_rotation', 'reversing', 'over_limits')
RUN_LENGTH_RANGE = (1, 40)           # commands per run of one kind (40 x 20 mm crosses the workspace)
EPISODE_COMMANDS = 150               # commands before the world is reset to a new seeded episode
OVER_LIMIT_SCALE_RANGE = (1.2, 3.0)  # over_limits commands, in units of the per-step limits
NUMBER_PATTERN = re.compile(r'\[[^\]]*\]|\([^)]*\)|-?\d+(\.\d+)?(e-?\d+)?')


@dataclass
class MotionReport:
    """Outcome counts of a stress run; `violations` and `empty_reasons` should be 0."""

    commands: int = 0
    accepted: int = 0
    shortened: int = 0                                     # scaled down before execution
    stopped: int = 0                                       # held during the period at the bounds
    rejected: Counter = field(default_factory=Counter)     # reason, with numbers blanked, -> count
    empty_reasons: int = 0                                 # refusals without a reason
    violations: int = 0                                    # accepted steps whose measured motion is out of bounds
    worst_translation_m: float = 0.0                       # largest measured per-axis tool motion
    worst_rotation_rad: float = 0.0                        # largest measured rotation-vector component
    worst_excursion_m: float = 0.0                         # furthest measured outside the workspace

    def add_refusal(self, reason: str) -> None:
        self.rejected[NUMBER_PATTERN.sub('#', reason)] += 1
        self.empty_reasons += not reason

    def add_step(self, start: Pose, end: Pose, limits: EeLimits, shortened: bool, stopped: bool) -> None:
        """Count an accepted step and measure it against the per-step limits and the workspace."""
        motion = ToolMotion.between(start, end)
        self.accepted += 1
        self.shortened += shortened
        self.stopped += stopped
        self.violations += not check_measured_step(start, end, limits).ok
        self.worst_translation_m = max(self.worst_translation_m, motion.largest_translation_m)
        self.worst_rotation_rad = max(self.worst_rotation_rad, motion.largest_rotation_rad)
        self.worst_excursion_m = max(self.worst_excursion_m, limits.workspace.excursion_m(end.position))

    def as_dict(self) -> dict:
        return {**asdict(self), 'rejected': dict(self.rejected.most_common())}


class CommandStream:
    """Seeded commands in runs of one kind: 6 components in units of the per-step limits, and a
    gripper opening fraction in [0, 1]."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self._pending: list[tuple[np.ndarray, float]] = []

    def next(self) -> tuple[np.ndarray, float]:
        if not self._pending:
            self._pending = self._new_run()
        return self._pending.pop()

    def _new_run(self) -> list[tuple[np.ndarray, float]]:
        kind = COMMAND_KINDS[self.rng.integers(len(COMMAND_KINDS))]
        length = int(self.rng.integers(RUN_LENGTH_RANGE[0], RUN_LENGTH_RANGE[1] + 1))
        gripper = float(self.rng.uniform())
        return [(delta, gripper) for delta in getattr(self, f'_{kind}')(length)]

    def _signs(self, size: int) -> np.ndarray:
        return self.rng.choice([-1.0, 1.0], size)

    def _random(self, length: int) -> list[np.ndarray]:
        return [self.rng.uniform(-1.0, 1.0, 6) for _ in range(length)]

    def _at_limits(self, length: int) -> list[np.ndarray]:
        return [self._signs(6) for _ in range(length)]

    def _out_of_workspace(self, length: int) -> list[np.ndarray]:
        """Full-speed push in one fixed direction: reaches a wall, then keeps pushing into it."""
        push = np.concatenate([self._signs(3) * (self.rng.uniform(size=3) < 0.7), np.zeros(3)])
        return [push] * length

    def _large_rotation(self, length: int) -> list[np.ndarray]:
        """Full-rate turn about one fixed axis until the wrist runs out of joint range."""
        turn = np.concatenate([self.rng.uniform(-0.2, 0.2, 3), self._signs(3)])
        return [turn] * length

    def _reversing(self, length: int) -> list[np.ndarray]:
        """A full step and its reverse, alternating: the arm has to brake every step."""
        delta = self._signs(6)
        return [delta * (-1.0) ** k for k in range(length)]

    def _over_limits(self, length: int) -> list[np.ndarray]:
        return [self._signs(6) * self.rng.uniform(*OVER_LIMIT_SCALE_RANGE, 6) for _ in range(length)]


def _command(delta: np.ndarray, gripper: float, limits: EeLimits) -> EeDeltaCommand:
    width = limits.gripper_min_m + gripper * (limits.gripper_max_m - limits.gripper_min_m)
    return EeDeltaCommand(tuple(delta[:3] * limits.max_translation_m), tuple(delta[3:] * limits.max_rotation_rad),
                          width)


def check_world(world: World, commands: int, seed: int = 0) -> MotionReport:
    """Send `commands` stream commands through World.step; episodes restart every EPISODE_COMMANDS."""
    report, stream, limits = MotionReport(), CommandStream(seed), world.config.ee_limits
    for index in range(commands):
        if index % EPISODE_COMMANDS == 0:
            world.reset(seed=seed + index // EPISODE_COMMANDS)
        start = world.tcp_pose()
        result = world.step(_command(*stream.next(), limits))
        report.commands += 1
        if not result.accepted:
            report.add_refusal(result.reason)
            continue
        report.add_step(start, world.tcp_pose(), limits, bool(result.shortened), bool(result.stopped))
    return report


def check_env(env: SamrlEnv, commands: int, seed: int = 0) -> MotionReport:
    """The same stream as actions of the gymnasium environment (out-of-range values are clipped there)."""
    report, stream, limits = MotionReport(), CommandStream(seed), env.world.config.ee_limits
    for index in range(commands):
        if index % EPISODE_COMMANDS == 0:
            env.reset(seed=seed + index // EPISODE_COMMANDS)
        delta, gripper = stream.next()
        start = env.world.tcp_pose()
        _, _, _, _, info = env.step(np.append(delta, 2.0 * gripper - 1.0).astype(np.float32))
        report.commands += 1
        if info['command_rejected']:
            report.add_refusal(info['command_rejected'])
            continue
        report.add_step(start, env.world.tcp_pose(), limits, bool(info['command_shortened']),
                        bool(info['command_stopped']))
    return report


def run_all(tasks: list[str], commands: int, seed: int, image_size: tuple[int, int]) -> dict:
    """Reports of every task, through the World and through the gymnasium environment."""
    reports = {}
    for task in tasks:
        world = World(task)
        reports[f'{task}/world'] = check_world(world, commands, seed).as_dict()
        world.close()
        env = SamrlEnv(task, image_size=image_size)
        reports[f'{task}/env'] = check_env(env, commands, seed).as_dict()
        env.close()
    return reports


def format_reports(reports: dict) -> str:
    """One row per task and interface: commands, accepted, shortened, stopped, refused, violations, worst motion."""
    rows = ['| case | commands | accepted | shortened | stopped early | refused (empty reasons) | violations | '
            'worst motion mm / rad | worst excursion mm |', '|---|---|---|---|---|---|---|---|---|']
    for case, r in reports.items():
        refused = sum(r['rejected'].values())
        rows.append(f"| {case} | {r['commands']:,} | {r['accepted']:,} | {r['shortened']:,} | {r['stopped']:,} | "
                    f"{refused:,} ({r['empty_reasons']}) | {r['violations']} | {r['worst_translation_m'] * 1000:.2f} / "
                    f"{r['worst_rotation_rad']:.4f} | {r['worst_excursion_m'] * 1000:.1f} |")
    return '\n'.join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--commands', type=int, default=1000, help='commands per task and interface')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tasks', nargs='+', default=list(TASK_NAMES), choices=TASK_NAMES)
    parser.add_argument('--image-size', type=int, default=16, help='env observation size (pixels; small is fast)')
    args = parser.parse_args(argv)
    size = (args.image_size, args.image_size)
    print(json.dumps(run_all(args.tasks, args.commands, args.seed, size), indent=1))


if __name__ == '__main__':
    main()
