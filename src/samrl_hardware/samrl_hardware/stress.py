"""Random and adversarial commands through both adapter cores, held to the limits by audit.py.

    python -m samrl_hardware.stress [--count 10000] [--seed 0] [--json out/stress_adapters.json]

Each core gets `count` commands on a simulated clock: valid ones, NaN, inf, huge, malformed,
outside the workspace or the arm's reach, too fast in time (bursts), while stopped, after the
watchdog, on a stale arm state, with time going back; the Rizon's planner also fails, returns
plans that leave the box, move too fast, are too sparse or end elsewhere, and executions that
fail or never end. The nodes' timers are simulated too (the watchdog ticks). Passed means zero
commands accepted outside the limits and every refusal with its reason.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from samrl_description.geometry import Pose, look_at
from samrl_hardware import rizon
from samrl_hardware.audit import FrankaAuditor, RizonAuditor, Tally
from samrl_hardware.calibration import Calibration, parse_calibration
from samrl_hardware.fake_arm import KinematicPlanner
from samrl_hardware.franka import FrankaAdapterCore, FrankaLimits
from samrl_hardware.rizon import CameraPlan, PlanningError, RizonAdapterCore
from samrl_sim.commands import CameraPoseGoal, EeDeltaCommand

DEFAULT_COUNT = 10_000
FRANKA_TICK_S = 0.02                # franka_node's timer (50 Hz)
RIZON_TICK_S = 0.05                 # rizon_node's timer (20 Hz)
CONTROL_PERIOD_S = 0.1
JITTER_S = 0.03
OFFSET_MAX_M = 0.05                 # largest displacement of a faulty plan's first or last waypoint
BURST_VOLLEY = 8                    # most commands in one burst
FRANKA_START = Pose(np.array([0.5, 0.0, 0.3]), np.array([1.0, 0.0, 0.0, 0.0]))
FRANKA_KINDS = {'valid': 40, 'nan': 4, 'inf': 4, 'huge': 4, 'malformed': 3, 'gripper': 3, 'too_large': 4,
                'toward_wall': 14, 'burst': 3, 'after_watchdog': 4, 'stale_state': 3, 'blocked_arm': 3,
                'time_backwards': 2, 'stop': 2}
RIZON_KINDS = {'valid': 30, 'nan': 3, 'inf': 3, 'bad_quaternion': 3, 'out_of_box': 4, 'out_of_reach': 3,
               'huge_step': 4, 'huge_turn': 3, 'burst': 6, 'busy': 5, 'time_backwards': 2, 'stop': 2,
               'plan_fails': 3, 'plan_fails_silently': 2, 'plan_nan': 2, 'plan_leaves_box': 3, 'plan_too_fast': 3,
               'plan_sparse': 2, 'plan_ends_elsewhere': 2, 'plan_starts_elsewhere': 2, 'plan_bad_times': 2,
               'execution_hangs': 3, 'execution_fails': 3}


def _pick(rng: np.random.Generator, weights: dict[str, int]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[rng.choice(len(names), p=p / p.sum())]


# -- Franka ---------------------------------------------------------------------------------------------

class FakeFranka:
    """A Franka that follows its last target at once, unless blocked (contact) or silent (state lost)."""

    def __init__(self, start: Pose):
        self.pose = self.target = self.reported = start
        self.blocked_until = self.silent_until = -math.inf
        self.reported_at = 0.0

    def step(self, now_s: float) -> Pose | None:
        """Move; the pose to report now, or None while the state is lost."""
        if now_s >= self.blocked_until:
            self.pose = self.target
        if now_s < self.silent_until:
            return None
        self.reported, self.reported_at = self.pose, now_s
        return self.pose


class FrankaStress:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.limits = FrankaLimits()
        self.core = FrankaAdapterCore(self.limits)
        self.tally = Tally()
        self.audit = FrankaAuditor(self.limits, self.tally, FRANKA_START)
        self.arm = FakeFranka(FRANKA_START)
        self.now = 0.0
        self.core.on_state(FRANKA_START, 0.0)

    def run(self, count: int) -> dict:
        while self.tally.commands < count:
            kind = _pick(self.rng, FRANKA_KINDS)
            if kind == 'stop':
                self._stop_episode()
            elif kind == 'burst':       # a volley of full diagonal steps milliseconds apart
                for _ in range(int(self.rng.integers(2, BURST_VOLLEY + 1))):
                    self._command(kind)
            else:
                self._command(kind)
        return self.tally.summary()

    def _advance(self, dt: float) -> None:
        """Let time pass, with the node's timer ticks (state in, watchdog) on the way."""
        end = self.now + dt
        while self.now + FRANKA_TICK_S <= end:
            self.now += FRANKA_TICK_S
            self._tick()
        self.now = end

    def _tick(self) -> None:
        pose = self.arm.step(self.now)
        if pose is not None:
            self.core.on_state(pose, self.now)
        outcome = self.core.on_tick(self.now)
        self.audit.tick(outcome, self.now)
        if outcome is not None:
            self.arm.target = outcome.target.pose

    def _command(self, kind: str) -> None:
        base = kind.removeprefix('after_stop_')
        self._advance(self._gap(base))
        command, at = self._make(base), self.now
        if kind == 'time_backwards':
            at = self.now - self.rng.uniform(0.01, 1.0)
        outcome = self.core.on_command(command, at)
        self.audit.command(kind, outcome, self.now, self.arm.reported, self.arm.reported_at)
        if outcome.target is not None:
            self.arm.target = outcome.target.pose

    def _gap(self, kind: str) -> float:
        if kind == 'burst':
            return self.rng.uniform(0.0, 0.01)
        if kind == 'after_watchdog':
            return self.limits.watchdog_timeout_s + self.rng.uniform(0.05, 1.0)
        if kind == 'stale_state':
            self.arm.silent_until = self.now + self.rng.uniform(0.3, 1.0)
        if kind == 'blocked_arm':
            self.arm.blocked_until = self.now + self.rng.uniform(0.3, 1.5)
        return CONTROL_PERIOD_S + self.rng.uniform(-JITTER_S, JITTER_S)

    def _make(self, kind: str) -> EeDeltaCommand:
        ee, rng = self.limits.ee, self.rng
        translation = rng.uniform(-ee.max_translation_m, ee.max_translation_m, 3)
        rotation = rng.uniform(-ee.max_rotation_rad, ee.max_rotation_rad, 3)
        gripper = rng.uniform(ee.gripper_min_m, ee.gripper_max_m)
        if kind in ('nan', 'inf'):
            bad = math.nan if kind == 'nan' else rng.choice([math.inf, -math.inf])
            values = [*translation, *rotation, gripper]
            values[rng.integers(len(values))] = bad
            return EeDeltaCommand(tuple(values[:3]), tuple(values[3:6]), values[6])
        if kind == 'huge':
            translation[rng.integers(3)] = rng.choice([1e3, -1e6, 1e308])
        if kind == 'too_large':     # one component above its per-step limit
            turn = rng.random() < 0.5
            vector, bound = (rotation, ee.max_rotation_rad) if turn else (translation, ee.max_translation_m)
            vector[rng.integers(3)] = rng.choice([-1.0, 1.0]) * bound * rng.uniform(1.001, 5.0)
        if kind == 'burst':
            translation = rng.choice([-1.0, 1.0], 3) * ee.max_translation_m
        if kind == 'gripper':
            gripper = rng.choice([-0.01, 0.2, ee.gripper_max_m * 1.001])
        if kind == 'toward_wall':
            translation = self._toward_wall()
        if kind == 'malformed':
            rotation = ('x', 0.0, 0.0) if rng.random() < 0.5 else tuple(rotation)     # not numeric
            return EeDeltaCommand(tuple(translation[:2]), rotation, gripper)
        return EeDeltaCommand(tuple(translation), tuple(rotation), gripper)

    def _toward_wall(self) -> np.ndarray:
        """A full step toward the nearest wall of the workspace (so the walls are reached often)."""
        box, position = self.limits.ee.workspace, self.core.target.position if self.core.target is not None \
            else FRANKA_START.position
        distances = np.concatenate([position - np.asarray(box.lower), np.asarray(box.upper) - position])
        wall = int(np.argmin(distances))
        step = np.zeros(3)
        step[wall % 3] = (-1.0 if wall < 3 else 1.0) * self.limits.ee.max_translation_m
        return step

    def _stop_episode(self) -> None:
        """Stop; commands while stopped; resets before and after the stop topic is released."""
        self._advance(CONTROL_PERIOD_S)
        outcome = self.core.on_stop(True, '/samrl/stop')
        self.tally.events['stops'] += 1
        self.audit.hold(outcome)
        self.arm.target = outcome.target.pose if outcome is not None and outcome.target is not None else self.arm.target
        self.audit.stopped = True
        for _ in range(int(self.rng.integers(1, 15))):
            self._command('after_stop_' + _pick(self.rng, {'valid': 3, 'burst': 1, 'after_watchdog': 1,
                                                           'toward_wall': 1}))
        self._reset(expect=False)                       # the topic still holds the stop
        self.core.on_stop(False, '/samrl/stop')
        if self.rng.random() < 0.3:                     # released but not yet reset: still refused
            self._command('after_stop_valid')
        self._reset(expect=True)
        self.audit.stopped = False

    def _reset(self, expect: bool) -> None:
        verdict = self.core.reset()
        self.tally.events['resets_accepted' if verdict.accepted else 'resets_refused'] += 1
        if verdict.accepted != expect:
            self.tally.violation(f'reset {"accepted" if verdict.accepted else "refused"}: {verdict.reason}')
        if not verdict.accepted and not verdict.reason.strip():
            self.tally.refusals_without_reason += 1


# -- Rizon ----------------------------------------------------------------------------------------------

class FaultyPlanner(KinematicPlanner):
    """The kinematic planner with a fault chosen by the stress test for its next plan or execution."""

    def __init__(self, start: Pose, clock, calibration: Calibration, rng: np.random.Generator):
        super().__init__(start, clock)
        self.calibration, self.rng = calibration, rng
        self.fault = ''
        self.hung = False
        self.fail_at_s: float | None = None

    def plan(self, flange_goal: Pose) -> CameraPlan:
        fault, self.fault = self.fault, self.fault if self.fault.startswith('execution') else ''
        if fault == 'plan_fails':
            raise PlanningError('no collision-free path found')
        if fault == 'plan_fails_silently':
            raise PlanningError()
        plan = super().plan(flange_goal)
        return self._spoil(plan, fault) if fault.startswith('plan') else plan

    def _spoil(self, plan: CameraPlan, fault: str) -> CameraPlan:
        poses, times = list(plan.flange_poses), list(plan.times_s)
        middle = len(poses) // 2
        if fault == 'plan_nan':
            poses[middle] = Pose(np.array([math.nan, 0.0, 0.0]), poses[middle].quaternion)
        elif fault == 'plan_leaves_box':
            poses = [Pose(p.position + np.array([0.0, 0.0, -1.5 * math.sin(math.pi * i / (len(poses) - 1))]),
                          p.quaternion) for i, p in enumerate(poses)]
        elif fault == 'plan_too_fast':
            times = [t / self.rng.uniform(10.0, 100.0) for t in times]
        elif fault == 'plan_sparse':
            poses, times = [poses[0], poses[-1]], [times[0], times[-1]]
        elif fault == 'plan_ends_elsewhere':
            poses[-1] = Pose(poses[-1].position + self._offset(rizon.GOAL_TOLERANCE_M), poses[-1].quaternion)
        elif fault == 'plan_starts_elsewhere':
            poses[0] = Pose(poses[0].position + self._offset(rizon.START_TOLERANCE_M), poses[0].quaternion)
        elif fault == 'plan_bad_times':
            times[middle] = times[0] if self.rng.random() < 0.5 else math.nan
        return replace(plan, flange_poses=tuple(poses), times_s=tuple(times))

    def _offset(self, tolerance_m: float) -> np.ndarray:
        """A displacement in a random direction, always beyond `tolerance_m` (a normal draw was sometimes within it)."""
        direction = self.rng.normal(size=3)
        return direction / np.linalg.norm(direction) * self.rng.uniform(2.0 * tolerance_m, OFFSET_MAX_M)

    def execute(self, plan: CameraPlan) -> None:
        super().execute(plan)
        self.hung = self.fault == 'execution_hangs'
        self.fail_at_s = self.clock() + plan.duration_s / 2 if self.fault == 'execution_fails' else None
        self.fault = ''

    def poll(self):
        if self.hung:
            return None
        if self.fail_at_s is not None and self.clock() >= self.fail_at_s:
            self.fail_at_s = None
            self.stop()
            return False, ''
        return None if self.fail_at_s is not None else super().poll()

    def stop(self) -> None:
        self.hung = False
        super().stop()


class RizonStress:
    def __init__(self, seed: int, calibration: Calibration):
        self.rng = np.random.default_rng(seed + 1)
        self.now = 0.0
        camera = look_at((0.55, -0.35, 0.55), (0.55, 0.0, 0.05))
        start = calibration.rizon_base_in_world.inverse() * camera * calibration.hand_eye.inverse()
        self.planner = FaultyPlanner(start, lambda: self.now, calibration, self.rng)
        self.core = RizonAdapterCore(self.planner, calibration)
        self.tally = Tally()
        self.audit = RizonAuditor(self.core.limits, self.tally, calibration.rizon_base_in_world, calibration.hand_eye)

    def run(self, count: int) -> dict:
        while self.tally.commands < count:
            kind = _pick(self.rng, RIZON_KINDS)
            if kind == 'stop':
                self._stop_episode()
            else:
                self._goal(kind)
        return self.tally.summary()

    def _advance(self, dt: float) -> None:
        end = self.now + dt
        while self.now + RIZON_TICK_S <= end:
            self.now += RIZON_TICK_S
            self.audit.tick(self.core.on_tick(self.now), self.now)
        self.now = end

    def _goal(self, kind: str) -> None:
        if kind != 'busy':      # wait for the previous motion to end (or be stopped), unless testing that
            while self.core.mode.value == 'moving':
                self._advance(RIZON_TICK_S)
        base = kind.removeprefix('after_stop_')
        self._advance(self.rng.uniform(0.0, 0.01) if base in ('burst', 'busy') else self.rng.uniform(0.2, 2.0))
        self.planner.fault = kind if kind.startswith(('plan', 'execution')) else ''
        goal, at = self._make(base), self.now
        if kind == 'time_backwards':
            at = self.now - self.rng.uniform(0.01, 1.0)
        flange_before = self.planner.current_flange_pose()
        self.audit.goal(kind, self.core.on_goal(goal, at), self.now, goal, flange_before)
        self.planner.fault = ''

    def _make(self, kind: str) -> CameraPoseGoal:
        camera = self.core.camera_in_world(self.planner.current_flange_pose())
        rng = self.rng
        step = rng.normal(0.0, 0.08, 3)
        position = np.clip(camera.position + step, self.core.limits.camera.workspace.lower,
                           self.core.limits.camera.workspace.upper)
        target = np.array([0.55, 0.0, 0.05]) + rng.normal(0.0, 0.08, 3)
        quaternion = look_at(position, target).quaternion if np.linalg.norm(target - position) > 0.05 \
            else camera.quaternion
        if kind in ('nan', 'inf'):
            values = [*position, *quaternion]
            values[rng.integers(7)] = math.nan if kind == 'nan' else math.inf
            return CameraPoseGoal(tuple(values[:3]), tuple(values[3:]))
        if kind == 'bad_quaternion':
            quaternion = quaternion * rng.choice([0.0, 0.5, 1.2, 1e6])
        if kind == 'out_of_box':
            position = position + rng.choice([-1.0, 1.0]) * np.eye(3)[rng.integers(3)] * rng.uniform(1.0, 3.0)
        if kind == 'out_of_reach':
            position = np.array([1.15, 0.85, 0.95])
        if kind == 'huge_step':
            position = camera.position + rng.normal(0.0, 1.0, 3) / 2.0 + np.sign(rng.normal(size=3)) * 0.3
        if kind == 'huge_turn':
            quaternion = look_at(position, position + np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, 3),
                                 up=(1.0, 0.0, 0.0)).quaternion
        return CameraPoseGoal(tuple(position), tuple(quaternion))

    def _stop_episode(self) -> None:
        self._advance(self.rng.uniform(0.0, 0.5))
        self.audit.stop(self.core.on_stop(True, '/samrl/stop'))
        self.tally.events['stops'] += 1
        for _ in range(int(self.rng.integers(1, 10))):
            self._goal('after_stop_' + _pick(self.rng, {'valid': 3, 'burst': 1}))
        for expect in (False, True):
            if expect:
                self.core.on_stop(False, '/samrl/stop')
            verdict = self.core.reset()
            self.tally.events['resets_accepted' if verdict.accepted else 'resets_refused'] += 1
            if verdict.accepted != expect:
                self.tally.violation(f'reset {"accepted" if verdict.accepted else "refused"}: {verdict.reason}')
        self.audit.stopped = False


# -- entry point ----------------------------------------------------------------------------------------

def example_calibration() -> Calibration:
    """The simulated cell's calibration (the example file's values), without reading a file."""
    pose = lambda t, q: {'translation_m': list(t), 'quaternion_xyzw': list(q)}  # noqa: E731
    half = math.sqrt(0.5)
    return parse_calibration({
        'camera_intrinsics': {'width': 640, 'height': 480, 'fx': 615.0, 'fy': 615.0, 'cx': 320.0, 'cy': 240.0},
        'rizon_base_in_franka_base': pose((0.55, -0.65, 0.0), (0.0, 0.0, half, half)),
        'hand_eye': pose((0.0, 0.015, 0.0325), (0.0, 0.0, -half, half)),
        'optical_in_camera_root': pose((0.0, 0.015, 0.0), (-0.5, 0.5, -0.5, 0.5))})


def run(count: int = DEFAULT_COUNT, seed: int = 0) -> dict:
    franka = FrankaStress(seed).run(count)
    rizon = RizonStress(seed, example_calibration()).run(count)
    return {'seed': seed, 'franka': franka, 'rizon': rizon, 'passed': franka['passed'] and rizon['passed']}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m samrl_hardware.stress', description=__doc__.split('\n')[0])
    parser.add_argument('--count', type=int, default=DEFAULT_COUNT, help=f'commands per core (default {DEFAULT_COUNT})')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', metavar='PATH', help='also write the results to this file')
    args = parser.parse_args(argv)
    result = run(args.count, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + '\n')
    return 0 if result['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
