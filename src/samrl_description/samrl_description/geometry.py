"""The one set of pose and rotation maths (numpy; scipy's Rotation and Slerp do the rotations).

Conventions, shared with ROS, tf2 and PyBullet: quaternions are (x, y, z, w); rotations act on
column vectors; a Pose maps points from its child frame into its parent frame (tf2's
T_parent_child). The differentiable versions that gradients need (torch) are in
samrl_model.rotations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.transform import Rotation, Slerp

NORM_EPSILON = 1e-12                # below this a quaternion or direction has no direction
ROTATION_MATRIX_TOLERANCE = 1e-6    # allowed deviation of R @ R.T from I in a homogeneous matrix
HOMOGENEOUS_BOTTOM_ROW = np.array([0.0, 0.0, 0.0, 1.0])
IDENTITY_QUAT = (0.0, 0.0, 0.0, 1.0)


# --- quaternions and rotation vectors ------------------------------------------------------------

def unit_quaternion(quaternion: ArrayLike) -> np.ndarray:
    """`quaternion` as a float (4,) array of unit norm; ValueError naming the problem otherwise."""
    q = np.array(quaternion, dtype=float)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise ValueError(f'quaternion must be 4 finite numbers [x, y, z, w], got {quaternion!r}')
    norm = np.linalg.norm(q)
    if not np.isfinite(norm):   # components near the float limit: the sum of squares overflows (a zero quaternion)
        q = q / np.max(np.abs(q))
        norm = np.linalg.norm(q)
    if norm < NORM_EPSILON:
        raise ValueError(f'quaternion {quaternion!r} has zero norm')
    return q / norm


def _rotation(q: ArrayLike) -> Rotation:
    return Rotation.from_quat(unit_quaternion(q))


def quat_normalize(q: ArrayLike) -> np.ndarray:
    return unit_quaternion(q)


def quat_conjugate(q: ArrayLike) -> np.ndarray:
    """[-x, -y, -z, w]: the inverse rotation of a unit quaternion."""
    x, y, z, w = np.asarray(q, dtype=float)
    return np.array([-x, -y, -z, w])


def quat_multiply(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Hamilton product a * b (rotate by b first, then by a), of unit norm.

    Written out rather than through scipy: IK and the oracles call it in tight loops, where
    building Rotation objects costs several times the arithmetic.
    """
    ax, ay, az, aw = unit_quaternion(a)
    bx, by, bz, bw = unit_quaternion(b)
    return np.array([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz])


def quat_to_matrix(q: ArrayLike) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (normalised first); written out for the same reason."""
    x, y, z, w = unit_quaternion(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat(matrix: ArrayLike) -> np.ndarray:
    """Unit quaternion of a 3x3 rotation matrix, with w >= 0."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (3, 3):
        raise ValueError(f'rotation matrix must be 3x3, got shape {m.shape}')
    return Rotation.from_matrix(m).as_quat(canonical=True)


def axis_angle_to_quat(rotvec: ArrayLike) -> np.ndarray:
    """Rotation vector (axis * angle, rad) to quaternion."""
    return Rotation.from_rotvec(np.asarray(rotvec, dtype=float)).as_quat()


def quat_to_axis_angle(q: ArrayLike) -> np.ndarray:
    """Quaternion to rotation vector (axis * angle, rad), angle in [0, pi]."""
    return _rotation(q).as_rotvec()


def matrix_to_rotvec(matrix: ArrayLike) -> np.ndarray:
    """Rotation vector (rad, angle in [0, pi]) of a 3x3 rotation matrix."""
    return Rotation.from_matrix(np.asarray(matrix, dtype=float)).as_rotvec()


def matrix_to_euler_xyz(matrix: ArrayLike) -> np.ndarray:
    """Angles (rad) with Rx(a) Ry(b) Rz(c) = matrix (intrinsic XYZ), |b| <= pi/2."""
    return Rotation.from_matrix(np.asarray(matrix, dtype=float)).as_euler('XYZ')


def quat_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF convention: extrinsic roll about x, then pitch about y, then yaw about z."""
    return Rotation.from_euler('xyz', [roll, pitch, yaw]).as_quat()


def yaw_quat(yaw: float) -> np.ndarray:
    """Rotation by `yaw` (rad) about the world z axis."""
    return axis_angle_to_quat([0.0, 0.0, yaw])


def yaw_of(rotation: np.ndarray) -> float:
    """Heading (rad) of a 3x3 rotation's x axis in the xy plane."""
    return float(np.arctan2(rotation[1, 0], rotation[0, 0]))


def rotation_angle(q: ArrayLike) -> float:
    """Angle (rad, in [0, pi]) of the rotation a quaternion represents."""
    return float(_rotation(q).magnitude())


def slerp(q0: ArrayLike, q1: ArrayLike, fraction: float) -> np.ndarray:
    """Spherical linear interpolation, shortest path, from q0 (fraction 0) to q1 (fraction 1)."""
    key_rotations = Rotation.from_quat([unit_quaternion(q0), unit_quaternion(q1)])
    return Slerp([0.0, 1.0], key_rotations)([float(fraction)]).as_quat()[0]


def rotation_between(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Shortest rotation vector (rad) turning direction a onto direction b (any axis for opposites)."""
    a = np.asarray(a, dtype=float) / np.linalg.norm(a)
    b = np.asarray(b, dtype=float) / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin_angle = float(np.linalg.norm(axis))
    angle = float(np.arctan2(sin_angle, float(np.dot(a, b))))
    if sin_angle > NORM_EPSILON:
        return axis / sin_angle * angle
    if angle < 1.0:
        return np.zeros(3)
    perpendicular = np.cross(a, [1.0, 0.0, 0.0])
    if np.linalg.norm(perpendicular) < 1e-6:
        perpendicular = np.cross(a, [0.0, 1.0, 0.0])
    return perpendicular / np.linalg.norm(perpendicular) * np.pi


# --- poses -------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Pose:
    """Position (m) and quaternion (x, y, z, w) of a child frame in a parent frame (T_parent_child).

    The constructor keeps the values as given, so that a check can see a message's quaternion as
    it was sent; `Pose.checked` validates and normalises (what a transform buffer stores).
    """

    position: np.ndarray
    quaternion: np.ndarray

    @staticmethod
    def identity() -> Pose:
        return Pose(np.zeros(3), np.array(IDENTITY_QUAT))

    @staticmethod
    def from_xyz_quat(position: ArrayLike, quaternion: ArrayLike) -> Pose:
        """A pose with the quaternion normalised."""
        return Pose(np.asarray(position, dtype=float), unit_quaternion(quaternion))

    @staticmethod
    def checked(position: ArrayLike, quaternion: ArrayLike) -> Pose:
        """A pose of 3 finite coordinates and a unit quaternion; ValueError naming what is wrong."""
        p = np.array(position, dtype=float)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ValueError(f'position must be 3 finite numbers, got {position!r}')
        q = unit_quaternion(quaternion)
        p.flags.writeable = q.flags.writeable = False   # a stored transform cannot be changed in place
        return Pose(p, q)

    @staticmethod
    def from_matrix(matrix: ArrayLike) -> Pose:
        """From a 4x4 homogeneous matrix whose 3x3 block is a proper rotation (ValueError otherwise)."""
        m = np.asarray(matrix, dtype=float)
        if m.shape != (4, 4) or not np.allclose(m[3], HOMOGENEOUS_BOTTOM_ROW):
            raise ValueError(f'expected a 4x4 homogeneous matrix with last row [0, 0, 0, 1], got {m.tolist()}')
        rotation = m[:3, :3]
        orthonormal = np.allclose(rotation @ rotation.T, np.eye(3), atol=ROTATION_MATRIX_TOLERANCE)
        if not orthonormal or np.linalg.det(rotation) <= 0.0:
            raise ValueError(f'upper-left 3x3 block is not a rotation: {rotation.tolist()}')
        return Pose(m[:3, 3].copy(), matrix_to_quat(rotation))

    @property
    def rotation(self) -> np.ndarray:
        """3x3 rotation matrix of the quaternion."""
        return quat_to_matrix(self.quaternion)

    def compose(self, other: Pose) -> Pose:
        """self * other: `other` given in self's child frame, returned in self's parent frame."""
        return Pose(self.position + self.rotation @ np.asarray(other.position, dtype=float),
                    quat_multiply(self.quaternion, other.quaternion))

    def __mul__(self, other: Pose) -> Pose:
        if not isinstance(other, Pose):
            return NotImplemented
        return self.compose(other)

    def inverse(self) -> Pose:
        """T.inverse() * T is the identity."""
        return Pose(-self.rotation.T @ self.position, quat_conjugate(unit_quaternion(self.quaternion)))

    def apply(self, points: ArrayLike) -> np.ndarray:
        """Map a (3,) point or (N, 3) points from the child frame into the parent frame."""
        p = np.asarray(points, dtype=float)
        if p.shape != (3,) and (p.ndim != 2 or p.shape[1] != 3):
            raise ValueError(f'points must have shape (3,) or (N, 3), got {p.shape}')
        return p @ self.rotation.T + self.position

    def as_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation
        matrix[:3, 3] = self.position
        return matrix

    def as_tuple(self) -> tuple[list[float], list[float]]:
        return list(map(float, self.position)), list(map(float, self.quaternion))

    def is_close(self, other: Pose, atol: float = 1e-9) -> bool:
        """Equal within `atol` (q and -q are the same rotation)."""
        q, r = unit_quaternion(self.quaternion), unit_quaternion(other.quaternion)
        same_rotation = np.allclose(q, r, atol=atol) or np.allclose(q, -r, atol=atol)
        return same_rotation and np.allclose(self.position, other.position, atol=atol)


def interpolate(start: Pose, end: Pose, fraction: float) -> Pose:
    """Linear position and slerp rotation; fraction 0 gives `start`, 1 gives `end`."""
    position = np.asarray(start.position) + fraction * (np.asarray(end.position) - np.asarray(start.position))
    return Pose(position, slerp(start.quaternion, end.quaternion, fraction))


def look_at(eye: ArrayLike, target: ArrayLike, up: ArrayLike = (0.0, 0.0, 1.0)) -> Pose:
    """REP-103 optical-frame pose (z forward, x right, y down) at `eye` looking at `target`."""
    eye = np.asarray(eye, dtype=float)
    z_axis = np.asarray(target, dtype=float) - eye
    z_axis /= np.linalg.norm(z_axis)
    down = -np.asarray(up, dtype=float)
    y_axis = down - np.dot(down, z_axis) * z_axis
    if np.linalg.norm(y_axis) < NORM_EPSILON:
        raise ValueError('look_at: viewing direction is parallel to `up`')
    y_axis /= np.linalg.norm(y_axis)
    x_axis = np.cross(y_axis, z_axis)
    return Pose(eye, matrix_to_quat(np.column_stack([x_axis, y_axis, z_axis])))
