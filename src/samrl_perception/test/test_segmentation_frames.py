"""segmentation_node's ROS-free core: frame refusals, the oracle label store and its wait, overlay, ObjectMasks."""

from __future__ import annotations

import numpy as np
import pytest

from samrl_common import msgs
from samrl_common.conversions import camera_info_msg
from samrl_common.images import array_to_image, image_to_array
from samrl_description.camera import CameraIntrinsics
from samrl_description.objects import OBJECT_CLASSES
from samrl_perception.rgbd import FrameError, Reason
from samrl_perception.segmentation.frames import (
    CLASS_COLOURS,
    MASK_ON,
    OVERLAY_ALPHA,
    DecodedFrame,
    OracleLabels,
    decode_frame,
    masks_msg,
    oracle_segmentation,
    overlay,
)
from samrl_perception.segmentation.segmenter import Instance, Segmentation

NS_PER_S = 1_000_000_000
T0 = 1_700_000_000 * NS_PER_S + 123_456_789      # a stamp in ns
FRAME = 'camera_color_optical_frame'
W, H = 8, 6
DEPTH_M = 0.4


def stamp_msg(stamp_ns: int):
    return msgs.builtin_interfaces.msg.Time(sec=stamp_ns // NS_PER_S, nanosec=stamp_ns % NS_PER_S)


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _frame_msg(stamp_ns: int = T0, rgb=None, depth=None, info_size=(W, H)):
    """samrl_interfaces/RGBDFrame as capture_node publishes it."""
    stamp = stamp_msg(stamp_ns)
    rgb = _rgb() if rgb is None else rgb
    depth = np.full((H, W), DEPTH_M, np.float32) if depth is None else depth
    message = msgs.samrl_interfaces.msg.RGBDFrame(
        rgb=array_to_image(rgb, 'rgb8', stamp, FRAME), depth=array_to_image(depth, '32FC1', stamp, FRAME),
        camera_info=camera_info_msg(CameraIntrinsics.d435(*info_size), stamp, FRAME), world_frame='world')
    message.header.stamp, message.header.frame_id = stamp, FRAME
    return message


def _labels(stamp_ns: int = T0, labels=None, encoding: str = 'mono8'):
    labels = np.zeros((H, W), np.uint8) if labels is None else labels
    return array_to_image(labels, encoding, stamp_msg(stamp_ns), FRAME)


def _decoded(stamp_ns: int = T0, size=(W, H)) -> DecodedFrame:
    width, height = size
    return DecodedFrame(stamp_ns, np.zeros((height, width, 3), np.uint8), np.full((height, width), DEPTH_M, np.float32),
                        CameraIntrinsics.d435(width, height))


def _reason(call) -> Reason:
    with pytest.raises(FrameError) as info:
        call()
    return info.value.reason


# -- decode_frame ---------------------------------------------------------------------------------
def test_a_good_frame_decodes_to_its_stamp_images_and_intrinsics():
    rgb = _rgb(3)
    frame = decode_frame(_frame_msg(rgb=rgb))
    assert frame.stamp_ns == T0
    assert np.array_equal(frame.rgb, rgb)
    assert frame.depth_m.dtype == np.float32 and np.allclose(frame.depth_m, DEPTH_M)
    assert (frame.intrinsics.width, frame.intrinsics.height) == (W, H)


def test_colour_and_depth_of_different_sizes_are_refused():
    assert _reason(lambda: decode_frame(_frame_msg(depth=np.full((H // 2, W // 2), DEPTH_M, np.float32)))) \
        == Reason.SIZE


def test_camera_info_of_another_size_is_refused():
    assert _reason(lambda: decode_frame(_frame_msg(info_size=(W * 2, H * 2)))) == Reason.CAMERA_INFO


@pytest.mark.parametrize('image, encoding, reason', [
    ('rgb', 'yuv422', Reason.ENCODING), ('rgb', 'mono8', Reason.ENCODING), ('depth', 'rgb8', Reason.ENCODING),
    ('depth', 'mono8', Reason.ENCODING)])
def test_frames_with_unreadable_encodings_are_refused(image, encoding, reason):
    message = _frame_msg()
    getattr(message, image).encoding = encoding
    assert _reason(lambda: decode_frame(message)) == reason


def test_truncated_data_missing_depth_stamp_and_frame_are_refused():
    truncated, no_depth, no_stamp, misaligned = _frame_msg(), _frame_msg(depth=np.zeros((H, W), np.float32)), \
        _frame_msg(stamp_ns=0), _frame_msg()
    truncated.rgb.data = truncated.rgb.data[:10]
    misaligned.depth.header.frame_id = 'somewhere_else'
    assert _reason(lambda: decode_frame(truncated)) == Reason.DATA
    assert _reason(lambda: decode_frame(no_depth)) == Reason.NO_DEPTH
    assert _reason(lambda: decode_frame(no_stamp)) == Reason.STAMP
    assert _reason(lambda: decode_frame(misaligned)) == Reason.FRAME_ID


# -- oracle labels --------------------------------------------------------------------------------
def test_oracle_labels_of_the_frame_stamp_become_its_segmentation():
    labels = np.zeros((H, W), np.uint8)
    labels[1:3, 2:5] = OBJECT_CLASSES.index('thread') + 1
    labels[4, 0] = OBJECT_CLASSES.index('needle') + 1
    store = OracleLabels()
    store.add(_labels(T0, labels))
    store.add(_labels(T0 + 1))
    assert store.segmentation(_decoded(T0 - 1)) is None        # not its stamp, not even nearly
    segmentation = store.segmentation(_decoded(T0))
    assert np.array_equal(segmentation.labels, labels)
    assert sorted(i.label for i in segmentation.instances) == ['needle', 'thread']
    assert all(i.score == 1.0 for i in segmentation.instances)
    assert np.array_equal(segmentation.mask('thread'), labels == OBJECT_CLASSES.index('thread') + 1)


def test_oracle_segmentation_reports_only_the_classes_present():
    assert oracle_segmentation(np.zeros((H, W), np.uint8)).instances == []


def test_oracle_store_forgets_the_oldest_label_image_beyond_its_size():
    store = OracleLabels(kept=3)
    for i in range(5):
        store.add(_labels(T0 + i))
    assert len(store) == 3
    assert store.get(T0) is None and store.get(T0 + 1) is None
    assert all(store.get(T0 + i) is not None for i in (2, 3, 4))


@pytest.mark.parametrize('array, encoding', [(np.zeros((H, W, 3), np.uint8), 'rgb8'),
                                             (np.zeros((H, W), np.uint16), '16UC1'),
                                             (np.zeros((H, W), np.float32), '32FC1')])
def test_oracle_store_refuses_label_images_that_are_not_mono8(array, encoding):
    store = OracleLabels()
    with pytest.raises(FrameError, match=f'label image must be mono8, got {encoding}') as info:
        store.add(_labels(T0, array, encoding))
    assert info.value.reason == Reason.ENCODING and len(store) == 0


def test_oracle_store_refuses_unreadable_label_images():
    unknown, truncated = _labels(), _labels()
    unknown.encoding = 'yuv422'
    truncated.data = truncated.data[:5]
    store = OracleLabels()
    assert _reason(lambda: store.add(unknown)) == Reason.ENCODING
    assert _reason(lambda: store.add(truncated)) == Reason.ENCODING
    assert len(store) == 0


def test_oracle_labels_of_another_size_than_the_frame_are_refused():
    store = OracleLabels()
    store.add(_labels(T0))
    assert _reason(lambda: store.segmentation(_decoded(T0, (W * 2, H * 2)))) == Reason.SIZE


def test_a_frame_waits_for_its_labels_then_is_dropped_as_unmatched():
    wait_s, arrived_s = 1.0, 100.0
    store = OracleLabels(wait_s=wait_s)
    assert store.overdue(arrived_s, arrived_s) is None
    assert store.overdue(arrived_s, arrived_s + wait_s) is None              # exactly its wait: still waits
    error = store.overdue(arrived_s, arrived_s + wait_s + 0.001)
    assert error.reason == Reason.UNMATCHED and 'no ground-truth label image' in str(error)


@pytest.mark.parametrize('kept, wait_s', [(0, 1.0), (4, 0.0)])
def test_oracle_store_needs_room_and_a_wait(kept, wait_s):
    with pytest.raises(ValueError):
        OracleLabels(kept, wait_s)


# -- overlay and message --------------------------------------------------------------------------
def test_overlay_tints_each_class_in_its_colour_and_leaves_the_background():
    rgb = np.full((1, len(OBJECT_CLASSES) + 1, 3), 100, np.uint8)
    labels = np.arange(len(OBJECT_CLASSES) + 1, dtype=np.uint8)[None]      # background, then each class
    out = overlay(rgb, labels)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert np.array_equal(out[0, 0], rgb[0, 0])
    expected = np.round((1 - OVERLAY_ALPHA) * 100 + OVERLAY_ALPHA * CLASS_COLOURS).astype(np.uint8)
    assert np.array_equal(out[0, 1:], expected)
    assert len({tuple(c) for c in CLASS_COLOURS}) == len(OBJECT_CLASSES)    # every class told apart


def test_masks_msg_carries_source_instances_and_the_label_image():
    labels = np.zeros((H, W), np.uint8)
    labels[2:4, 1:6] = OBJECT_CLASSES.index('thread') + 1
    thread = Instance('thread', 0.75, labels > 0)
    header = msgs.std_msgs.msg.Header(stamp=stamp_msg(T0), frame_id=FRAME)
    message = masks_msg(Segmentation([thread], labels), 'mask_rcnn', header)
    assert (message.source, message.labels, message.scores) == ('mask_rcnn', ['thread'], [0.75])
    assert message.header.stamp == header.stamp and message.header.frame_id == FRAME
    (mask,) = message.masks
    assert mask.encoding == 'mono8' and mask.header.frame_id == FRAME and mask.header.stamp == header.stamp
    assert np.array_equal(image_to_array(mask), np.where(labels > 0, MASK_ON, 0))
    assert message.label_image.encoding == 'mono8'
    assert np.array_equal(image_to_array(message.label_image), labels)


def test_masks_msg_of_nothing_found_still_has_the_label_image():
    header = msgs.std_msgs.msg.Header(stamp=stamp_msg(T0), frame_id=FRAME)
    message = masks_msg(Segmentation([], np.zeros((H, W), np.uint8)), 'oracle', header)
    assert (message.source, message.labels, message.scores, message.masks) == ('oracle', [], [], [])
    assert (message.label_image.width, message.label_image.height) == (W, H)
