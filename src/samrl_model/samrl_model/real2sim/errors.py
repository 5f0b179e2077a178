"""How far M's latents of an object are from the truth: position, rotation (also up to the object's
symmetry) and, for the thread, the mean distance of its links.

Simulator-free, so the benchmarks and model_node's monitoring (against the sim bridge's
privileged state) measure the same figures.
"""

from __future__ import annotations

import numpy as np

from samrl_model.meshes import thread_link_poses
from samrl_model.render import ObjectParams
from samrl_model.rotations import axis_angle_matrix, pose_matrix

M_TO_MM = 1000.0


def _angle_deg(relative: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(relative) - 1.0) / 2.0, -1.0, 1.0))))


def symmetric_rotation_error_deg(relative: np.ndarray, yaw_period: float) -> float:
    """Rotation angle of `relative` (truth^T estimate) up to turns about the object's z axis by
    multiples of `yaw_period` (0: any turn, leaving the angle between the z axes)."""
    if yaw_period == 0.0:
        return float(np.degrees(np.arccos(np.clip(relative[2, 2], -1.0, 1.0))))
    turns = np.arange(0.0, 2.0 * np.pi - 1e-9, yaw_period)
    return min(_angle_deg(relative @ np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0],
                                                [0.0, 0.0, 1.0]])) for a in turns)


def errors(estimate: ObjectParams, truth: ObjectParams, yaw_period: float | None = None) -> dict[str, float]:
    """Translation (mm) and rotation (deg) errors; with `yaw_period`, also the rotation error up to
    the object's symmetry; for the thread, the mean distance of its links (mm)."""
    relative = (axis_angle_matrix(truth.rotation).T @ axis_angle_matrix(estimate.rotation)).detach().numpy()
    result = {'translation_mm': float((estimate.translation - truth.translation).norm()) * M_TO_MM,
              'rotation_deg': _angle_deg(relative)}
    if yaw_period is not None:
        result['rotation_sym_deg'] = symmetric_rotation_error_deg(relative, yaw_period)
    if truth.joint_angles is not None:
        links = [thread_link_poses(p.joint_angles, pose_matrix(p.translation, p.rotation), p.thread_spec)[:, :3, 3]
                 for p in (estimate, truth)]
        result['thread_mm'] = float((links[0] - links[1]).norm(dim=1).mean()) * M_TO_MM
    return result
