"""A small tf2-style transform buffer of samrl_description.geometry.Pose samples.

Used when ``tf2_ros`` is not installed.  Conventions follow tf2:

* quaternions are ``[x, y, z, w]`` (Hamilton product); the pose maths is samrl_description's;
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

from samrl_description.geometry import Pose, interpolate

DEFAULT_CACHE_TIME_S = 10.0  # tf2's default buffer length
LATEST_TIME = 0.0  # tf2: time 0 asks for the latest common time


class TransformError(LookupError):
    """A transform cannot be looked up."""


class FrameNotFoundError(TransformError):
    """A requested frame was never set in the buffer."""


class ConnectivityError(TransformError):
    """The two frames belong to different trees."""


class ExtrapolationError(TransformError):
    """The requested time lies outside the stored samples of a link."""


# --------------------------------------------------------------------------- buffer


@dataclass
class _Link:
    """The samples of one parent -> child edge, sorted by stamp."""

    parent: str
    child: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    transforms: list[Pose] = field(default_factory=list)

    def insert(self, stamp_s: float, transform: Pose, cache_time_s: float) -> None:
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

    def at(self, time_s: float) -> Pose:
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

    def set_transform(self, parent: str, child: str, stamp_s: float, transform: Pose,
                      static: bool = False) -> None:
        """Store ``T_parent_child`` at ``stamp_s`` (seconds).

        Raises:
            ValueError: invalid frame ids or stamp, ``child`` already attached to
                another parent, a switch between static and dynamic, or a cycle.
            TypeError: ``transform`` is not a Pose.
        """
        _check_frame_id(parent)
        _check_frame_id(child)
        if not isinstance(transform, Pose):
            raise TypeError(f"transform must be a samrl_description Pose, got {type(transform).__name__}")
        if parent == child:
            raise ValueError(f"frame '{child}' cannot be its own parent")
        transform = Pose.checked(transform.position, transform.quaternion)   # finite, unit, read-only copy
        if not math.isfinite(stamp_s):
            raise ValueError(f"stamp of '{parent}' -> '{child}' must be finite, got {stamp_s}")
        with self._lock:
            link = self._links.get(child) or self._new_link(parent, child, static)
            if link.parent != parent and link.static == static:
                link = self._reparent(link, parent, stamp_s)
            self._check_consistent(link, parent, static)
            if not static and link.stamps and stamp_s < link.newest - self._cache_time_s:
                raise ValueError(f"sample of '{parent}' -> '{child}' at {stamp_s:.6f} s is older than the buffer "
                                 f"keeps ({self._cache_time_s:g} s before {link.newest:.6f} s)")
            link.insert(stamp_s, transform, self._cache_time_s)

    def _new_link(self, parent: str, child: str, static: bool) -> _Link:
        """Create the edge parent -> child after checking it closes no cycle."""
        if child in self._path_to_root(parent):
            raise ValueError(f"link '{parent}' -> '{child}' would create a cycle")
        link = _Link(parent, child, static)
        self._links[child] = link
        return link

    def _reparent(self, link: _Link, parent: str, stamp_s: float) -> _Link:
        """tf2 lets a frame change parent over time; here a newer sample under another parent replaces
        the frame's history (an older one is refused), so one wrong first message cannot lock it out."""
        if not link.static and stamp_s <= link.newest:
            raise ValueError(f"frame '{link.child}' has parent '{link.parent}' up to {link.newest:.6f} s; a sample "
                             f"under '{parent}' at {stamp_s:.6f} s is not newer")
        del self._links[link.child]
        try:
            return self._new_link(parent, link.child, link.static)
        except ValueError:
            self._links[link.child] = link       # the new parent would close a cycle: keep the old one
            raise

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
               time_s: float | None = None) -> Pose:
        """``T_target_source`` at ``time_s`` (None or 0.0: latest common time).

        Raises:
            FrameNotFoundError, ConnectivityError, ExtrapolationError.
        """
        with self._lock:
            for frame in (target_frame, source_frame):
                self._require_frame(frame)
            if target_frame == source_frame:
                return Pose.identity()
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
    def _compose(links: list[_Link], time_s: float) -> Pose:
        """``T_ancestor_frame`` from the links ``[frame -> parent, ..., -> ancestor]``."""
        result = Pose.identity()
        for link in reversed(links):
            result = result * link.at(time_s)
        return result
