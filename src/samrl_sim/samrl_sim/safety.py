"""Pure validation of commands: no simulator, no side effects.

Each validator returns a ValidationResult; the world applies a command only when `ok` is True,
and otherwise leaves both arms where they are and reports `reason`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samrl_sim.commands import CameraPoseGoal, EeDeltaCommand

MAX_TRANSLATION_PER_STEP_M = 0.02     # per axis, per control step (0.2 m/s at 10 Hz)
MAX_ROTATION_PER_STEP_RAD = 0.10      # per rotation-vector component, per control step
GRIPPER_MIN_WIDTH_M = 0.0
GRIPPER_MAX_WIDTH_M = 0.08            # Panda hand stroke
QUATERNION_NORM_TOLERANCE = 0.05      # |‖q‖ - 1| allowed before normalising
LIMIT_RELATIVE_TOLERANCE = 1e-9      # forgive floating-point rounding at a bound
CAMERA_ARM_REACH_M = 0.95             # joint 2 to optical frame: 0.78 m arm + wrist, flange, camera


@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box in the world frame (m)."""

    lower: tuple[float, float, float]
    upper: tuple[float, float, float]

    def contains(self, point: np.ndarray) -> bool:
        return bool(np.all(point >= np.asarray(self.lower)) and np.all(point <= np.asarray(self.upper)))


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


def validate_ee_delta(command: EeDeltaCommand, tcp_position_m, limits: EeLimits = EeLimits()) -> ValidationResult:
    """Check finiteness, per-step bounds and that the resulting tool position stays in the workspace."""
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
    if not limits.workspace.contains(target):
        return ValidationResult.reject(f'target tool position {np.round(target, 4).tolist()} m is outside the '
                                       f'workspace {limits.workspace.lower}..{limits.workspace.upper} m')
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
