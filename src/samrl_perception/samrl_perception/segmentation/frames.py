"""ROS-free core of segmentation_node: frames in, oracle labels, overlay and ObjectMasks out.

Kept apart from the node so that every rule it applies to a frame (what is refused and why,
which label image belongs to which frame, how long a frame may wait for it, what is published)
can be tested without middleware. Message arguments are duck-typed (only their fields are read);
the messages built here are samrl_common.msgs' plain dataclasses.
"""

from __future__ import annotations

from collections import OrderedDict
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from samrl_common import msgs
from samrl_common.images import ImageError, array_to_image, image_to_array
from samrl_description.camera import CameraIntrinsics
from samrl_description.objects import OBJECT_CLASSES
from samrl_perception.rgbd import (
    FrameError,
    Reason,
    check_pair,
    decode_color,
    decode_depth,
    intrinsics_from_camera_info,
    stamp_to_ns,
)
from samrl_perception.segmentation.segmenter import Instance, Segmentation

# Overlay tint of each class (OBJECT_CLASSES order), RGB 0..255, and how strongly it covers the image.
CLASS_COLOURS = np.array([[255, 220, 0], [0, 200, 255], [255, 60, 60], [60, 90, 255], [180, 0, 255],
                          [255, 140, 0]], np.float32)
OVERLAY_ALPHA = 0.6
ORACLE_LABELS_KEPT = 16         # label images kept while their frames travel through capture_node
ORACLE_WAIT_S = 1.0             # a frame waits this long for its label image, then is dropped
LABEL_ENCODING = 'mono8'        # the sim bridge's label images: 0 background, i + 1 for OBJECT_CLASSES[i]
MASK_ON = 255                   # value of a mask pixel on the object (mono8)
# Sides of the frames the network segments, px. Mask R-CNN rescales a frame so that its long side
# is at most 320 px: below 32 px a side carries hardly any image, and a 1 px side rounds to 0 px
# (a 640x1 frame fails inside torchvision). 32 and 4096 keep the short side >= 2 px after that;
# the refiner, overlay and point cloud work at full resolution, so 4096 (4K cameras) also bounds
# their cost.
MIN_FRAME_SIDE_PX = 32
MAX_FRAME_SIDE_PX = 4096


class DropReason(StrEnum):
    """Why segmentation_node dropped a decoded frame (rgbd.Reason covers the decoding)."""

    FRAME_SIZE = 'frame_size'   # a side outside MIN_FRAME_SIDE_PX..MAX_FRAME_SIDE_PX
    FAILED = 'failed'           # segmenting or publishing it raised: dropped, never retried


class DecodedFrame(NamedTuple):
    """An RGBDFrame message checked and decoded: rgb HxWx3 uint8, depth_m HxW float32 metres."""

    stamp_ns: int
    rgb: np.ndarray
    depth_m: np.ndarray
    intrinsics: CameraIntrinsics


def decode_frame(message) -> DecodedFrame:
    """Check and decode an RGBDFrame message; FrameError says what is wrong with it."""
    color, depth = decode_color(message.rgb), decode_depth(message.depth)
    check_pair(color, depth, message.header.frame_id)
    intrinsics = intrinsics_from_camera_info(message.camera_info)
    if (intrinsics.width, intrinsics.height) != (depth.array.shape[1], depth.array.shape[0]):
        raise FrameError(Reason.CAMERA_INFO, f'camera_info is {intrinsics.width}x{intrinsics.height}, the images '
                                             f'{depth.array.shape[1]}x{depth.array.shape[0]}')
    return DecodedFrame(color.stamp_ns, color.array, depth.array, intrinsics)


def check_frame_size(frame: DecodedFrame) -> None:
    """FrameError (frame_size) unless both sides are within what the network is made for."""
    height, width = frame.depth_m.shape
    if not (MIN_FRAME_SIDE_PX <= min(width, height) and max(width, height) <= MAX_FRAME_SIDE_PX):
        raise FrameError(DropReason.FRAME_SIZE, f'frame is {width}x{height} px; segmentation takes '
                                                f'{MIN_FRAME_SIDE_PX}..{MAX_FRAME_SIDE_PX} px per side')


def processing_error(exc: Exception) -> FrameError:
    """An unexpected failure while processing a frame, as a drop reason (the frame is not retried)."""
    return FrameError(DropReason.FAILED, f'processing it failed: {type(exc).__name__}: {exc}')


def oracle_segmentation(labels: np.ndarray) -> Segmentation:
    """The ground-truth label image as a Segmentation (score 1 for every object present)."""
    instances = [Instance(name, 1.0, labels == c) for c, name in enumerate(OBJECT_CLASSES, start=1)
                 if np.any(labels == c)]
    return Segmentation(instances, labels.astype(np.uint8))


class OracleLabels:
    """The newest ground-truth label images by stamp, for source:=oracle.

    The bridge publishes a frame's label image straight away while the frame itself still goes
    through capture_node, so labels are kept for a while and a frame waits a while for its own.
    """

    def __init__(self, kept: int = ORACLE_LABELS_KEPT, wait_s: float = ORACLE_WAIT_S):
        if kept < 1 or wait_s <= 0:
            raise ValueError(f'need kept >= 1 and wait_s > 0, got {kept}, {wait_s}')
        self.kept, self.wait_s = kept, wait_s
        self._by_stamp: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_stamp)

    def add(self, message) -> None:
        """Keep a label image, forgetting the oldest beyond `kept`; FrameError (encoding) if it is no mono8 image."""
        try:
            labels = image_to_array(message)
            if message.encoding != LABEL_ENCODING:
                raise ImageError(f'label image must be {LABEL_ENCODING}, got {message.encoding}')
        except ImageError as exc:
            raise FrameError(Reason.ENCODING, str(exc)) from None
        self._by_stamp[stamp_to_ns(message.header.stamp)] = labels
        while len(self._by_stamp) > self.kept:
            self._by_stamp.popitem(last=False)

    def get(self, stamp_ns: int) -> np.ndarray | None:
        """The label image of exactly this stamp; None if it has not come (or is forgotten)."""
        return self._by_stamp.get(stamp_ns)

    def segmentation(self, frame: DecodedFrame) -> Segmentation | None:
        """The frame's ground truth; None while its label image has not come; FrameError (size) if it does not fit."""
        labels = self.get(frame.stamp_ns)
        if labels is None:
            return None
        if labels.shape != frame.depth_m.shape:
            raise FrameError(Reason.SIZE, f'label image is {labels.shape[1]}x{labels.shape[0]}, the frame '
                                          f'{frame.depth_m.shape[1]}x{frame.depth_m.shape[0]}')
        return oracle_segmentation(labels)

    def overdue(self, arrived_s: float, now_s: float) -> FrameError | None:
        """Why a frame still without labels is dropped once it has waited `wait_s`; None while it may wait.

        Times are seconds of one monotonic clock, passed in so that the rule is testable without sleeping.
        """
        if now_s - arrived_s <= self.wait_s:
            return None
        return FrameError(Reason.UNMATCHED, 'no ground-truth label image with its stamp')


def overlay(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The image with every labelled pixel blended towards its class colour."""
    out = rgb.astype(np.float32)
    on = labels > 0
    out[on] = (1 - OVERLAY_ALPHA) * out[on] + OVERLAY_ALPHA * CLASS_COLOURS[labels[on] - 1]
    return out.round().astype(np.uint8)


def masks_msg(segmentation: Segmentation, source: str, header):
    """samrl_interfaces/ObjectMasks of a segmentation: one mono8 mask per instance and the label image."""
    def to_image(array: np.ndarray):
        return array_to_image(array, 'mono8', header.stamp, header.frame_id)

    message = msgs.samrl_interfaces.msg.ObjectMasks(
        source=source, labels=[i.label for i in segmentation.instances],
        scores=[i.score for i in segmentation.instances],
        masks=[to_image(i.mask.astype(np.uint8) * MASK_ON) for i in segmentation.instances],
        label_image=to_image(segmentation.labels))
    message.header = header
    return message
