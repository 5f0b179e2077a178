"""Rotation maths for the gripper's XYZ Euler joint (torch, differentiable) and free bodies (numpy).

Conventions match samrl_sim.geometry (rotations act on column vectors) and nimblephysics'
EulerJoint with axis order XYZ: R(q) = Rx(q0) Ry(q1) Rz(q2); its velocities are the Euler rates,
related to the body-frame angular velocity by omega_body = E(q) dq/dt.
"""
from __future__ import annotations

import numpy as np
import torch

SMALL_ANGLE_RAD = 1e-6


def _axis_rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    """3x3 rotation by `angle` (rad) about coordinate axis 0, 1 or 2."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rows = {0: [[one, zero, zero], [zero, c, -s], [zero, s, c]],
            1: [[c, zero, s], [zero, one, zero], [-s, zero, c]],
            2: [[c, -s, zero], [s, c, zero], [zero, zero, one]]}[axis]
    return torch.stack([torch.stack(row) for row in rows])


def euler_xyz_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """R = Rx(q0) Ry(q1) Rz(q2)."""
    return _axis_rotation(q[0], 0) @ _axis_rotation(q[1], 1) @ _axis_rotation(q[2], 2)


def euler_rates_matrix(q: torch.Tensor) -> torch.Tensor:
    """E(q) with omega_body = E(q) dq/dt for R = Rx Ry Rz (singular at |q1| = pi/2)."""
    ry_t, rz_t = _axis_rotation(q[1], 1).T, _axis_rotation(q[2], 2).T
    eye = torch.eye(3, dtype=q.dtype)
    return torch.stack([rz_t @ ry_t @ eye[0], rz_t @ eye[1], eye[2]], dim=1)


def matrix_to_euler_xyz(matrix: np.ndarray) -> np.ndarray:
    """Angles (rad) with Rx(a) Ry(b) Rz(c) = matrix, |b| < pi/2."""
    b = np.arcsin(np.clip(matrix[0, 2], -1.0, 1.0))
    a = np.arctan2(-matrix[1, 2], matrix[2, 2])
    c = np.arctan2(-matrix[0, 1], matrix[0, 0])
    return np.array([a, b, c])


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """Rotation vector (rad) of a 3x3 rotation matrix; angles up to pi."""
    cos_angle = np.clip(0.5 * (np.trace(matrix) - 1.0), -1.0, 1.0)
    angle = float(np.arccos(cos_angle))
    antisymmetric = np.array([matrix[2, 1] - matrix[1, 2], matrix[0, 2] - matrix[2, 0], matrix[1, 0] - matrix[0, 1]])
    if angle < SMALL_ANGLE_RAD:
        return 0.5 * antisymmetric
    if np.pi - angle < 1e-4:
        # Near pi the antisymmetric part vanishes: take the axis from the symmetric part.
        axis_outer = 0.5 * (matrix + np.eye(3))
        axis = axis_outer[np.argmax(np.diag(axis_outer))]
        return angle * axis / np.linalg.norm(axis)
    return angle * antisymmetric / (2.0 * np.sin(angle))
