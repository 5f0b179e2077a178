"""Pure validation of commands: no simulator, no side effects.

Each validator returns a ValidationResult; the world applies a command only when `ok` is True,
and otherwise leaves both arms where they are and reports `reason`. The same per-step limits bound
the tool motion the world predicts from its IK solution and the motion it measures afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samrl_description.geometry import Pose, quat_conjugate, quat_multiply, quat_to_axis_angle
from samrl_sim.commands import CameraPoseGoal, EeDeltaCommand

MAX_TRANSLATION_PER_STEP_M = 0.02     # per axis, per control step (0.2 m/s at 10 Hz)
MAX_ROTATION_PER_STEP_RAD = 0.10      # per rotation-vector component, per control step
GRIPPER_MIN_WIDTH_M = 0.0
GRIPPER_MAX_WIDTH_M = 0.08            # Panda hand stroke
QUATERNION_NORM_TOLERANCE = 0.05      # |‖q‖ - 1| allowed before normalising
LIMIT_RELATIVE_TOLERANCE = 1e-9      # forgive floating-point rounding at a bound
CAMERA_ARM_REACH_M = 0.95             # joint 2 to optical frame: 0.78 m arm + wrist, flange, camera
IK_POSITION_TOLERANCE_M = 0.003       # IK reached vs commanded: 0.1 mm where reachable, 1.5 mm in the
IK_ROTATION_TOLERANCE_RAD = 0.03      # spatula flip at a joint limit; beyond these the target is unreachable


@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box in the world frame (m)."""

    lower: tuple[float, float, float]
    upper: tuple[float, float, float]

    def contains(self, point: np.ndarray) -> bool:
        return bool(np.all(point >= np.asarray(self.lower)) and np.all(point <= np.asarray(self.upper)))

    def excursion_m(self, point: np.ndarray) -> float:
        """How far `point` lies outside the box (0 inside), largest over the axes."""
        below = np.asarray(self.lower) - np.asarray(point, dtype=float)
        above = np.asarray(point, dtype=float) - np.asarray(self.upper)
        return float(max(0.0, np.max(below), np.max(above)))


@dataclass(frozen=True)
class EeLimits:
    """Bounds of an EeDeltaCommand and of the tool centre point it may lead to."""

    max_translation_m: float = MAX_TRANSLATION_PER_STEP_M
    max_rotation_rad: float = MAX_ROTATION_PER_STEP_RAD
    gripper_min_m: float = GRIPPER_MIN_WIDTH_M
    gripper_max_m: float = GRIPPER_MAX_WIDTH_M
    workspace: WorkspaceBox = field(default_factory=lambda: WorkspaceBox((0.20, -0.45, 0.0), (0.85, 0.45, 0.60)))


@dataclass(frozen=True)
class CameraLimits:
    """Where the camera's optical frame may be sent: a box and the camera arm's reach."""

    workspace: WorkspaceBox = field(default_factory=lambda: WorkspaceBox((0.0, -0.9, 0.05), (1.2, 0.9, 1.0)))
    shoulder_position_m: tuple[float, float, float] = (0.55, -0.70, 0.365)
    reach_m: float = CAMERA_ARM_REACH_M


@dataclass(frozen=True)
class ToolMotion:
    """Tool centre point motion over one control step, in the units and frame of EeDeltaCommand.

    translation_m = end - start; rotation_rad = rotation vector of R_end R_start^T, so that a
    command executed exactly has the command's own components.
    """

    translation_m: np.ndarray
    rotation_rad: np.ndarray

    @staticmethod
    def between(start: Pose, end: Pose) -> ToolMotion:
        rotation = quat_to_axis_angle(quat_multiply(end.quaternion, quat_conjugate(start.quaternion)))
        return ToolMotion(end.position - start.position, np.asarray(rotation, dtype=float))

    @property
    def largest_translation_m(self) -> float:
        return float(np.max(np.abs(self.translation_m)))

    @property
    def largest_rotation_rad(self) -> float:
        return float(np.max(np.abs(self.rotation_rad)))

    def limit_ratio(self, limits: EeLimits) -> float:
        """Largest component over its per-step limit: above 1 means the step is too large."""
        return max(self.largest_translation_m / limits.max_translation_m,
                   self.largest_rotation_rad / limits.max_rotation_rad)


@dataclass(frozen=True)
class ValidationResult:
    ok: bool
    reason: str = ''

    @staticmethod
    def accept() -> ValidationResult:
        return ValidationResult(True, '')

    @staticmethod
    def reject(reason: str) -> ValidationResult:
        return ValidationResult(False, reason)


def _as_vector(value, size: int, name: str) -> tuple[np.ndarray | None, str]:
    """Float vector of `size` entries, or None and the reason it is not one."""
    try:
        vector = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        return None, f'{name} is not numeric'
    if vector.size != size:
        return None, f'{name} has {vector.size} entries, expected {size}'
    if not np.all(np.isfinite(vector)):
        return None, f'{name} contains NaN or inf: {vector.tolist()}'
    return vector, ''


def _bounded(vector: np.ndarray, bound: float, name: str, unit: str) -> str:
    worst = float(np.max(np.abs(vector)))
    exceeded = worst > bound * (1.0 + LIMIT_RELATIVE_TOLERANCE)
    return f'{name} component {worst:.4g} {unit} exceeds the limit {bound:.4g} {unit}' if exceeded else ''


def _exceeds(vector: np.ndarray, bound: float, tolerance: float, name: str, unit: str) -> str:
    """As _bounded, with an allowance beyond the bound that the message names."""
    why = _bounded(vector, bound + tolerance, name, unit)
    if not why or not tolerance:
        return why
    worst = float(np.max(np.abs(vector)))
    return f'{name} component {worst:.4g} {unit} exceeds the limit {bound:.4g} {unit} + {tolerance:.4g} {unit} tolerance'


def validate_ee_delta(command: EeDeltaCommand, tcp_position_m, limits: EeLimits = EeLimits()) -> ValidationResult:
    """Check finiteness, per-step bounds and that the resulting tool position stays in the workspace
    (or, for a tool already outside it, comes nearer)."""
    translation, why = _as_vector(command.translation_m, 3, 'translation')
    if translation is None:
        return ValidationResult.reject(why)
    rotation, why = _as_vector(command.rotation_rad, 3, 'rotation')
    if rotation is None:
        return ValidationResult.reject(why)
    gripper, why = _as_vector(command.gripper_width_m, 1, 'gripper width')
    if gripper is None:
        return ValidationResult.reject(why)
    why = (_bounded(translation, limits.max_translation_m, 'translation', 'm')
           or _bounded(rotation, limits.max_rotation_rad, 'rotation', 'rad'))
    if why:
        return ValidationResult.reject(why)
    if not limits.gripper_min_m <= float(gripper[0]) <= limits.gripper_max_m:
        return ValidationResult.reject(
            f'gripper width {float(gripper[0]):.4g} m outside [{limits.gripper_min_m}, {limits.gripper_max_m}] m')
    target = np.asarray(tcp_position_m, dtype=float) + translation
    if not _returns_or_stays_inside(limits.workspace, np.asarray(tcp_position_m, dtype=float), target):
        return ValidationResult.reject(f'target tool position {np.round(target, 4).tolist()} m is outside the '
                                       f'workspace {limits.workspace.lower}..{limits.workspace.upper} m')
    return ValidationResult.accept()


def _returns_or_stays_inside(box: WorkspaceBox, tcp_position_m: np.ndarray, target_m: np.ndarray) -> bool:
    """A target inside the box, or one nearer to it than a tool that is already outside (pushed there
    by contact): otherwise a tool more than one step outside could never be brought back."""
    outside_m = box.excursion_m(target_m)
    return outside_m == 0.0 or outside_m < box.excursion_m(tcp_position_m)


def check_ik_residual(reached: Pose, target: Pose) -> ValidationResult:
    """Reject an IK solution that does not put the tool where it was commanded (unreachable target)."""
    residual = ToolMotion.between(target, reached)
    position_m = float(np.linalg.norm(residual.translation_m))
    rotation_rad = float(np.linalg.norm(residual.rotation_rad))
    if position_m <= IK_POSITION_TOLERANCE_M and rotation_rad <= IK_ROTATION_TOLERANCE_RAD:
        return ValidationResult.accept()
    return ValidationResult.reject(
        f'target unreachable: inverse kinematics reaches {position_m * 1000:.1f} mm and {rotation_rad:.3f} rad '
        f'from it (tolerance {IK_POSITION_TOLERANCE_M * 1000:.1f} mm, {IK_ROTATION_TOLERANCE_RAD} rad)')


def check_tool_motion(motion: ToolMotion, end_position_m, limits: EeLimits, translation_tolerance_m: float = 0.0,
                      rotation_tolerance_rad: float = 0.0, workspace_tolerance_m: float = 0.0) -> ValidationResult:
    """Check a predicted or measured step against the per-step limits and the workspace box.

    The tolerances let the measured motion exceed the command's bounds by the arm's tracking error.
    """
    why = (_exceeds(motion.translation_m, limits.max_translation_m, translation_tolerance_m, 'tool motion', 'm')
           or _exceeds(motion.rotation_rad, limits.max_rotation_rad, rotation_tolerance_rad, 'tool rotation', 'rad'))
    if why:
        return ValidationResult.reject(why)
    excursion = limits.workspace.excursion_m(end_position_m)
    if excursion > workspace_tolerance_m:
        return ValidationResult.reject(f'tool position {np.round(np.asarray(end_position_m), 4).tolist()} m is '
                                       f'{excursion * 1000:.1f} mm outside the workspace '
                                       f'{limits.workspace.lower}..{limits.workspace.upper} m')
    return ValidationResult.accept()


def validate_camera_goal(goal: CameraPoseGoal, limits: CameraLimits = CameraLimits()) -> ValidationResult:
    """Check finiteness, a unit quaternion, the workspace box and the arm's reach."""
    position, why = _as_vector(goal.position_m, 3, 'camera position')
    if position is None:
        return ValidationResult.reject(why)
    quaternion, why = _as_vector(goal.quaternion_xyzw, 4, 'camera quaternion')
    if quaternion is None:
        return ValidationResult.reject(why)
    norm = float(np.linalg.norm(quaternion))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        return ValidationResult.reject(f'camera quaternion norm {norm:.4g} is not 1')
    if not limits.workspace.contains(position):
        return ValidationResult.reject(f'camera position {np.round(position, 4).tolist()} m is outside the '
                                       f'workspace {limits.workspace.lower}..{limits.workspace.upper} m')
    distance = float(np.linalg.norm(position - np.asarray(limits.shoulder_position_m)))
    if distance > limits.reach_m:
        return ValidationResult.reject(f'camera position is {distance:.3f} m from the camera arm shoulder, '
                                       f'beyond its reach {limits.reach_m} m')
    return ValidationResult.accept()
