"""Rigid transforms, quaternion helpers and a small tf2-style transform buffer.

Used when ``tf2_ros`` is not installed.  Conventions follow tf2:

* quaternions are ``[x, y, z, w]`` (Hamilton product);
* ``set_transform(parent, child, ...)`` stores ``T_parent_child``, the pose of
  ``child`` in ``parent``: it maps points expressed in ``child`` into ``parent``;
* ``lookup(target, source)`` returns ``T_target_source``, mapping points in
  ``source`` into ``target``, composed through the frames' common ancestor;
* a time of ``None`` or ``0.0`` means "latest time common to every dynamic link
  on the path"; between samples translation is interpolated linearly and
  rotation by slerp; static links are valid at all times.
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

DEFAULT_CACHE_TIME_S = 10.0  # tf2's default buffer length
LATEST_TIME = 0.0  # tf2: time 0 asks for the latest common time
NORM_EPSILON = 1e-12  # below this a quaternion has no direction
SLERP_LINEAR_THRESHOLD = 0.9995  # |cos(angle)| above which slerp falls back to nlerp
ROTATION_MATRIX_TOLERANCE = 1e-6  # allowed deviation of R @ R.T from I
HOMOGENEOUS_BOTTOM_ROW = np.array([0.0, 0.0, 0.0, 1.0])
IDENTITY_QUATERNION = (0.0, 0.0, 0.0, 1.0)


class TransformError(LookupError):
    """A transform cannot be looked up."""


class FrameNotFoundError(TransformError):
    """A requested frame was never set in the buffer."""


class ConnectivityError(TransformError):
    """The two frames belong to different trees."""


class ExtrapolationError(TransformError):
    """The requested time lies outside the stored samples of a link."""


# --------------------------------------------------------------------------- quaternions


def _unit_quaternion(quaternion: ArrayLike) -> FloatArray:
    """Return ``quaternion`` as a float (4,) array of unit norm; raise ValueError if invalid."""
    q = np.array(quaternion, dtype=float)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise ValueError(f"quaternion must be 4 finite numbers [x, y, z, w], got {quaternion!r}")
    norm = np.linalg.norm(q)
    if norm < NORM_EPSILON:
        raise ValueError(f"quaternion {quaternion!r} has zero norm")
    unit: FloatArray = q / norm
    return unit


def quat_multiply(q1: ArrayLike, q2: ArrayLike) -> FloatArray:
    """Hamilton product ``q1 * q2`` of xyzw quaternions (rotate by q2, then by q1)."""
    x1, y1, z1, w1 = np.asarray(q1, dtype=float)
    x2, y2, z2, w2 = np.asarray(q2, dtype=float)
    return np.array([
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
    ])


def quat_conjugate(q: ArrayLike) -> FloatArray:
    """Conjugate ``[-x, -y, -z, w]``; the inverse rotation for a unit quaternion."""
    x, y, z, w = np.asarray(q, dtype=float)
    return np.array([-x, -y, -z, w])


def quat_to_matrix(q: ArrayLike) -> FloatArray:
    """3x3 rotation matrix of an xyzw quaternion (normalized first)."""
    x, y, z, w = _unit_quaternion(q)
    return np.array([
        [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - z * w), 2.0 * (x * z + y * w)],
        [2.0 * (x * y + z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - x * w)],
        [2.0 * (x * z - y * w), 2.0 * (y * z + x * w), 1.0 - 2.0 * (x * x + y * y)],
    ])


def matrix_to_quat(matrix: ArrayLike) -> FloatArray:
    """Unit xyzw quaternion of a 3x3 rotation matrix.

    Uses the largest of ``w, x, y, z`` as pivot (Shepperd's method) so the square
    root never sees a small, cancellation-prone argument.
    """
    m = np.asarray(matrix, dtype=float)
    if m.shape != (3, 3):
        raise ValueError(f"rotation matrix must be 3x3, got shape {m.shape}")
    diagonal = np.diag(m)
    pivots = np.array([diagonal.sum(), *diagonal])  # 4*w^2-1, 4*x^2-1 ... up to scale
    pivot = int(np.argmax(pivots))
    if pivot == 0:
        s = 2.0 * math.sqrt(1.0 + pivots[0])
        q = [m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1], 0.25 * s * s]
    else:
        i = pivot - 1
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, m[k, j] - m[j, k]]
        q[i] = 0.25 * s * s
        q[j] = m[j, i] + m[i, j]
        q[k] = m[k, i] + m[i, k]
    return _unit_quaternion(np.array(q) / s)


def slerp(q0: ArrayLike, q1: ArrayLike, fraction: float) -> FloatArray:
    """Spherical linear interpolation from ``q0`` (fraction 0) to ``q1`` (fraction 1).

    Takes the shortest path: ``q1`` is negated when the quaternions lie in
    opposite hemispheres (they describe the same rotation).
    """
    start, end = _unit_quaternion(q0), _unit_quaternion(q1)
    cos_angle = float(np.dot(start, end))
    if cos_angle < 0.0:
        end, cos_angle = -end, -cos_angle
    if cos_angle > SLERP_LINEAR_THRESHOLD:
        return _unit_quaternion(start + fraction * (end - start))
    angle = math.acos(cos_angle)
    weight_start = math.sin((1.0 - fraction) * angle) / math.sin(angle)
    weight_end = math.sin(fraction * angle) / math.sin(angle)
    return _unit_quaternion(weight_start * start + weight_end * end)


# --------------------------------------------------------------------------- transforms


def _read_only(array: FloatArray) -> FloatArray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Transform:
    """Rigid transform ``p_parent = R(rotation) @ p_child + translation``.

    Attributes:
        translation: (3,) metres.
        rotation: (4,) unit quaternion xyzw (normalized on construction).
    Both arrays are copies and read-only.
    """

    translation: FloatArray
    rotation: FloatArray

    def __post_init__(self) -> None:
        translation = np.array(self.translation, dtype=float)
        if translation.shape != (3,) or not np.all(np.isfinite(translation)):
            raise ValueError(f"translation must be 3 finite numbers, got {self.translation!r}")
        object.__setattr__(self, "translation", _read_only(translation))
        object.__setattr__(self, "rotation", _read_only(_unit_quaternion(self.rotation)))

    @classmethod
    def identity(cls) -> Transform:
        """The transform that leaves every point in place."""
        return cls(np.zeros(3), np.array(IDENTITY_QUATERNION))

    def __mul__(self, other: Transform) -> Transform:
        """Composition: ``(a * b).apply(p) == a.apply(b.apply(p))``."""
        if not isinstance(other, Transform):
            return NotImplemented
        return Transform(self.apply(other.translation),
                         quat_multiply(self.rotation, other.rotation))

    def inverse(self) -> Transform:
        """``T.inverse() * T`` is the identity."""
        inverse_rotation = quat_conjugate(self.rotation)
        return Transform(-quat_to_matrix(inverse_rotation) @ self.translation, inverse_rotation)

    def apply(self, points: ArrayLike) -> FloatArray:
        """Transform a (3,) point or an (N, 3) array of points."""
        p = np.asarray(points, dtype=float)
        if p.shape != (3,) and (p.ndim != 2 or p.shape[1] != 3):
            raise ValueError(f"points must have shape (3,) or (N, 3), got {p.shape}")
        return p @ quat_to_matrix(self.rotation).T + self.translation

    def as_matrix(self) -> FloatArray:
        """4x4 homogeneous matrix."""
        matrix = np.eye(4)
        matrix[:3, :3] = quat_to_matrix(self.rotation)
        matrix[:3, 3] = self.translation
        return matrix

    @classmethod
    def from_matrix(cls, matrix: ArrayLike) -> Transform:
        """Build from a 4x4 homogeneous matrix whose 3x3 block is a proper rotation."""
        m = np.asarray(matrix, dtype=float)
        if m.shape != (4, 4) or not np.allclose(m[3], HOMOGENEOUS_BOTTOM_ROW):
            raise ValueError(f"expected a 4x4 homogeneous matrix with last row [0, 0, 0, 1], "
                             f"got {m.tolist()}")
        rotation = m[:3, :3]
        orthonormal = np.allclose(rotation @ rotation.T, np.eye(3),
                                  atol=ROTATION_MATRIX_TOLERANCE)
        if not orthonormal or np.linalg.det(rotation) <= 0.0:
            raise ValueError(f"upper-left 3x3 block is not a rotation: {rotation.tolist()}")
        return cls(m[:3, 3], matrix_to_quat(rotation))

    def is_close(self, other: Transform, atol: float = 1e-9) -> bool:
        """Equal within ``atol`` (q and -q are the same rotation)."""
        same_rotation = (np.allclose(self.rotation, other.rotation, atol=atol)
                         or np.allclose(self.rotation, -other.rotation, atol=atol))
        return same_rotation and np.allclose(self.translation, other.translation, atol=atol)


def interpolate(start: Transform, end: Transform, fraction: float) -> Transform:
    """Linear translation and slerp rotation; ``fraction`` 0 gives ``start``, 1 ``end``."""
    translation = start.translation + fraction * (end.translation - start.translation)
    return Transform(translation, slerp(start.rotation, end.rotation, fraction))


# --------------------------------------------------------------------------- buffer


@dataclass
class _Link:
    """The samples of one parent -> child edge, sorted by stamp."""

    parent: str
    child: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    transforms: list[Transform] = field(default_factory=list)

    def insert(self, stamp_s: float, transform: Transform, cache_time_s: float) -> None:
        """Add a sample (a static link keeps only the latest) and prune old ones."""
        if self.static:
            self.stamps, self.transforms = [stamp_s], [transform]
            return
        index = bisect.bisect_left(self.stamps, stamp_s)
        if index < len(self.stamps) and self.stamps[index] == stamp_s:
            self.transforms[index] = transform
        else:
            self.stamps.insert(index, stamp_s)
            self.transforms.insert(index, transform)
        self._prune(cache_time_s)

    def _prune(self, cache_time_s: float) -> None:
        """Drop samples older than ``newest - cache_time_s``."""
        keep_from = bisect.bisect_left(self.stamps, self.stamps[-1] - cache_time_s)
        del self.stamps[:keep_from]
        del self.transforms[:keep_from]

    @property
    def newest(self) -> float:
        return self.stamps[-1]

    def at(self, time_s: float) -> Transform:
        """``T_parent_child`` at ``time_s``, interpolated between the bracketing samples."""
        if self.static:
            return self.transforms[0]
        oldest, newest = self.stamps[0], self.stamps[-1]
        if not oldest <= time_s <= newest:
            direction = "past" if time_s < oldest else "future"
            raise ExtrapolationError(
                f"extrapolation into the {direction}: link '{self.parent}' -> '{self.child}' "
                f"has data for [{oldest:.6f}, {newest:.6f}] s, requested {time_s:.6f} s")
        index = bisect.bisect_left(self.stamps, time_s)
        if self.stamps[index] == time_s:
            return self.transforms[index]
        before, after = self.stamps[index - 1], self.stamps[index]
        fraction = (time_s - before) / (after - before)
        return interpolate(self.transforms[index - 1], self.transforms[index], fraction)


def _check_frame_id(frame: str) -> None:
    """tf2 frame ids are non-empty and have no leading '/'."""
    if not isinstance(frame, str) or not frame:
        raise ValueError(f"frame id must be a non-empty string, got {frame!r}")
    if frame.startswith("/"):
        raise ValueError(f"frame id '{frame}' must not start with '/' (tf2 convention)")


class TransformBuffer:
    """Stores a forest of stamped parent -> child transforms and answers lookups.

    Thread-safe: callbacks may set transforms while others look them up.

    Args:
        cache_time_s: seconds of history kept per dynamic link, counted back
            from its newest sample (default 10 s, as tf2).
    """

    def __init__(self, cache_time_s: float = DEFAULT_CACHE_TIME_S) -> None:
        if not cache_time_s > 0.0:
            raise ValueError(f"cache_time_s must be positive, got {cache_time_s}")
        self._cache_time_s = cache_time_s
        self._links: dict[str, _Link] = {}  # keyed by child frame
        self._lock = threading.RLock()

    def set_transform(self, parent: str, child: str, stamp_s: float, transform: Transform,
                      static: bool = False) -> None:
        """Store ``T_parent_child`` at ``stamp_s`` (seconds).

        Raises:
            ValueError: invalid frame ids or stamp, ``child`` already attached to
                another parent, a switch between static and dynamic, or a cycle.
            TypeError: ``transform`` is not a Transform.
        """
        _check_frame_id(parent)
        _check_frame_id(child)
        if not isinstance(transform, Transform):
            raise TypeError(f"transform must be a Transform, got {type(transform).__name__}")
        if parent == child:
            raise ValueError(f"frame '{child}' cannot be its own parent")
        if not math.isfinite(stamp_s):
            raise ValueError(f"stamp of '{parent}' -> '{child}' must be finite, got {stamp_s}")
        with self._lock:
            link = self._links.get(child) or self._new_link(parent, child, static)
            self._check_consistent(link, parent, static)
            link.insert(stamp_s, transform, self._cache_time_s)

    def _new_link(self, parent: str, child: str, static: bool) -> _Link:
        """Create the edge parent -> child after checking it closes no cycle."""
        if child in self._path_to_root(parent):
            raise ValueError(f"link '{parent}' -> '{child}' would create a cycle")
        link = _Link(parent, child, static)
        self._links[child] = link
        return link

    @staticmethod
    def _check_consistent(link: _Link, parent: str, static: bool) -> None:
        if link.parent != parent:
            raise ValueError(f"frame '{link.child}' already has parent '{link.parent}'; "
                             f"cannot attach it to '{parent}' (a frame has one parent)")
        if link.static != static:
            kinds = ("dynamic", "static") if link.static else ("static", "dynamic")
            raise ValueError(f"link '{parent}' -> '{link.child}' is {kinds[1]}; cannot set "
                             f"it as {kinds[0]}")

    def frames(self) -> list[str]:
        """All known frame ids, sorted."""
        with self._lock:
            parents = {link.parent for link in self._links.values()}
            return sorted(parents | self._links.keys())

    def lookup(self, target_frame: str, source_frame: str,
               time_s: float | None = None) -> Transform:
        """``T_target_source`` at ``time_s`` (None or 0.0: latest common time).

        Raises:
            FrameNotFoundError, ConnectivityError, ExtrapolationError.
        """
        with self._lock:
            for frame in (target_frame, source_frame):
                self._require_frame(frame)
            if target_frame == source_frame:
                return Transform.identity()
            source_links, target_links = self._links_to_common_ancestor(target_frame,
                                                                        source_frame)
            time = self._resolve_time(source_links + target_links, time_s)
            ancestor_from_source = self._compose(source_links, time)
            ancestor_from_target = self._compose(target_links, time)
            return ancestor_from_target.inverse() * ancestor_from_source

    def can_transform(self, target_frame: str, source_frame: str,
                      time_s: float | None = None) -> bool:
        """Whether ``lookup`` with the same arguments would succeed."""
        try:
            self.lookup(target_frame, source_frame, time_s)
        except TransformError:
            return False
        return True

    def _require_frame(self, frame: str) -> None:
        if frame in self._links or any(link.parent == frame for link in self._links.values()):
            return
        known = ", ".join(self.frames()) or "(none)"
        hint = " (tf2 frame ids have no leading '/')" if str(frame).startswith("/") else ""
        raise FrameNotFoundError(f"frame '{frame}' does not exist{hint}; known frames: {known}")

    def _path_to_root(self, frame: str) -> list[str]:
        """``[frame, parent, grandparent, ..., root]``."""
        path = [frame]
        while path[-1] in self._links:
            path.append(self._links[path[-1]].parent)
        return path

    def _links_to_common_ancestor(self, target: str,
                                  source: str) -> tuple[list[_Link], list[_Link]]:
        """Links from each frame up to (excluding) their closest common ancestor."""
        source_path, target_path = self._path_to_root(source), self._path_to_root(target)
        target_depth = {frame: depth for depth, frame in enumerate(target_path)}
        for depth, frame in enumerate(source_path):
            if frame in target_depth:
                return (self._links_of(source_path[:depth]),
                        self._links_of(target_path[:target_depth[frame]]))
        raise ConnectivityError(
            f"frames '{target}' and '{source}' are not connected: '{target}' is in the tree "
            f"rooted at '{target_path[-1]}', '{source}' in the tree rooted at "
            f"'{source_path[-1]}'")

    def _links_of(self, frames: list[str]) -> list[_Link]:
        return [self._links[frame] for frame in frames]

    @staticmethod
    def _resolve_time(links: list[_Link], time_s: float | None) -> float:
        """Requested time, or for None/0.0 the newest time every dynamic link has reached."""
        if time_s is not None and time_s != LATEST_TIME:
            if not math.isfinite(time_s):
                raise ValueError(f"lookup time must be finite, got {time_s}")
            return time_s
        newest = [link.newest for link in links if not link.static]
        return min(newest) if newest else LATEST_TIME

    @staticmethod
    def _compose(links: list[_Link], time_s: float) -> Transform:
        """``T_ancestor_frame`` from the links ``[frame -> parent, ..., -> ancestor]``."""
        result = Transform.identity()
        for link in reversed(links):
            result = result * link.at(time_s)
        return result
