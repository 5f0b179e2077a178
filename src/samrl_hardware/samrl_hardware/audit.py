"""Independent auditors for the adapter stress test: they recompute every limit from the
configuration and the cores' outputs (never through the cores' own checks) and record each
violation, so that a bug in a core's checks cannot hide itself.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from samrl_description.geometry import Pose
from samrl_hardware.franka import FrankaLimits, FrankaOutcome
from samrl_hardware.rizon import (
    GOAL_TOLERANCE_M,
    GOAL_TOLERANCE_RAD,
    MAX_WAYPOINT_GAP_M,
    MAX_WAYPOINT_GAP_RAD,
    START_TOLERANCE_M,
    START_TOLERANCE_RAD,
    CameraPlan,
    RizonLimits,
)

ROUNDING = 1e-9             # relative slack at a bound, as the cores allow
BOX_ROUNDING_M = 1e-9       # slack at a wall for poses the auditor recomposes itself
TIME_ROUNDING_S = 1e-9      # a tick at the watchdog's deadline, give or take rounding, is not late
SPEED_ROUNDING = 1e-6       # relative slack on planned speeds (waypoint times are rounded)
KEPT_VIOLATIONS = 10
NUMBER = re.compile(r'[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?|nan|inf', re.IGNORECASE)
BRACKETS = re.compile(r'\[[^\]]*\]')


def reason_category(reason: str) -> str:
    """A refusal reason with its numbers blanked, so that reasons of one kind count together."""
    return NUMBER.sub('#', BRACKETS.sub('[...]', reason))[:90]


def _inside(point: np.ndarray, box) -> bool:
    lower, upper = np.asarray(box.lower) - BOX_ROUNDING_M, np.asarray(box.upper) + BOX_ROUNDING_M
    return bool(np.all(point >= lower) and np.all(point <= upper))


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float((Rotation.from_quat(b) * Rotation.from_quat(a).inv()).magnitude())


def _rotvec(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation vector of R_b R_a^T: the rotation command that turns a into b."""
    return (Rotation.from_quat(b) * Rotation.from_quat(a).inv()).as_rotvec()


class WindowCheck:
    """Checks that over every interval [t_i, t_j] of accepted motions, sum <= burst + rate (t_j - t_i)."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.total, self.lowest_start = 0.0, np.inf

    def add(self, time_s: float, amount: float) -> str:
        # interval from motion i to j: total_j - total_{i-1} - rate (t_j - t_i) <= burst
        self.lowest_start = min(self.lowest_start, self.total - self.rate * time_s)
        self.total += amount
        excess = self.total - self.rate * time_s - self.lowest_start
        if excess <= self.burst * (1 + ROUNDING) + 1e-12:
            return ''
        return f'{excess:.4g} moved in a window allowing {self.burst:.4g}'


@dataclass
class Tally:
    """Counts of one stress run, and the violations found."""

    commands: int = 0
    accepted: int = 0
    refused: int = 0
    refusals_without_reason: int = 0
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    sent_by_kind: Counter = field(default_factory=Counter)
    accepted_by_kind: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)

    def violation(self, text: str) -> None:
        self.violation_count += 1
        if len(self.violations) < KEPT_VIOLATIONS:
            self.violations.append(text)

    def verdict(self, kind: str, verdict) -> None:
        """Count a command's verdict; a refusal must say why."""
        self.commands += 1
        self.sent_by_kind[kind] += 1
        if verdict.accepted:
            self.accepted += 1
            self.accepted_by_kind[kind] += 1
            return
        self.refused += 1
        if not verdict.reason or not verdict.reason.strip():
            self.refusals_without_reason += 1
        self.reasons[reason_category(verdict.reason)] += 1

    def summary(self) -> dict:
        return {'commands': self.commands, 'accepted': self.accepted, 'refused': self.refused,
                'accepted_outside_limits': self.violation_count,
                'refusals_without_reason': self.refusals_without_reason,
                'passed': self.violation_count == 0 and self.refusals_without_reason == 0,
                'by_kind': {k: {'sent': n, 'accepted': self.accepted_by_kind[k]}
                            for k, n in sorted(self.sent_by_kind.items())},
                'events': dict(sorted(self.events.items())),
                'refusal_reasons': dict(self.reasons.most_common(25)), 'violations': self.violations}


class FrankaAuditor:
    """Holds the outputs of a Franka core to its limits. `stopped` is the auditor's own model."""

    def __init__(self, limits: FrankaLimits, tally: Tally, start: Pose):
        self.limits, self.tally = limits, tally
        self.last_output = start                # the last target or hold pose sent to the arm
        self.last_accept_s: float | None = None
        self.stopped = False
        self.translation = WindowCheck(limits.max_speed_m_s, limits.burst_m)
        self.rotation = WindowCheck(limits.max_angular_speed_rad_s, limits.burst_rad)

    def command(self, kind: str, outcome: FrankaOutcome, now_s: float, measured: Pose, measured_at_s: float) -> None:
        self.tally.verdict(kind, outcome.verdict)
        if not outcome.verdict.accepted:
            return
        target = outcome.target
        for why in self._target_violations(target, measured, now_s - measured_at_s, now_s):
            self.tally.violation(f'{kind} at {now_s:.3f} s: {why}')
        self.last_output, self.last_accept_s = target.pose, now_s

    def tick(self, outcome: FrankaOutcome | None, now_s: float) -> None:
        expired = (self.last_accept_s is not None
                   and now_s - self.last_accept_s > self.limits.watchdog_timeout_s + TIME_ROUNDING_S)
        if outcome is None:
            if expired and not self.stopped:
                self.tally.violation(f'tick at {now_s:.3f} s: no hold {now_s - self.last_accept_s:.3f} s after '
                                     f'the last command')
            return
        self.tally.events['watchdog_holds'] += 1
        self.hold(outcome)

    def hold(self, outcome: FrankaOutcome | None) -> None:
        if outcome is None or outcome.target is None or not outcome.target.hold:
            self.tally.violation('a stop or watchdog did not hold the arm')
            return
        self.last_output, self.last_accept_s = outcome.target.pose, None

    def _target_violations(self, target, measured: Pose, state_age_s: float, now_s: float) -> list[str]:
        lim, ee = self.limits, self.limits.ee
        p, q = np.asarray(target.pose.position, float), np.asarray(target.pose.quaternion, float)
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q)) and abs(np.linalg.norm(q) - 1) < 1e-6):
            return ['target pose not finite or not a unit quaternion']
        # A stream continues from the last target; after a hold (or at the start) from the measured pose.
        reference = self.last_output if self.last_accept_s is not None else measured
        step = p - np.asarray(reference.position)
        turn = _rotvec(np.asarray(reference.quaternion), q)
        checks = [
            (self.stopped, 'accepted while stopped'),
            (not _inside(p, ee.workspace), f'target {p.round(4)} outside the box'),
            (np.max(np.abs(step)) > ee.max_translation_m * (1 + ROUNDING), f'step {np.abs(step).max():.4g} m'),
            (np.max(np.abs(turn)) > ee.max_rotation_rad * (1 + ROUNDING) + 1e-9, f'turn {np.abs(turn).max():.4g} rad'),
            (not ee.gripper_min_m <= (target.gripper_width_m or 0.0) <= ee.gripper_max_m, 'gripper width'),
            (state_age_s > lim.max_state_age_s, f'measured pose {state_age_s:.3f} s old'),
            (np.linalg.norm(p - measured.position) > lim.max_lead_m * (1 + ROUNDING), 'target leads the arm'),
        ]
        found = [why for bad, why in checks if bad]
        found += [w for w in (self.translation.add(now_s, float(np.linalg.norm(step))),
                              self.rotation.add(now_s, float(np.linalg.norm(turn)))) if w]
        return found


class RizonAuditor:
    """Holds the motions a Rizon core starts to its limits; `hand_eye` and `base` from the calibration."""

    def __init__(self, limits: RizonLimits, tally: Tally, base: Pose, hand_eye: Pose):
        self.limits, self.tally = limits, tally
        self.base, self.hand_eye = base.as_matrix(), hand_eye.as_matrix()
        self.stopped = False
        self.executing: tuple[float, float] | None = None       # (start s, planned duration s)
        self.translation = WindowCheck(limits.max_speed_m_s, limits.max_step_m)
        self.rotation = WindowCheck(limits.max_angular_speed_rad_s, limits.max_step_rad)

    def camera(self, flange: Pose) -> tuple[np.ndarray, np.ndarray]:
        flange_matrix = Pose(np.asarray(flange.position), np.asarray(flange.quaternion)).as_matrix()
        matrix = self.base @ flange_matrix @ self.hand_eye
        return matrix[:3, 3], Rotation.from_matrix(matrix[:3, :3]).as_quat()

    def goal(self, kind: str, outcome, now_s: float, goal, flange_before: Pose) -> None:
        self.tally.verdict(kind, outcome.verdict)
        if not outcome.verdict.accepted:
            return
        found = self._goal_violations(goal, flange_before, now_s)
        for why in found + self._plan_violations(outcome.plan, goal, flange_before):
            self.tally.violation(f'{kind} at {now_s:.3f} s: {why}')
        self.executing = (now_s, outcome.plan.duration_s)

    def tick(self, verdict, now_s: float) -> None:
        overran = (self.executing is not None
                   and now_s > sum(self.executing) + self.limits.watchdog_timeout_s + TIME_ROUNDING_S)
        if verdict is None:
            if overran:
                self.tally.violation(f'tick at {now_s:.3f} s: a motion overran without being stopped')
            return
        self.tally.events['watchdog_stops' if 'watchdog' in verdict.reason else 'motions_ended'] += 1
        if not verdict.accepted and not verdict.reason.strip():
            self.tally.refusals_without_reason += 1
        self.executing = None

    def stop(self, verdict) -> None:
        """A stop: any motion ends; from now on nothing may be accepted until the reset."""
        if verdict is not None and not verdict.reason.strip():
            self.tally.refusals_without_reason += 1
        self.stopped, self.executing = True, None

    def _goal_violations(self, goal, flange_before: Pose, now_s: float) -> list[str]:
        p, q = np.asarray(goal.position_m, float), np.asarray(goal.quaternion_xyzw, float)
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q)) and abs(np.linalg.norm(q) - 1) <= 0.05):
            return ['goal not finite or not a unit quaternion']
        box, camera = self.limits.camera, self.camera(flange_before)
        step_m, step_rad = float(np.linalg.norm(p - camera[0])), _angle(camera[1], q / np.linalg.norm(q))
        checks = [
            (self.stopped, 'accepted while stopped'),
            (self.executing is not None, 'accepted while a motion executes'),
            (not _inside(p, box.workspace), 'goal outside the box'),
            (np.linalg.norm(p - np.asarray(box.shoulder_position_m)) > box.reach_m, 'goal beyond reach'),
            (step_m > self.limits.max_step_m * (1 + ROUNDING), f'step {step_m:.3f} m'),
            (step_rad > self.limits.max_step_rad * (1 + ROUNDING), f'turn {step_rad:.3f} rad'),
        ]
        found = [why for bad, why in checks if bad]
        return found + [w for w in (self.translation.add(now_s, step_m), self.rotation.add(now_s, step_rad)) if w]

    def _plan_violations(self, plan: CameraPlan, goal, flange_before: Pose) -> list[str]:
        cameras = [self.camera(p) for p in plan.flange_poses]
        times = np.asarray(plan.times_s, float)
        if not all(np.all(np.isfinite(c[0])) for c in cameras) or np.any(np.diff(times) <= 0):
            return ['plan not finite or its times do not increase']
        box = self.limits.camera.workspace
        found = [f'waypoint {i} outside the box' for i, c in enumerate(cameras)
                 if not _inside(c[0], box)]
        for i, (a, b) in enumerate(zip(cameras, cameras[1:])):
            gap_m, gap_rad, dt = float(np.linalg.norm(b[0] - a[0])), _angle(a[1], b[1]), times[i + 1] - times[i]
            if gap_m > MAX_WAYPOINT_GAP_M or gap_rad > MAX_WAYPOINT_GAP_RAD:
                found.append(f'waypoints {i}, {i + 1} too far apart')
            if gap_m / dt > self.limits.max_speed_m_s * (1 + SPEED_ROUNDING) or \
                    gap_rad / dt > self.limits.max_angular_speed_rad_s * (1 + SPEED_ROUNDING):
                found.append(f'too fast between waypoints {i}, {i + 1}')
        goal_q = np.asarray(goal.quaternion_xyzw, float)
        ends = (('start', cameras[0], self.camera(flange_before), START_TOLERANCE_M, START_TOLERANCE_RAD),
                ('end', cameras[-1], (np.asarray(goal.position_m, float), goal_q / np.linalg.norm(goal_q)),
                 GOAL_TOLERANCE_M, GOAL_TOLERANCE_RAD))
        for name, point, wanted, tol_m, tol_rad in ends:
            # the cores compare flange poses; at the camera the hand-eye lever adds at most its length x the angle
            lever_m = float(np.linalg.norm(self.hand_eye[:3, 3])) * tol_rad
            if np.linalg.norm(point[0] - wanted[0]) > tol_m + lever_m or _angle(point[1], wanted[1]) > tol_rad + 1e-9:
                found.append(f'plan {name} off')
        return found
