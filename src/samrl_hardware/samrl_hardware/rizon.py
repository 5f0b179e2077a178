"""The Rizon adapter's core: camera pose goals in, planned and checked motions of the camera arm out.

No ROS here; rizon_node.py is the shell and moveit_planner.py the moveit_py side. A goal is the
pose of camera_color_optical_frame in the world frame (samrl_sim.commands.CameraPoseGoal, what the
sim bridge takes on /samrl/camera_goal). With the calibration (the Rizon's base in the world, the
camera on the flange) it becomes a flange goal in the Rizon's base frame for the planner.

Plan, check, execute, report: a goal is refused with its reason unless
  * it passes the sim bridge's own check (samrl_sim.safety.validate_camera_goal: finite, a unit
    quaternion, inside the camera workspace box and the arm's reach);
  * the camera moves at most max_step_m / max_step_rad from where it is, and the speed bound over
    time (guards.MotionBudget) allows that much now;
  * the planner finds a plan, and the plan passes check_plan: it starts where the arm is, ends at
    the goal, keeps the camera in the workspace box at every waypoint (waypoints at most
    MAX_WAYPOINT_GAP_M apart), and never moves the camera faster than the speed limits;
  * no latched stop, and no motion already executing.
The watchdog stops a motion that has not finished watchdog_timeout_s after its planned duration.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from samrl_description.geometry import Pose, quat_conjugate, quat_multiply, rotation_angle
from samrl_hardware.calibration import Calibration
from samrl_hardware.guards import (
    ArmMode,
    MonotonicClock,
    MotionBudget,
    StopLatch,
    Verdict,
    Watchdog,
    require_positive,
    status_line,
)
from samrl_sim.commands import CameraPoseGoal
from samrl_sim.safety import CAMERA_ARM_REACH_M, CameraLimits, validate_camera_goal

MAX_CAMERA_STEP_M = 0.40            # camera travel per goal: viewpoints are chosen near the current one
MAX_CAMERA_STEP_RAD = 1.2           # camera turn per goal (~70 deg)
MAX_CAMERA_SPEED_M_S = 0.25         # along the planned path, and sustained over time
MAX_CAMERA_ANGULAR_SPEED_RAD_S = 1.0
MAX_WAYPOINT_GAP_M = 0.02           # denser plans: a box check at the waypoints then holds in between
MAX_WAYPOINT_GAP_RAD = 0.05
GOAL_TOLERANCE_M = 0.003            # the plan's last waypoint vs the goal (as the sim's IK tolerance)
GOAL_TOLERANCE_RAD = 0.03
START_TOLERANCE_M = 0.005           # the plan's first waypoint vs the measured flange
START_TOLERANCE_RAD = 0.03
WATCHDOG_TIMEOUT_S = 2.0            # a motion may overrun its planned duration by this much
SHOULDER_HEIGHT_M = 0.365           # Rizon 4: joint 2 above the base (0.155 + 0.210 m)
SPEED_TOLERANCE = 1e-6              # relative: forgive rounding of waypoint times


class PlanningError(RuntimeError):
    """The planner found no plan; the message says why."""


@dataclass(frozen=True)
class CameraPlan:
    """A planned motion: flange poses in the Rizon's base frame at times from its start (s).
    `handle` is the planner's own trajectory, given back to execute()."""

    flange_poses: tuple[Pose, ...]
    times_s: tuple[float, ...]
    handle: object = None

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1]) if self.times_s else 0.0


class ArmPlanner(Protocol):
    """What the core needs from a planner: moveit_planner.MoveItPlanner on a ROS machine, a fake in tests."""

    def current_flange_pose(self) -> Pose | None:
        """The measured flange pose in the base frame, or None when the arm state is unknown."""

    def plan(self, flange_goal: Pose) -> CameraPlan:
        """A plan from the current state to `flange_goal` (base frame); PlanningError if none."""

    def execute(self, plan: CameraPlan) -> None:
        """Start executing `plan` and return at once."""

    def poll(self) -> tuple[bool, str] | None:
        """None while executing; then (succeeded, message) once, when the execution has ended."""

    def stop(self) -> None:
        """Stop any execution now."""


@dataclass(frozen=True)
class RizonLimits:
    """Everything the Rizon adapter enforces; `camera` is the sim bridge's own box and reach check."""

    camera: CameraLimits = field(default_factory=CameraLimits)
    max_step_m: float = MAX_CAMERA_STEP_M
    max_step_rad: float = MAX_CAMERA_STEP_RAD
    max_speed_m_s: float = MAX_CAMERA_SPEED_M_S
    max_angular_speed_rad_s: float = MAX_CAMERA_ANGULAR_SPEED_RAD_S
    watchdog_timeout_s: float = WATCHDOG_TIMEOUT_S

    def __post_init__(self):
        require_positive(self, ('max_step_m', 'max_step_rad', 'max_speed_m_s', 'max_angular_speed_rad_s',
                                'watchdog_timeout_s'))

    @staticmethod
    def for_cell(calibration: Calibration, **overrides) -> RizonLimits:
        """Limits whose reach is measured from this cell's Rizon shoulder (from the calibration)."""
        shoulder = calibration.rizon_base_in_world.apply([0.0, 0.0, SHOULDER_HEIGHT_M])
        camera = CameraLimits(shoulder_position_m=tuple(float(v) for v in shoulder), reach_m=CAMERA_ARM_REACH_M)
        return RizonLimits(camera=camera, **overrides)


@dataclass(frozen=True)
class RizonOutcome:
    verdict: Verdict
    plan: CameraPlan | None = None


def pose_distance(a: Pose, b: Pose) -> tuple[float, float]:
    """(translation m, rotation angle rad) between two poses."""
    turn = rotation_angle(quat_multiply(b.quaternion, quat_conjugate(a.quaternion)))
    return float(np.linalg.norm(np.asarray(b.position) - np.asarray(a.position))), turn


class RizonAdapterCore:
    """State: the planner, the cell's calibration, the stop latch, the watchdog and the budgets."""

    def __init__(self, planner: ArmPlanner, calibration: Calibration, limits: RizonLimits | None = None):
        self.planner, self.calibration = planner, calibration
        self.limits = limits or RizonLimits.for_cell(calibration)
        self.mode, self.hold_reason = ArmMode.IDLE, ''
        self.latch = StopLatch()
        self.watchdog = Watchdog(self.limits.watchdog_timeout_s)
        self.translation_budget = MotionBudget(self.limits.max_speed_m_s, self.limits.max_step_m)
        self.rotation_budget = MotionBudget(self.limits.max_angular_speed_rad_s, self.limits.max_step_rad)
        self.clock = MonotonicClock()
        self.executing: CameraPlan | None = None

    # -- frames ----------------------------------------------------------------------------------
    def camera_in_world(self, flange_in_base: Pose) -> Pose:
        return self.calibration.rizon_base_in_world * flange_in_base * self.calibration.hand_eye

    def flange_in_base(self, camera_in_world: Pose) -> Pose:
        return self.calibration.rizon_base_in_world.inverse() * camera_in_world * self.calibration.hand_eye.inverse()

    # -- inputs ----------------------------------------------------------------------------------
    def on_goal(self, goal: CameraPoseGoal, now_s: float) -> RizonOutcome:
        why = self.clock.refusal(now_s) or self._precondition()
        if why:
            return RizonOutcome(Verdict.refuse(why))
        result = validate_camera_goal(goal, self.limits.camera)
        if not result.ok:
            return RizonOutcome(Verdict.refuse(result.reason))
        current = self.planner.current_flange_pose()
        if current is None:
            return RizonOutcome(Verdict.refuse('the camera arm\'s state is unknown (no joint states yet)'))
        target = Pose.from_xyz_quat(goal.position_m, goal.quaternion_xyzw)
        step_m, step_rad = pose_distance(self.camera_in_world(current), target)
        why = self._step_refusal(step_m, step_rad, now_s)
        if why:
            return RizonOutcome(Verdict.refuse(why))
        return self._plan_and_execute(current, target, step_m, step_rad, now_s)

    def on_tick(self, now_s: float) -> Verdict | None:
        """Report the end of an execution, or stop one that overran (watchdog); None otherwise."""
        if self.clock.refusal(now_s) or self.mode is not ArmMode.MOVING:
            return None
        ended = self.planner.poll()
        if ended is not None:
            succeeded, message = ended
            verdict = Verdict.accept(f'reached the goal: {message}') if succeeded else \
                Verdict.refuse(f'execution failed: {message or "no reason given"}')
            self.mode, self.executing, self.hold_reason = ArmMode.IDLE, None, verdict.reason
            self.watchdog.disarm()
            return verdict
        if self.watchdog.expired(now_s):
            return self._halt(ArmMode.IDLE, f'watchdog: the motion did not finish within its planned '
                              f'{self.executing.duration_s:.2f} s + {self.limits.watchdog_timeout_s:g} s; stopped')
        return None

    def on_stop(self, stop: bool, source: str) -> Verdict | None:
        if not self.latch.on_stop_message(stop, source):
            return None
        return self._halt(ArmMode.STOPPED, self.latch.reason)

    def reset(self) -> Verdict:
        verdict = self.latch.reset()
        if verdict.accepted:
            self.mode, self.hold_reason = ArmMode.IDLE, ''
        return verdict

    @property
    def status(self) -> str:
        return status_line(self.mode, self.hold_reason)

    # -- steps -----------------------------------------------------------------------------------
    def _precondition(self) -> str:
        if self.latch.stopped:
            return f'stopped ({self.latch.reason}); refused until reset'
        if self.mode is ArmMode.MOVING:
            return 'busy: the previous camera motion is still executing'
        return ''

    def _step_refusal(self, step_m: float, step_rad: float, now_s: float) -> str:
        if step_m > self.limits.max_step_m:
            return f'camera step {step_m:.3f} m exceeds the limit {self.limits.max_step_m:g} m'
        if step_rad > self.limits.max_step_rad:
            return f'camera turn {step_rad:.3f} rad exceeds the limit {self.limits.max_step_rad:g} rad'
        return (self.translation_budget.refusal(step_m, now_s, 'camera step', 'm')
                or self.rotation_budget.refusal(step_rad, now_s, 'camera turn', 'rad'))

    def _plan_and_execute(self, current: Pose, target: Pose, step_m: float, step_rad: float,
                          now_s: float) -> RizonOutcome:
        flange_goal = self.flange_in_base(target)
        try:
            plan = self.planner.plan(flange_goal)
        except PlanningError as exc:
            return RizonOutcome(Verdict.refuse(f'planning failed: {str(exc) or "no reason given"}'))
        why = check_plan(plan, current, flange_goal, self.camera_in_world, self.limits)
        if why:
            return RizonOutcome(Verdict.refuse(f'plan refused: {why}'))
        self.translation_budget.spend(step_m, now_s)
        self.rotation_budget.spend(step_rad, now_s)
        self.planner.execute(plan)
        self.mode, self.executing, self.hold_reason = ArmMode.MOVING, plan, ''
        self.watchdog.feed(now_s, extra_s=plan.duration_s)
        return RizonOutcome(Verdict.accept(f'executing a {plan.duration_s:.2f} s motion'), plan)

    def _halt(self, mode: ArmMode, reason: str) -> Verdict:
        if self.mode is ArmMode.MOVING:
            self.planner.stop()
        self.mode, self.hold_reason, self.executing = mode, reason, None
        self.watchdog.disarm()
        return Verdict.refuse(reason)


def check_plan(plan: CameraPlan, start: Pose, goal: Pose, camera_in_world, limits: RizonLimits) -> str:
    """Why `plan` (flange poses in the base frame) may not be executed ('' if it may)."""
    why = _plan_shape(plan)
    if why:
        return why
    poses = [Pose.from_xyz_quat(p.position, p.quaternion) for p in plan.flange_poses]
    for name, pose, end, (tol_m, tol_rad) in (('start', poses[0], start, (START_TOLERANCE_M, START_TOLERANCE_RAD)),
                                              ('end', poses[-1], goal, (GOAL_TOLERANCE_M, GOAL_TOLERANCE_RAD))):
        off_m, off_rad = pose_distance(pose, end)
        if off_m > tol_m or off_rad > tol_rad:
            reference = 'measured flange' if name == 'start' else 'goal'
            return (f'its {name} is {off_m * 1000:.1f} mm and {off_rad:.3f} rad from the {reference} '
                    f'(tolerance {tol_m * 1000:g} mm, {tol_rad} rad)')
    cameras = [camera_in_world(p) for p in poses]
    return _path_in_box(cameras, limits) or _path_speed(cameras, plan.times_s, limits)


def _plan_shape(plan: CameraPlan) -> str:
    if len(plan.flange_poses) < 2 or len(plan.flange_poses) != len(plan.times_s):
        return f'{len(plan.flange_poses)} waypoints and {len(plan.times_s)} times (needs >= 2 of each, equal)'
    times = np.asarray(plan.times_s, dtype=float)
    if not np.all(np.isfinite(times)) or times[0] != 0.0 or np.any(np.diff(times) <= 0.0):
        return 'waypoint times must be finite, start at 0 and increase'
    for index, pose in enumerate(plan.flange_poses):
        try:
            Pose.checked(pose.position, pose.quaternion)
        except (ValueError, AttributeError) as exc:
            return f'waypoint {index}: {exc}'
    return ''


def _path_in_box(cameras: list[Pose], limits: RizonLimits) -> str:
    box = limits.camera.workspace
    for index, (a, b) in enumerate(zip(cameras, cameras[1:])):
        gap_m, gap_rad = pose_distance(a, b)
        if gap_m > MAX_WAYPOINT_GAP_M or gap_rad > MAX_WAYPOINT_GAP_RAD:
            return (f'waypoints {index} and {index + 1} are {gap_m:.3f} m and {gap_rad:.3f} rad apart (at most '
                    f'{MAX_WAYPOINT_GAP_M} m, {MAX_WAYPOINT_GAP_RAD} rad: the box is checked at the waypoints)')
    for index, camera in enumerate(cameras):
        if not box.contains(camera.position):
            return (f'waypoint {index} puts the camera at {np.round(camera.position, 4).tolist()} m, outside the '
                    f'workspace {box.lower}..{box.upper} m')
    return ''


def _path_speed(cameras: list[Pose], times_s, limits: RizonLimits) -> str:
    for index, (a, b) in enumerate(zip(cameras, cameras[1:])):
        dt = float(times_s[index + 1]) - float(times_s[index])
        gap_m, gap_rad = pose_distance(a, b)
        for speed, limit, unit in ((gap_m / dt, limits.max_speed_m_s, 'm/s'),
                                   (gap_rad / dt, limits.max_angular_speed_rad_s, 'rad/s')):
            if speed > limit * (1.0 + SPEED_TOLERANCE):
                return (f'the camera moves at {speed:.3f} {unit} between waypoints {index} and {index + 1} '
                        f'(limit {limit:g} {unit})')
    return ''
