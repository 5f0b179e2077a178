"""ROS-free core of the capture node: checks and converts camera messages into one RGB-D frame.

A frame is built in three steps, each of which can refuse its input with a FrameError whose
`reason` names why (for counting) and whose text says what was wrong:

1. each colour and depth image is checked and decoded as it arrives (`decode_color`,
   `decode_depth`): colour rgb8/bgr8 -> RGB uint8; depth 16UC1 (mm) or 32FC1 (m) -> float32
   metres with 0 where there is no return (NaN, inf and negative values included);
2. `FramePairer` pairs colour and depth by header stamp within a tolerance; `check_pair` makes
   sure both lie on the same pixel grid of the expected optical frame;
3. `make_frame` adds the intrinsics (from camera_info) and the camera pose (from tf). Either may
   arrive just after the images; `RetryQueue` holds a pair for a bounded time until they do.

Message arguments are duck-typed (only their fields are read), so tests need no middleware.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

import numpy as np

from samrl_common.conversions import intrinsics_from_msg
from samrl_common.images import ImageError, depth_array_m, rgb_array
from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose

COLOR_ENCODINGS = ('rgb8', 'bgr8')
DEPTH_ENCODINGS = ('16UC1', '32FC1')  # millimetres, metres (REP-118)
NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000

T = TypeVar('T')


class Reason(StrEnum):
    """Why an input was dropped."""

    STAMP = 'stamp'              # no time stamp: the pose at "time 0" would be tf's latest, not the image's
    ENCODING = 'encoding'        # an encoding this node does not read
    DATA = 'data'                # width, height, step and data length do not fit together
    FRAME_ID = 'frame_id'        # not in the expected optical frame (e.g. depth not aligned to colour)
    SIZE = 'size'                # colour and depth of different sizes
    NO_DEPTH = 'no_depth'        # not one valid depth pixel
    UNMATCHED = 'unmatched'      # no partner image within the tolerance
    NO_CAMERA_INFO = 'no_camera_info'  # none received (yet)
    CAMERA_INFO = 'camera_info'  # invalid or of another size than the images
    TRANSFORM = 'transform'      # no camera pose at the image's stamp
    CLOCK = 'clock'              # stamped too far ahead of or behind the node's clock


class FrameError(ValueError):
    """An input that cannot become a frame; `reason` says which check it failed."""

    def __init__(self, reason: Reason, message: str):
        super().__init__(message)
        self.reason = reason


class DropLog:
    """Counts dropped inputs per reason and logs each kind at most once a period: never silent, never a flood."""

    def __init__(self, logger, period_s: float):
        self.logger, self.period_s = logger, period_s
        self.counts: Counter[str] = Counter()

    def drop(self, what: str, error: FrameError) -> None:
        self.counts[error.reason] += 1
        self.logger.warn_throttled(f'{what}:{error.reason}', f'dropped {what} ({error.reason}, '
                                   f'{self.counts[error.reason]} so far): {error}', self.period_s)

    def summary(self) -> str:
        return ', '.join(f'{reason} {count}' for reason, count in sorted(self.counts.items())) or 'none'


class NotYetAvailable(FrameError):
    """Data the frame needs (camera_info, the camera pose) has not arrived yet; worth retrying."""


@dataclass(frozen=True, eq=False)
class StampedImage:
    """A decoded image: rgb HxWx3 uint8 or depth HxW float32 metres."""

    stamp_ns: int
    frame_id: str
    array: np.ndarray


@dataclass(frozen=True, eq=False)
class RGBDFrame:
    """One synchronized RGB-D frame.

    rgb: HxWx3 uint8; depth_m: HxW float32 metres along the optical axis, 0 = no return;
    camera_pose: the optical frame `frame_id` in `world_frame` at `stamp_ns` (T_world_optical).
    """

    stamp_ns: int
    frame_id: str
    rgb: np.ndarray
    depth_m: np.ndarray
    intrinsics: CameraIntrinsics
    world_frame: str
    camera_pose: Pose


# -- stamps ---------------------------------------------------------------------------------------
def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds (exact, unlike float seconds)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def check_stamp(stamp_ns: int, now_ns: int, max_future_ns: int, max_age_ns: int, what: str) -> None:
    """FrameError unless the stamp lies within [now - max_age, now + max_future]: one message from the
    far future would otherwise make every later one look old to the pairer and tf."""
    if stamp_ns > now_ns + max_future_ns:
        raise FrameError(Reason.CLOCK, f'{what} is stamped {(stamp_ns - now_ns) / NS_PER_S:.3f} s ahead of this '
                                       f'node\'s clock (more than {max_future_ns / NS_PER_S:g} s)')
    if stamp_ns < now_ns - max_age_ns:
        raise FrameError(Reason.CLOCK, f'{what} is stamped {(now_ns - stamp_ns) / NS_PER_S:.3f} s behind this '
                                       f'node\'s clock (more than {max_age_ns / NS_PER_S:g} s)')


def _header_stamp_ns(image, what: str) -> int:
    ns = stamp_to_ns(image.header.stamp)
    if ns <= 0:
        raise FrameError(Reason.STAMP, f'{what} has no time stamp (header.stamp is {ns} ns)')
    return ns


# -- step 1: decode -------------------------------------------------------------------------------
def decode_color(image) -> StampedImage:
    """sensor_msgs/Image rgb8 or bgr8 -> RGB uint8."""
    stamp_ns = _header_stamp_ns(image, 'colour image')
    if image.encoding not in COLOR_ENCODINGS:
        raise FrameError(Reason.ENCODING, f'colour encoding {image.encoding!r} is not one of '
                                          f'{", ".join(COLOR_ENCODINGS)}')
    try:
        rgb = np.ascontiguousarray(rgb_array(image))
    except ImageError as exc:
        raise FrameError(Reason.DATA, f'colour image: {exc}') from None
    return StampedImage(stamp_ns, image.header.frame_id, rgb)


def decode_depth(image) -> StampedImage:
    """sensor_msgs/Image 16UC1 (mm) or 32FC1 (m) -> float32 metres, 0 where invalid; refuses all-invalid."""
    stamp_ns = _header_stamp_ns(image, 'depth image')
    if image.encoding not in DEPTH_ENCODINGS:
        raise FrameError(Reason.ENCODING, f'depth encoding {image.encoding!r} is not one of '
                                          f'{", ".join(DEPTH_ENCODINGS)}')
    try:
        raw = depth_array_m(image)
    except ImageError as exc:
        raise FrameError(Reason.DATA, f'depth image: {exc}') from None
    with np.errstate(invalid='ignore'):
        depth = np.where(np.isfinite(raw) & (raw > 0), raw, 0).astype(np.float32)
    if not depth.any():
        raise FrameError(Reason.NO_DEPTH, f'depth image {image.width}x{image.height} has no valid pixel '
                                          '(all zero, NaN, infinite or negative)')
    return StampedImage(stamp_ns, image.header.frame_id, depth)


def intrinsics_from_camera_info(info) -> CameraIntrinsics:
    """Pinhole intrinsics from sensor_msgs/CameraInfo.k; distortion is ignored (the colour stream is rectified)."""
    try:
        return intrinsics_from_msg(info)
    except ValueError as exc:
        raise FrameError(Reason.CAMERA_INFO, f'camera_info: {exc}') from exc


# -- step 2: pair ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unmatched(Generic[T]):
    """An item the pairer gave up on, and why."""

    stream: str
    stamp_ns: int
    item: T
    why: str


@dataclass
class PairResult(Generic[T]):
    pair: tuple[T, T] | None  # (colour, depth)
    dropped: list[Unmatched[T]]


class FramePairer(Generic[T]):
    """Pairs colour and depth items whose stamps differ by at most `tolerance_ns`.

    Either stream may arrive first. A new item pairs with the closest-stamped waiting item of the
    other stream; up to `queue_size` unmatched items wait per stream (the oldest gives way).
    Pairs come out in stamp order: once a pair is made, the unmatched items it is not older than
    can never pair in order any more and are dropped, as are items arriving that late.
    """

    STREAMS = ('colour', 'depth')

    def __init__(self, tolerance_ns: int, queue_size: int):
        if tolerance_ns < 0 or queue_size < 1:
            raise ValueError(f'need tolerance_ns >= 0 and queue_size >= 1, got {tolerance_ns}, {queue_size}')
        self.tolerance_ns, self.queue_size = tolerance_ns, queue_size
        self._waiting: dict[str, deque[tuple[int, T]]] = {s: deque() for s in self.STREAMS}
        self._last_pair_ns = -1

    def add_color(self, stamp_ns: int, item: T) -> PairResult[T]:
        return self._add('colour', stamp_ns, item)

    def add_depth(self, stamp_ns: int, item: T) -> PairResult[T]:
        return self._add('depth', stamp_ns, item)

    def waiting(self, stream: str) -> int:
        return len(self._waiting[stream])

    def _add(self, stream: str, stamp_ns: int, item: T) -> PairResult[T]:
        other = self.STREAMS[1 - self.STREAMS.index(stream)]
        if stamp_ns <= self._last_pair_ns:
            return PairResult(None, [Unmatched(stream, stamp_ns, item, 'arrived after a newer pair was made')])
        partner = self._closest(other, stamp_ns)
        if partner is None:
            return PairResult(None, self._enqueue(stream, stamp_ns, item))
        self._waiting[other].remove(partner)
        self._last_pair_ns = max(stamp_ns, partner[0])
        pair = (item, partner[1]) if stream == 'colour' else (partner[1], item)
        return PairResult(pair, self._drop_superseded())

    def _closest(self, stream: str, stamp_ns: int) -> tuple[int, T] | None:
        near = [entry for entry in self._waiting[stream] if abs(entry[0] - stamp_ns) <= self.tolerance_ns]
        return min(near, key=lambda entry: abs(entry[0] - stamp_ns), default=None)

    def _enqueue(self, stream: str, stamp_ns: int, item: T) -> list[Unmatched[T]]:
        queue, dropped = self._waiting[stream], []
        if len(queue) >= self.queue_size:
            old_ns, old = queue.popleft()
            dropped.append(Unmatched(stream, old_ns, old, f'no partner among {self.queue_size} newer '
                                                          f'{self.STREAMS[1 - self.STREAMS.index(stream)]} images'))
        queue.append((stamp_ns, item))
        return dropped

    def _drop_superseded(self) -> list[Unmatched[T]]:
        dropped = []
        tolerance_ms = self.tolerance_ns / NS_PER_MS
        for stream, queue in self._waiting.items():
            while queue and queue[0][0] <= self._last_pair_ns:
                stamp_ns, item = queue.popleft()
                dropped.append(Unmatched(stream, stamp_ns, item,
                                         f'no partner within {tolerance_ms:g} ms before a newer pair'))
        return dropped


def check_pair(color: StampedImage, depth: StampedImage, optical_frame: str) -> None:
    """Colour and depth must be on one pixel grid: same size, both in the expected optical frame."""
    for what, image in (('colour', color), ('depth', depth)):
        if image.frame_id != optical_frame:
            raise FrameError(Reason.FRAME_ID, f'{what} image is in frame {image.frame_id!r}, expected '
                                              f'{optical_frame!r} (depth must be aligned to colour)')
    if color.array.shape[:2] != depth.array.shape:
        raise FrameError(Reason.SIZE, f'colour is {_size(color.array)} but depth is {_size(depth.array)}')


def _size(array: np.ndarray) -> str:
    return f'{array.shape[1]}x{array.shape[0]}'


# -- step 3: intrinsics and pose ------------------------------------------------------------------
def make_frame(color: StampedImage, depth: StampedImage, intrinsics: CameraIntrinsics, world_frame: str,
               camera_pose: Pose) -> RGBDFrame:
    """The frame of a checked pair, once its intrinsics and camera pose are known."""
    check_pair(color, depth, color.frame_id)
    if (intrinsics.width, intrinsics.height) != (color.array.shape[1], color.array.shape[0]):
        raise FrameError(Reason.CAMERA_INFO, f'camera_info is {intrinsics.width}x{intrinsics.height} but the '
                                             f'images are {_size(color.array)}')
    return RGBDFrame(color.stamp_ns, color.frame_id, color.array, depth.array, intrinsics, world_frame,
                     camera_pose)


class RetryQueue(Generic[T]):
    """Items waiting, each for at most `wait_s`, for data that arrives after them; at most `capacity`."""

    def __init__(self, wait_s: float, capacity: int):
        if wait_s <= 0 or capacity < 1:
            raise ValueError(f'need wait_s > 0 and capacity >= 1, got {wait_s}, {capacity}')
        self.wait_s, self.capacity = wait_s, capacity
        self._items: deque[tuple[float, T]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T, now_s: float) -> T | None:
        """Queue `item`; return the oldest item if it had to give way."""
        pushed_out = self._items.popleft()[1] if len(self._items) >= self.capacity else None
        self._items.append((now_s + self.wait_s, item))
        return pushed_out

    def process(self, attempt: Callable[[T], None], now_s: float) -> list[tuple[T, FrameError]]:
        """Try each item with `attempt`, oldest first; return those that failed for good, with why.

        An item leaves when `attempt` returns or raises a FrameError; on NotYetAvailable it stays
        until its time is up.
        """
        failed, waiting = [], deque()
        for deadline, item in self._items:
            try:
                attempt(item)
            except NotYetAvailable as exc:
                if now_s < deadline:
                    waiting.append((deadline, item))
                else:
                    failed.append((item, exc))
            except FrameError as exc:
                failed.append((item, exc))
        self._items = waiting
        return failed
