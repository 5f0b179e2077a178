"""What Real2Sim compares the model with: one segmented RGB-D view of a target object."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose


@dataclass(frozen=True)
class Observation:
    """rgb HxWx3 in [0, 1]; depth_m HxW (0 = no return); mask HxW bool of `target`; the camera's
    intrinsics and its optical frame's pose in the world."""

    rgb: np.ndarray
    depth_m: np.ndarray
    mask: np.ndarray
    intrinsics: CameraIntrinsics
    camera_pose: Pose
    target: str
