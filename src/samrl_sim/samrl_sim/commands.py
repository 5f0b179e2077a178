"""Commands the world accepts; they are plain data, checked by safety.py before anything moves."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class EeDeltaCommand:
    """Relative motion of the Panda's tool centre point (panda_grasptarget) for one control step.

    translation_m: (dx, dy, dz) in metres, expressed in the task frame (= world frame: origin at
        the Panda's base on the table top, z up).
    rotation_rad: rotation vector (axis * angle, radians) in the task frame, applied about the
        tool centre point: R_new = exp(rotation) * R_current.
    gripper_width_m: target distance between the fingers (0 = closed, 0.08 = open).
    """

    translation_m: Sequence[float]
    rotation_rad: Sequence[float]
    gripper_width_m: float

    @staticmethod
    def zero(gripper_width_m: float) -> EeDeltaCommand:
        return EeDeltaCommand((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), gripper_width_m)


@dataclass(frozen=True)
class CameraPoseGoal:
    """Goal pose of camera_color_optical_frame in the world frame (REP-103 optical convention).

    position_m: (x, y, z) metres; quaternion_xyzw: unit quaternion (x, y, z, w).
    """

    position_m: Sequence[float]
    quaternion_xyzw: Sequence[float]
