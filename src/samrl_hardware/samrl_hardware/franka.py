"""The Franka adapter's core: EndEffectorCommands in, Cartesian targets for the arm's controller out.

No ROS here; franka_node.py is the shell. Each command is a delta of the tool centre point in the
task frame (samrl_sim.commands.EeDeltaCommand). On the real cell the task frame is the Franka's
base frame (as in the simulation: origin at the Panda's base), so a target is a TCP pose in the
base frame, ready for a Cartesian pose controller, or the velocity that reaches it in one command
period, for a Cartesian velocity controller.

A command is applied only if all of these hold, else it is refused with the reason:
  * the sim bridge's own checks (samrl_sim.safety.validate_ee_delta): finite numbers, per-step
    translation and rotation, gripper range, target inside the workspace box;
  * a speed bound over time (guards.MotionBudget): bursts of commands cannot move it faster;
  * a fresh measured TCP pose, and a target that does not run ahead of it by more than max_lead_m;
  * no latched stop (guards.StopLatch).
When no command has come for watchdog_timeout_s the arm is held where it is measured to be; the
next command starts a new stream from there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samrl_description.geometry import Pose, axis_angle_to_quat, quat_multiply
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
from samrl_sim.commands import EeDeltaCommand
from samrl_sim.safety import MAX_ROTATION_PER_STEP_RAD, MAX_TRANSLATION_PER_STEP_M, EeLimits, validate_ee_delta

CONTROL_PERIOD_S = 0.1              # the task graphs' 10 Hz control step
AXES = 3
# Speed bound: one full diagonal step (per-axis limit on all three axes) every control period.
MAX_TCP_SPEED_M_S = float(np.sqrt(AXES)) * MAX_TRANSLATION_PER_STEP_M / CONTROL_PERIOD_S        # 0.35 m/s
MAX_TCP_ANGULAR_SPEED_RAD_S = float(np.sqrt(AXES)) * MAX_ROTATION_PER_STEP_RAD / CONTROL_PERIOD_S  # 1.7 rad/s
BURST_STEPS = 2.0                   # full steps that may arrive at once (a late command, then an early one)
WATCHDOG_TIMEOUT_S = 0.5            # five missed control steps
MAX_STATE_AGE_S = 0.2               # the robot state broadcaster publishes at >= 30 Hz
MAX_LEAD_M = 0.05                   # target ahead of the measured TCP: the arm is not following


@dataclass(frozen=True)
class FrankaLimits:
    """Everything the Franka adapter enforces; `ee` is the sim bridge's own per-step and workspace limits."""

    ee: EeLimits = field(default_factory=EeLimits)
    max_speed_m_s: float = MAX_TCP_SPEED_M_S
    max_angular_speed_rad_s: float = MAX_TCP_ANGULAR_SPEED_RAD_S
    burst_steps: float = BURST_STEPS
    watchdog_timeout_s: float = WATCHDOG_TIMEOUT_S
    max_state_age_s: float = MAX_STATE_AGE_S
    max_lead_m: float = MAX_LEAD_M
    command_period_s: float = CONTROL_PERIOD_S

    def __post_init__(self):
        require_positive(self, ('max_speed_m_s', 'max_angular_speed_rad_s', 'burst_steps', 'watchdog_timeout_s',
                                'max_state_age_s', 'max_lead_m', 'command_period_s'))

    @property
    def burst_m(self) -> float:
        return self.burst_steps * float(np.sqrt(AXES)) * self.ee.max_translation_m

    @property
    def burst_rad(self) -> float:
        return self.burst_steps * float(np.sqrt(AXES)) * self.ee.max_rotation_rad


@dataclass(frozen=True)
class CartesianTarget:
    """What the controller gets: the TCP pose in the base frame, and the velocity that reaches it in
    one command period (zero when holding). `gripper_width_m` is None when the gripper is left alone."""

    pose: Pose
    linear_m_s: np.ndarray
    angular_rad_s: np.ndarray
    gripper_width_m: float | None
    hold: bool


@dataclass(frozen=True)
class FrankaOutcome:
    verdict: Verdict
    target: CartesianTarget | None = None


class FrankaAdapterCore:
    """State: the measured TCP pose, the last target, the stop latch, the watchdog and the budgets."""

    def __init__(self, limits: FrankaLimits = FrankaLimits()):
        self.limits = limits
        self.mode = ArmMode.IDLE
        self.hold_reason = ''
        self.latch = StopLatch()
        self.watchdog = Watchdog(limits.watchdog_timeout_s)
        self.translation_budget = MotionBudget(limits.max_speed_m_s, limits.burst_m)
        self.rotation_budget = MotionBudget(limits.max_angular_speed_rad_s, limits.burst_rad)
        self.clock = MonotonicClock()
        self.measured: Pose | None = None
        self.measured_at_s = -np.inf
        self.target: Pose | None = None

    # -- inputs ----------------------------------------------------------------------------------
    def on_state(self, tcp_pose: Pose, now_s: float) -> Verdict:
        """The measured TCP pose in the base frame; a malformed one is ignored with the reason."""
        why = self.clock.refusal(now_s)
        if why:
            return Verdict.refuse(f'measured TCP pose ignored: {why}')
        try:
            pose = Pose.checked(tcp_pose.position, tcp_pose.quaternion)
        except (ValueError, AttributeError) as exc:
            return Verdict.refuse(f'measured TCP pose ignored: {exc}')
        self.measured, self.measured_at_s = pose, now_s
        return Verdict.accept()

    def on_command(self, command: EeDeltaCommand, now_s: float) -> FrankaOutcome:
        why = self.clock.refusal(now_s) or self._precondition(now_s)
        if why:
            return FrankaOutcome(Verdict.refuse(why))
        reference = self.target if self.mode is ArmMode.MOVING else self.measured
        result = validate_ee_delta(command, reference.position, self.limits.ee)
        if not result.ok:
            return FrankaOutcome(Verdict.refuse(result.reason))
        translation = np.asarray(command.translation_m, dtype=float).reshape(AXES)
        rotation = np.asarray(command.rotation_rad, dtype=float).reshape(AXES)
        pose = Pose(reference.position + translation, quat_multiply(axis_angle_to_quat(rotation), reference.quaternion))
        why = self._lead_refusal(pose) or self._speed_refusal(translation, rotation, now_s)
        if why:
            return FrankaOutcome(Verdict.refuse(why))
        return FrankaOutcome(Verdict.accept(), self._move_to(pose, translation, rotation, command, now_s))

    def on_tick(self, now_s: float) -> FrankaOutcome | None:
        """Hold the arm if the watchdog expired; None when nothing happens."""
        if self.clock.refusal(now_s) or self.mode is not ArmMode.MOVING or not self.watchdog.expired(now_s):
            return None
        self.mode, self.hold_reason = ArmMode.IDLE, (
            f'watchdog: no command for {self.limits.watchdog_timeout_s:g} s; the arm is held')
        self.watchdog.disarm()
        return FrankaOutcome(Verdict.refuse(self.hold_reason), self._hold())

    def on_stop(self, stop: bool, source: str) -> FrankaOutcome | None:
        """A stop-topic message; a new stop holds the arm (the outcome carries the hold target)."""
        if not self.latch.on_stop_message(stop, source):
            return None
        self.mode, self.hold_reason = ArmMode.STOPPED, self.latch.reason
        self.watchdog.disarm()
        return FrankaOutcome(Verdict.refuse(self.latch.reason), self._hold())

    def reset(self) -> Verdict:
        """The explicit reset after a stop (see guards.StopLatch for the procedure)."""
        verdict = self.latch.reset()
        if verdict.accepted:
            self.mode, self.hold_reason = ArmMode.IDLE, ''
        return verdict

    @property
    def status(self) -> str:
        return status_line(self.mode, self.hold_reason)

    # -- checks ----------------------------------------------------------------------------------
    def _precondition(self, now_s: float) -> str:
        if self.latch.stopped:
            return f'stopped ({self.latch.reason}); refused until reset'
        if self.measured is None:
            return 'no measured TCP pose yet'
        age_s = now_s - self.measured_at_s
        if age_s > self.limits.max_state_age_s:
            return f'measured TCP pose is {age_s:.3f} s old (limit {self.limits.max_state_age_s:g} s)'
        return ''

    def _lead_refusal(self, pose: Pose) -> str:
        lead_m = float(np.linalg.norm(pose.position - self.measured.position))
        if lead_m <= self.limits.max_lead_m:
            return ''
        return (f'target would be {lead_m:.4f} m from the measured TCP (limit {self.limits.max_lead_m:g} m): '
                f'the arm is not following')

    def _speed_refusal(self, translation: np.ndarray, rotation: np.ndarray, now_s: float) -> str:
        return (self.translation_budget.refusal(float(np.linalg.norm(translation)), now_s, 'translation', 'm')
                or self.rotation_budget.refusal(float(np.linalg.norm(rotation)), now_s, 'rotation', 'rad'))

    # -- outputs ---------------------------------------------------------------------------------
    def _move_to(self, pose: Pose, translation, rotation, command: EeDeltaCommand, now_s: float) -> CartesianTarget:
        self.translation_budget.spend(float(np.linalg.norm(translation)), now_s)
        self.rotation_budget.spend(float(np.linalg.norm(rotation)), now_s)
        self.target, self.mode, self.hold_reason = pose, ArmMode.MOVING, ''
        self.watchdog.feed(now_s)
        period = self.limits.command_period_s
        return CartesianTarget(pose, translation / period, rotation / period, float(command.gripper_width_m), False)

    def _hold(self) -> CartesianTarget | None:
        """Where the arm stays: the measured pose (the last target if none was measured yet)."""
        pose = self.measured or self.target
        if pose is None:
            return None
        self.target = pose
        return CartesianTarget(pose, np.zeros(AXES), np.zeros(AXES), None, True)
