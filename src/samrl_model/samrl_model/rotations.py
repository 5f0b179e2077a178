"""Differentiable rotation and pose maths in torch (the numpy set is samrl_description.geometry).

Conventions match samrl_description.geometry: rotations act on column vectors, quaternions are
(x, y, z, w) and a pose matrix maps a child frame into its parent. The gripper's XYZ Euler joint
follows nimblephysics' EulerJoint with axis order XYZ: R(q) = Rx(q0) Ry(q1) Rz(q2); its
velocities are the Euler rates, related to the body-frame angular velocity by omega_body = E(q) dq/dt.
"""
from __future__ import annotations

import numpy as np
import torch

from samrl_description.geometry import matrix_to_rotvec, quat_to_matrix

SMALL_ANGLE_SQ_RAD2 = 1e-12      # keeps the axis-angle map smooth (and its gradient finite) at 0


def axis_angle_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rotation matrix (3, 3) of an axis-angle vector (rad); smooth and differentiable at zero."""
    theta_sq = (rotvec * rotvec).sum() + SMALL_ANGLE_SQ_RAD2
    theta = torch.sqrt(theta_sq)
    zero = torch.zeros((), dtype=rotvec.dtype)
    x, y, z = rotvec
    skew = torch.stack([torch.stack([zero, -z, y]), torch.stack([z, zero, -x]), torch.stack([-y, x, zero])])
    eye = torch.eye(3, dtype=rotvec.dtype)
    return eye + torch.sin(theta) / theta * skew + (1.0 - torch.cos(theta)) / theta_sq * (skew @ skew)


def fixed_axis_rotation(axis, angle: torch.Tensor) -> torch.Tensor:
    """(3, 3) rotation by `angle` about a fixed unit axis (Rodrigues, differentiable in the angle)."""
    k = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]],
                     dtype=angle.dtype)
    return torch.eye(3, dtype=angle.dtype) + torch.sin(angle) * k + (1.0 - torch.cos(angle)) * (k @ k)


def rotvec_of(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation vector (rad) of a (3, 3) rotation matrix (not differentiable: for starting values)."""
    return torch.as_tensor(matrix_to_rotvec(matrix.detach().numpy()), dtype=matrix.dtype)


def coordinate_rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    """(3, 3) rotation by `angle` (rad) about coordinate axis 0, 1 or 2 (cheaper than Rodrigues:
    the physics step builds three per substep)."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rows = {0: [[one, zero, zero], [zero, c, -s], [zero, s, c]],
            1: [[c, zero, s], [zero, one, zero], [-s, zero, c]],
            2: [[c, -s, zero], [s, c, zero], [zero, zero, one]]}[axis]
    return torch.stack([torch.stack(row) for row in rows])


def euler_xyz_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """R = Rx(q0) Ry(q1) Rz(q2)."""
    return coordinate_rotation(q[0], 0) @ coordinate_rotation(q[1], 1) @ coordinate_rotation(q[2], 2)


def euler_rates_matrix(q: torch.Tensor) -> torch.Tensor:
    """E(q) with omega_body = E(q) dq/dt for R = Rx Ry Rz (singular at |q1| = pi/2)."""
    ry_t, rz_t = coordinate_rotation(q[1], 1).T, coordinate_rotation(q[2], 2).T
    eye = torch.eye(3, dtype=q.dtype)
    return torch.stack([rz_t @ ry_t @ eye[0], rz_t @ eye[1], eye[2]], dim=1)


def homogeneous(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(4, 4) transform from a (3, 3) rotation and a (3,) translation."""
    top = torch.cat([rotation, translation.reshape(3, 1)], dim=1)
    return torch.cat([top, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=rotation.dtype)], dim=0)


def pose_matrix(translation: torch.Tensor, rotvec: torch.Tensor) -> torch.Tensor:
    """Homogeneous (4, 4) transform from a translation (m) and an axis-angle rotation (rad)."""
    return homogeneous(axis_angle_matrix(rotvec), translation)


def pose_matrix_from_quat(position, quaternion, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Homogeneous (4, 4) tensor of a (position, quaternion xyzw) pose."""
    matrix = np.eye(4)
    matrix[:3, :3] = quat_to_matrix(np.asarray(quaternion, dtype=float))
    matrix[:3, 3] = np.asarray(position, dtype=float)
    return torch.tensor(matrix, dtype=dtype)


def invert_pose(pose: torch.Tensor) -> torch.Tensor:
    """Inverse of a rigid (4, 4) transform, differentiably."""
    rotation_t = pose[:3, :3].T
    return homogeneous(rotation_t, -rotation_t @ pose[:3, 3])
