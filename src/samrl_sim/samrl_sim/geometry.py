"""Rigid-body pose maths in plain numpy (no simulator), shared by the world, tasks and oracles.

Conventions: quaternions are (x, y, z, w) as in ROS and PyBullet; rotations act on column vectors;
a Pose maps points from its child frame into its parent frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMALL_ANGLE_RAD = 1e-9


@dataclass(frozen=True)
class Pose:
    """Position (m) and unit quaternion (x, y, z, w) of a child frame in a parent frame."""

    position: np.ndarray
    quaternion: np.ndarray

    @staticmethod
    def identity() -> Pose:
        return Pose(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    @staticmethod
    def from_xyz_quat(position, quaternion) -> Pose:
        return Pose(np.asarray(position, dtype=float), quat_normalize(np.asarray(quaternion, dtype=float)))

    @property
    def rotation(self) -> np.ndarray:
        """3x3 rotation matrix of the quaternion."""
        return quat_to_matrix(self.quaternion)

    def compose(self, other: Pose) -> Pose:
        """self * other: `other` expressed in self's child frame, returned in self's parent frame."""
        return Pose(self.position + self.rotation @ other.position,
                    quat_normalize(quat_multiply(self.quaternion, other.quaternion)))

    def inverse(self) -> Pose:
        rot_t = self.rotation.T
        return Pose(-rot_t @ self.position, quat_conjugate(self.quaternion))

    def apply(self, point) -> np.ndarray:
        """Map a point from the child frame into the parent frame."""
        return self.position + self.rotation @ np.asarray(point, dtype=float)

    def as_tuple(self) -> tuple[list[float], list[float]]:
        return list(map(float, self.position)), list(map(float, self.quaternion))


def quat_normalize(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    return np.array([-q[0], -q[1], -q[2], q[3]])


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = quat_normalize(np.asarray(q, dtype=float))
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrix to quaternion (x, y, z, w) with w >= 0 (Shepperd's method)."""
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    q = quat_normalize(np.array(q))
    return -q if q[3] < 0 else q


def axis_angle_to_quat(rotvec) -> np.ndarray:
    """Rotation vector (axis * angle, rad) to quaternion."""
    rotvec = np.asarray(rotvec, dtype=float)
    angle = float(np.linalg.norm(rotvec))
    if angle < SMALL_ANGLE_RAD:
        return quat_normalize(np.array([*(0.5 * rotvec), 1.0]))
    axis = rotvec / angle
    return np.array([*(axis * np.sin(angle / 2)), np.cos(angle / 2)])


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """Quaternion to rotation vector (axis * angle, rad), angle in [0, pi]."""
    q = quat_normalize(np.asarray(q, dtype=float))
    if q[3] < 0:
        q = -q
    sin_half = float(np.linalg.norm(q[:3]))
    if sin_half < SMALL_ANGLE_RAD:
        return 2.0 * q[:3]
    angle = 2.0 * np.arctan2(sin_half, q[3])
    return q[:3] / sin_half * angle


def rotation_between(a, b) -> np.ndarray:
    """Shortest rotation vector (rad) turning direction a onto direction b."""
    a = np.asarray(a, dtype=float) / np.linalg.norm(a)
    b = np.asarray(b, dtype=float) / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin_angle = float(np.linalg.norm(axis))
    angle = float(np.arctan2(sin_angle, float(np.dot(a, b))))
    if sin_angle < SMALL_ANGLE_RAD:
        if angle < 1.0:
            return np.zeros(3)
        perpendicular = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(perpendicular) < 1e-6:
            perpendicular = np.cross(a, [0.0, 1.0, 0.0])
        return perpendicular / np.linalg.norm(perpendicular) * np.pi
    return axis / sin_angle * angle


def quat_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF convention: extrinsic roll about x, then pitch about y, then yaw about z."""
    qx = axis_angle_to_quat([roll, 0.0, 0.0])
    qy = axis_angle_to_quat([0.0, pitch, 0.0])
    qz = axis_angle_to_quat([0.0, 0.0, yaw])
    return quat_multiply(qz, quat_multiply(qy, qx))


def yaw_quat(yaw: float) -> np.ndarray:
    return axis_angle_to_quat([0.0, 0.0, yaw])


def rotation_angle(q: np.ndarray) -> float:
    """Angle (rad, in [0, pi]) of the rotation a quaternion represents."""
    return float(np.linalg.norm(quat_to_axis_angle(q)))


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> Pose:
    """REP-103 optical-frame pose (z forward, x right, y down) at `eye` looking at `target`."""
    eye = np.asarray(eye, dtype=float)
    z_axis = np.asarray(target, dtype=float) - eye
    z_axis /= np.linalg.norm(z_axis)
    down = -np.asarray(up, dtype=float)
    y_axis = down - np.dot(down, z_axis) * z_axis
    if np.linalg.norm(y_axis) < SMALL_ANGLE_RAD:
        raise ValueError('look_at: viewing direction is parallel to `up`')
    y_axis /= np.linalg.norm(y_axis)
    x_axis = np.cross(y_axis, z_axis)
    return Pose(eye, matrix_to_quat(np.column_stack([x_axis, y_axis, z_axis])))
