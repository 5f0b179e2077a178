"""What model_node's tracking reads from the task graph, put together per frame (ROS-free).

- FrameMatcher pairs each synchronized RGB-D frame with its object masks by exact stamp and keeps
  only the newest pair: tracking works on the newest frame and never builds a backlog.
- StampedHistory holds the last samples of a stream (the world's task state, its privileged
  state) and answers which one was in force at a frame's stamp.
- EpisodeWatch decides from the task state at a frame whether that frame starts an episode.
- robot_state_at reads the Panda's tool centre point and finger opening from tf at a stamp.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from samrl_common.images import image_to_array
from samrl_common.tf import TransformBuffer
from samrl_description.names import TCP_FRAME
from samrl_description.robot import FINGER_MAX_OPENING_M
from samrl_model.real2sim.track import RobotState

Frame = TypeVar('Frame')
Masks = TypeVar('Masks')
Sample = TypeVar('Sample')

NS_PER_S = 1_000_000_000
MAX_WAITING = 8                  # frames (and mask sets) kept while their partner has not come
HISTORY_SIZE = 64                # task and sim states kept: 6 s at the bridge's 10 Hz control rate
LEFT_FINGER_FRAME = 'panda_leftfinger'      # panda.urdf's finger links (tf frames)
RIGHT_FINGER_FRAME = 'panda_rightfinger'


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time as integer nanoseconds (exact: frames and masks match on it)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


@dataclass
class MatchCounts:
    superseded: int = 0     # matched, but a newer pair came before it was tracked
    unmatched: int = 0      # a frame or mask set whose partner never came


class FrameMatcher(Generic[Frame, Masks]):
    """Frames and masks paired by stamp; `take` hands out the newest pair once."""

    def __init__(self, max_waiting: int = MAX_WAITING):
        self.max_waiting = max_waiting
        self._frames: OrderedDict[int, Frame] = OrderedDict()
        self._masks: OrderedDict[int, Masks] = OrderedDict()
        self._ready: tuple[int, Frame, Masks] | None = None
        self.counts = MatchCounts()

    def add_frame(self, stamp: int, frame: Frame) -> None:
        self._add(stamp, frame, self._frames, self._masks, frame_first=True)

    def add_masks(self, stamp: int, masks: Masks) -> None:
        self._add(stamp, masks, self._masks, self._frames, frame_first=False)

    def take(self) -> tuple[int, Frame, Masks] | None:
        """(stamp, frame, masks) of the newest pair not taken yet, or None."""
        ready, self._ready = self._ready, None
        return ready

    def _add(self, stamp: int, item, own: OrderedDict, other: OrderedDict, frame_first: bool) -> None:
        if self._ready is not None and stamp <= self._ready[0]:
            self.counts.unmatched += 1      # older than the pair waiting to be tracked: of no use any more
            return
        if stamp not in other:
            own[stamp] = item
            while len(own) > self.max_waiting:
                own.popitem(last=False)
                self.counts.unmatched += 1
            return
        partner = other.pop(stamp)
        if self._ready is not None:
            self.counts.superseded += 1
        self._ready = (stamp, item, partner) if frame_first else (stamp, partner, item)
        self._drop_older(stamp)

    def _drop_older(self, stamp: int) -> None:
        """Frames and masks older than the newest pair will never be tracked."""
        for waiting in (self._frames, self._masks):
            for old in [s for s in waiting if s < stamp]:
                del waiting[old]
                self.counts.unmatched += 1


class StampedHistory(Generic[Sample]):
    """The last `size` samples of a stream by stamp (ns)."""

    def __init__(self, size: int = HISTORY_SIZE):
        self.size = size
        self._stamps: list[int] = []
        self._samples: list[Sample] = []

    def add(self, stamp: int, sample: Sample) -> None:
        index = bisect.bisect_right(self._stamps, stamp)
        self._stamps.insert(index, stamp)
        self._samples.insert(index, sample)
        if len(self._stamps) > self.size:
            del self._stamps[0], self._samples[0]

    def at(self, stamp: int) -> Sample | None:
        """The newest sample stamped at or before `stamp` (None if there is none)."""
        index = bisect.bisect_right(self._stamps, stamp)
        return self._samples[index - 1] if index else None


@dataclass(frozen=True)
class EpisodeMark:
    """Where the world was at a frame: its episode (counted resets), the episode's seed, its control step."""

    episode: int
    seed: int
    step: int


class EpisodeWatch:
    """Decides whether a frame starts an episode: the first frame tracked, a new episode or seed, or a
    step count that went back (a reset). A frame at step 0 of the episode being tracked is not a new
    start: the camera may send several frames before the first control step."""

    def __init__(self):
        self._tracked: EpisodeMark | None = None
        self._any = False

    def is_start(self, mark: EpisodeMark | None) -> bool:
        if not self._any:
            return True
        if mark is None or self._tracked is None:   # no task state (a robot without one): one long episode
            return False
        new = (mark.episode, mark.seed) != (self._tracked.episode, self._tracked.seed)
        return new or mark.step < self._tracked.step

    def tracked(self, mark: EpisodeMark | None) -> None:
        """Record the frame just tracked (a failed start is not recorded, so the next frame starts again)."""
        self._any, self._tracked = True, mark


def target_mask(labels: list[str], masks: list, target: str, shape: tuple[int, int]) -> np.ndarray:
    """The union of the instances labelled `target` (mono8 images, non-zero inside); all False if none.
    ImageError if an instance's image cannot be read; ValueError if its size is not `shape`."""
    mask = np.zeros(shape, dtype=bool)
    for label, image in zip(labels, masks):
        if label != target:
            continue
        instance = image_to_array(image)
        if instance.shape[:2] != tuple(shape):
            raise ValueError(f'mask of {target} is {instance.shape[1]}x{instance.shape[0]}, the frame '
                             f'{shape[1]}x{shape[0]}')
        mask |= instance.reshape(shape) > 0
    return mask


def robot_state_at(buffer: TransformBuffer, world_frame: str, time_s: float) -> RobotState:
    """The Panda's tool centre point in `world_frame` and its finger opening (the distance between the
    finger links) at `time_s`; samrl_common.tf.TransformError if tf does not have them."""
    tcp = buffer.lookup(world_frame, TCP_FRAME, time_s)
    fingers = buffer.lookup(LEFT_FINGER_FRAME, RIGHT_FINGER_FRAME, time_s)
    opening = min(float(np.linalg.norm(fingers.position)), FINGER_MAX_OPENING_M)   # joint readings overshoot
    return RobotState(tcp, opening)
