"""The capture node's ROS-free core: decoding and checks with their reasons, pairing by stamp, waiting pairs."""

import numpy as np
import pytest

from samrl_common import msgs
from samrl_common.conversions import camera_info_msg
from samrl_common.images import array_to_image
from samrl_common.runtime import stamp_to_s
from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose
from samrl_perception.rgbd import (
    FrameError,
    FramePairer,
    NotYetAvailable,
    Reason,
    RetryQueue,
    StampedImage,
    check_pair,
    decode_color,
    decode_depth,
    intrinsics_from_camera_info,
    make_frame,
    stamp_to_ns,
)

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000 + 123_456_789  # a stamp in ns
FRAME = 'camera_color_optical_frame'
W, H = 8, 6


def stamp_msg(stamp_ns):
    return msgs.builtin_interfaces.msg.Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


def _image(array, encoding, stamp_ns=T0, frame=FRAME):
    return array_to_image(array, encoding, stamp_msg(stamp_ns), frame)


def _rgb(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _stamped(array, stamp_ns=T0, frame=FRAME):
    return StampedImage(stamp_ns, frame, array)


# -- decoding -------------------------------------------------------------------------------------
def test_colour_rgb8_and_bgr8_decode_to_rgb():
    rgb = _rgb()
    assert np.array_equal(decode_color(_image(rgb, 'rgb8')).array, rgb)
    decoded = decode_color(_image(rgb[..., ::-1], 'bgr8'))
    assert np.array_equal(decoded.array, rgb) and decoded.array.flags.c_contiguous
    assert (decoded.stamp_ns, decoded.frame_id) == (T0, FRAME)


def test_depth_16uc1_millimetres_become_metres():
    mm = np.full((H, W), 1234, np.uint16)
    mm[0, 0] = 0
    depth = decode_depth(_image(mm, '16UC1')).array
    assert depth.dtype == np.float32 and depth.shape == (H, W)
    assert depth[0, 0] == 0.0 and np.allclose(depth[1:], 1.234)


def test_depth_32fc1_metres_with_invalid_values_read_as_no_return():
    m = np.full((H, W), 0.75, np.float32)
    m[0, :4] = [np.nan, np.inf, -np.inf, -0.5]
    depth = decode_depth(_image(m, '32FC1')).array
    assert depth.dtype == np.float32 and np.all(np.isfinite(depth))
    assert depth[0, :4].tolist() == [0.0] * 4 and np.allclose(depth[1:], 0.75)


def test_big_endian_depth_is_read():
    image = _image(np.full((H, W), 500, np.uint16), '16UC1')
    image.is_bigendian, image.data = True, np.full((H, W), 500, '>u2').tobytes()
    assert np.allclose(decode_depth(image).array, 0.5)


def _short(image):
    image.data = image.data[:-1]


def _yuv422(image):
    image.encoding = 'yuv422'


def _no_stamp(image):
    image.header.stamp = stamp_msg(0)


@pytest.mark.parametrize('decode, array, encoding, mutate, reason, text', [
    (decode_color, _rgb(), 'rgb8', _yuv422, Reason.ENCODING, "colour encoding 'yuv422' is not one of rgb8, bgr8"),
    (decode_color, np.zeros((H, W), np.uint16), '16UC1', None, Reason.ENCODING, "colour encoding '16UC1'"),
    (decode_color, _rgb(), 'rgb8', _short, Reason.DATA, 'colour image: rgb8 8x6: step 24 and 143 bytes do not fit'),
    (decode_color, _rgb(), 'rgb8', _no_stamp, Reason.STAMP, 'colour image has no time stamp'),
    (decode_depth, np.ones((H, W), np.uint8), 'mono8', None, Reason.ENCODING,
     "depth encoding 'mono8' is not one of 16UC1, 32FC1"),
    (decode_depth, np.ones((H, W), np.uint16), '16UC1', _short, Reason.DATA, 'depth image: 16UC1 8x6'),
    (decode_depth, np.zeros((H, W), np.uint16), '16UC1', None, Reason.NO_DEPTH, 'has no valid pixel'),
    (decode_depth, np.full((H, W), np.nan, np.float32), '32FC1', None, Reason.NO_DEPTH, 'has no valid pixel'),
    (decode_depth, np.ones((H, W), np.float32), '32FC1', _no_stamp, Reason.STAMP, 'depth image has no time stamp'),
])
def test_unusable_images_are_refused_with_their_reason(decode, array, encoding, mutate, reason, text):
    image = _image(array, encoding)
    if mutate:
        mutate(image)
    with pytest.raises(FrameError, match=text) as error:
        decode(image)
    assert error.value.reason == reason


def test_camera_info_gives_intrinsics_and_refuses_nonsense():
    k = CameraIntrinsics(50.0, 51.0, 4.0, 3.0, W, H)
    assert intrinsics_from_camera_info(camera_info_msg(k, stamp_msg(T0), FRAME)) == k
    for bad in (CameraIntrinsics(0.0, 51.0, 4.0, 3.0, W, H), CameraIntrinsics(50.0, float('nan'), 4.0, 3.0, W, H),
                CameraIntrinsics(50.0, 51.0, 4.0, 3.0, 0, H)):
        with pytest.raises(FrameError) as error:
            intrinsics_from_camera_info(camera_info_msg(bad, stamp_msg(T0), FRAME))
        assert error.value.reason == Reason.CAMERA_INFO


def test_stamps_are_exact_in_nanoseconds():
    assert stamp_to_ns(stamp_msg(T0)) == T0
    assert stamp_to_s(stamp_msg(T0)) == pytest.approx(T0 / 1e9)


# -- pair checks and frames -----------------------------------------------------------------------
def test_pair_checks_size_and_frame():
    depth = _stamped(np.ones((H, W), np.float32))
    check_pair(_stamped(_rgb()), depth, FRAME)
    with pytest.raises(FrameError, match='colour is 8x6 but depth is 4x3') as error:
        check_pair(_stamped(_rgb()), _stamped(np.ones((3, 4), np.float32)), FRAME)
    assert error.value.reason == Reason.SIZE
    with pytest.raises(FrameError, match="depth image is in frame 'camera_depth_optical_frame'") as error:
        check_pair(_stamped(_rgb()), _stamped(depth.array, frame='camera_depth_optical_frame'), FRAME)
    assert error.value.reason == Reason.FRAME_ID


def test_frame_needs_intrinsics_of_the_image_size():
    color, depth, pose = _stamped(_rgb()), _stamped(np.ones((H, W), np.float32)), Pose.identity()
    frame = make_frame(color, depth, CameraIntrinsics(5.0, 5.0, 4.0, 3.0, W, H), 'world', pose)
    assert (frame.stamp_ns, frame.frame_id, frame.world_frame) == (T0, FRAME, 'world')
    with pytest.raises(FrameError, match='camera_info is 16x12 but the images are 8x6') as error:
        make_frame(color, depth, CameraIntrinsics(5.0, 5.0, 8.0, 6.0, 16, 12), 'world', pose)
    assert error.value.reason == Reason.CAMERA_INFO


# -- pairing --------------------------------------------------------------------------------------
def test_pairs_within_tolerance_in_either_order():
    pairer = FramePairer(5 * MS, 3)
    assert pairer.add_color(T0, 'c0').pair is None
    assert pairer.add_depth(T0 + 4 * MS, 'd0').pair == ('c0', 'd0')
    assert pairer.add_depth(T0 + 100 * MS, 'd1').pair is None  # depth first
    assert pairer.add_color(T0 + 97 * MS, 'c1').pair == ('c1', 'd1')
    assert pairer.waiting('colour') == pairer.waiting('depth') == 0


def test_no_pair_outside_tolerance():
    pairer = FramePairer(5 * MS, 3)
    pairer.add_color(T0, 'c0')
    assert pairer.add_depth(T0 + 6 * MS, 'd0').pair is None
    assert pairer.waiting('colour') == pairer.waiting('depth') == 1


def test_closest_partner_wins():
    pairer = FramePairer(5 * MS, 3)
    pairer.add_color(T0, 'c0')
    pairer.add_color(T0 + 4 * MS, 'c1')
    result = pairer.add_depth(T0 + 3 * MS, 'd')
    assert result.pair == ('c1', 'd')
    assert [(u.item, u.why) for u in result.dropped] == [('c0', 'no partner within 5 ms before a newer pair')]


def test_interleaved_streams_pair_each_stamp():
    """Colour of two frames arrives before their depth: both pair, in stamp order."""
    pairer = FramePairer(5 * MS, 3)
    assert pairer.add_color(T0, 'c0').pair is None
    assert pairer.add_color(T0 + 200 * MS, 'c1').pair is None
    first = pairer.add_depth(T0 + 1 * MS, 'd0')
    assert first.pair == ('c0', 'd0') and not first.dropped
    assert pairer.add_depth(T0 + 200 * MS, 'd1').pair == ('c1', 'd1')


def test_unmatched_older_items_are_dropped_when_a_newer_pair_is_made():
    pairer = FramePairer(5 * MS, 3)
    pairer.add_color(T0, 'lonely colour')  # its depth was lost
    pairer.add_depth(T0 + 150 * MS, 'd1')  # arrives before its colour
    result = pairer.add_color(T0 + 150 * MS, 'c1')
    assert result.pair == ('c1', 'd1')
    assert [(u.stream, u.item) for u in result.dropped] == [('colour', 'lonely colour')]
    late = pairer.add_depth(T0, 'late depth')  # its partner is gone; would break stamp order anyway
    assert late.pair is None and [u.item for u in late.dropped] == ['late depth']
    assert 'after a newer pair' in late.dropped[0].why and pairer.waiting('depth') == 0


def test_queues_are_bounded():
    pairer = FramePairer(5 * MS, 2)
    dropped = [u.item for i in range(5) for u in pairer.add_color(T0 + i * 100 * MS, f'c{i}').dropped]
    assert dropped == ['c0', 'c1', 'c2'] and pairer.waiting('colour') == 2
    assert pairer.add_depth(T0 + 400 * MS, 'd4').pair == ('c4', 'd4')


def test_pairer_parameters_are_checked():
    with pytest.raises(ValueError):
        FramePairer(-1, 3)
    with pytest.raises(ValueError):
        FramePairer(0, 0)


# -- waiting for pose and camera_info -------------------------------------------------------------
def test_retry_queue_keeps_items_until_available_or_expired():
    queue = RetryQueue(wait_s=0.5, capacity=2)
    available, done = set(), []

    def attempt(item):
        if item == 'bad':
            raise FrameError(Reason.SIZE, 'never')
        if item not in available:
            raise NotYetAvailable(Reason.TRANSFORM, f'no pose for {item}')
        done.append(item)

    assert queue.add('a', now_s=0.0) is None and queue.add('b', now_s=0.1) is None
    assert queue.process(attempt, now_s=0.2) == [] and len(queue) == 2
    available.add('b')
    assert queue.process(attempt, now_s=0.3) == [] and done == ['b'] and len(queue) == 1
    failed = queue.process(attempt, now_s=0.5)
    assert [(item, error.reason) for item, error in failed] == [('a', Reason.TRANSFORM)] and len(queue) == 0
    queue.add('bad', now_s=1.0)
    assert [item for item, _ in queue.process(attempt, now_s=1.0)] == ['bad']


def test_retry_queue_is_bounded():
    queue = RetryQueue(wait_s=1.0, capacity=2)
    assert [queue.add(item, 0.0) for item in 'abc'] == [None, None, 'a'] and len(queue) == 2


def test_a_frame_carries_its_own_stamp_on_a_newer_camera_info():
    # The latest camera_info can be newer than a frame that waited for its camera pose.
    from samrl_perception.capture_node import frame_msg
    intrinsics = CameraIntrinsics.d435(W, H)
    info = camera_info_msg(intrinsics, stamp_msg(T0 + 200 * MS), FRAME)
    color = StampedImage(T0, FRAME, np.zeros((H, W, 3), np.uint8))
    depth = StampedImage(T0, FRAME, np.ones((H, W), np.float32))
    message = frame_msg(make_frame(color, depth, intrinsics, 'world', Pose.identity()), info)
    for part in (message.rgb, message.depth, message.camera_info):
        assert part.header.stamp == message.header.stamp == stamp_msg(T0)
    assert info.header.stamp == stamp_msg(T0 + 200 * MS)  # the node's latest info is left as it came
