"""capture_node as a process: synchronized frames behind the sim bridge, and bad input dropped with reasons."""

from __future__ import annotations

import time

import numpy as np
import pytest

from samrl_common.conversions import camera_info_msg
from samrl_common.images import array_to_image, depth_array_m, image_to_array
from samrl_common.runtime import QOS_SENSOR_DATA, Node, stamp_to_s
from samrl_common.testing import wait_until
from samrl_common.tf import TransformBuffer
from samrl_common.tf_ros import StaticTransformBroadcaster, TransformBroadcaster, TransformListener, to_msg
from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose
from samrl_description.names import COLOR_TOPIC, DEPTH_TOPIC, OPTICAL_FRAME
from samrl_perception.capture_node import POINTS_TOPIC, RGBD_TOPIC, stamp_msg
from samrl_perception.pointcloud import points_from_pointcloud2
from samrl_sim import conversions as conv

pytestmark = pytest.mark.processes
BRIDGE, CAPTURE = 'samrl_sim.bridge_node', 'samrl_perception.capture_node'
START_TIMEOUT_S = 30.0
FRAME_TIMEOUT_S = 5.0
CAMERA_RATE_HZ = 5.0
RATE_TOLERANCE_HZ = 0.75
WIDTH, HEIGHT, STRIDE = 320, 240, 4
FRAMES = 13


def _same_pose(pose, transform: Pose, atol=1e-6) -> bool:
    p, q = pose.position, pose.orientation
    return transform.is_close(Pose.checked([p.x, p.y, p.z], [q.x, q.y, q.z, q.w]), atol)


def test_frames_from_the_bridge_are_synchronized_at_the_camera_rate(graph):
    start, node = graph
    start(BRIDGE, 'task:=needle_threading', f'camera_rate_hz:={CAMERA_RATE_HZ}', f'image_width:={WIDTH}',
          f'image_height:={HEIGHT}')
    capture = start(CAPTURE, f'point_stride:={STRIDE}')
    frames, arrivals, clouds, colors, depths = [], [], [], {}, {}
    tf = TransformListener(node, TransformBuffer())
    node.create_subscription('samrl_interfaces/msg/RGBDFrame', RGBD_TOPIC,
                             lambda m: (arrivals.append(time.monotonic()), frames.append(m)), QOS_SENSOR_DATA)
    node.create_subscription('sensor_msgs/msg/PointCloud2', POINTS_TOPIC, clouds.append, QOS_SENSOR_DATA)
    # The bridge's own images, to check the frames carry exactly them.
    node.create_subscription('sensor_msgs/msg/Image', COLOR_TOPIC,
                             lambda m: colors.__setitem__(stamp_to_s(m.header.stamp), m), QOS_SENSOR_DATA)
    node.create_subscription('sensor_msgs/msg/Image', DEPTH_TOPIC,
                             lambda m: depths.__setitem__(stamp_to_s(m.header.stamp), m), QOS_SENSOR_DATA)
    assert node.spin_until(lambda: len(frames) >= FRAMES and clouds, START_TIMEOUT_S + 10), capture.output()

    # Rate over the later frames (start-up and discovery excluded), by arrival and by stamp.
    rate = (len(frames) - 3) / (arrivals[-1] - arrivals[2])
    stamps = [stamp_to_s(f.header.stamp) for f in frames]
    stamp_rate = (len(stamps) - 3) / (stamps[-1] - stamps[2])
    print(f'RGBDFrame rate: {rate:.2f} Hz by arrival, {stamp_rate:.2f} Hz by stamp')
    assert abs(rate - CAMERA_RATE_HZ) < RATE_TOLERANCE_HZ and abs(stamp_rate - CAMERA_RATE_HZ) < RATE_TOLERANCE_HZ
    assert stamps == sorted(stamps)
    missed = [t for t in colors if stamps[2] <= t <= stamps[-1] and t not in stamps]
    print(f'bridge colour images without a frame after start-up: {len(missed)}')
    assert len(missed) <= 1, capture.output()  # best-effort transport may lose one

    frame = next(f for f in reversed(frames) if stamp_to_s(f.header.stamp) in colors.keys() & depths.keys())
    at = stamp_to_s(frame.header.stamp)
    for image in (frame.rgb, frame.depth, frame.camera_info):
        assert image.header.stamp == frame.header.stamp
    assert (frame.header.frame_id, frame.world_frame) == (OPTICAL_FRAME, 'world')
    assert (frame.rgb.encoding, frame.depth.encoding) == ('rgb8', '32FC1')
    assert (frame.camera_info.width, frame.camera_info.height) == (WIDTH, HEIGHT)
    assert np.array_equal(image_to_array(frame.rgb), image_to_array(colors[at]))
    depth = depth_array_m(frame.depth)
    assert depth.shape == (HEIGHT, WIDTH) and np.all(np.isfinite(depth)) and np.all(depth >= 0)
    assert np.allclose(depth, depth_array_m(depths[at]))  # the bridge's 16UC1 millimetres, in metres
    assert 0.2 < np.median(depth[depth > 0]) < 2.0  # the table is tens of cm away

    # The camera pose is the bridge's, at the image's stamp.
    q = frame.camera_pose.orientation
    assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
    assert node.spin_until(lambda: tf.buffer.can_transform('world', OPTICAL_FRAME, at), FRAME_TIMEOUT_S)
    assert _same_pose(frame.camera_pose, tf.buffer.lookup('world', OPTICAL_FRAME, at))

    cloud = clouds[-1]
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == [
        ('x', 0, 7), ('y', 4, 7), ('z', 8, 7), ('rgb', 12, 7)]
    assert cloud.header.frame_id == OPTICAL_FRAME and cloud.height == 1 and cloud.is_dense
    assert 0 < cloud.width <= (WIDTH // STRIDE) * (HEIGHT // STRIDE)
    points, point_colors = points_from_pointcloud2(cloud)
    assert 0.2 < np.median(points[:, 2]) < 2.0 and point_colors.shape == points.shape
    assert capture.alive()


# -- bad input ------------------------------------------------------------------------------------
W, H = 64, 48
INTRINSICS = CameraIntrinsics.d435(W, H)
TEST_TOPICS = {'color': '/test/color/image_raw', 'depth': '/test/depth/image_raw', 'info': '/test/color/camera_info'}
CAMERA_POSE = Pose.checked([0.1, -0.2, 0.6], [0.0, 1.0, 0.0, 0.0])  # looking down
STAMP_STEP_NS = 50_000_000
YEAR_NS = 365 * 24 * 3600 * 1_000_000_000


class FakeCamera:
    """Publishes driver-like colour, depth and camera_info from the test node; each frame gets a new stamp."""

    def __init__(self, node: Node):
        self.node = node
        types = dict(color='sensor_msgs/msg/Image', depth='sensor_msgs/msg/Image', info='sensor_msgs/msg/CameraInfo')
        self.pubs = {key: node.create_publisher(types[key], topic, QOS_SENSOR_DATA)
                     for key, topic in TEST_TOPICS.items()}
        self.stamp_ns = time.time_ns()
        rng = np.random.default_rng(0)
        self.rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        self.depth_m = rng.uniform(0.3, 1.5, (H, W)).astype(np.float32)

    def next_stamp(self):
        """At least STAMP_STEP_NS after the last, and never behind the clock (as a driver stamps)."""
        self.stamp_ns = max(self.stamp_ns + STAMP_STEP_NS, time.time_ns())
        return stamp_msg(self.stamp_ns)

    def images(self):
        """A good (rgb8, 16UC1) pair at a new stamp."""
        return conv.image_msgs(self.rgb, self.depth_m, self.next_stamp(), OPTICAL_FRAME)

    def info(self, k: CameraIntrinsics = INTRINSICS):
        self.publish(info=camera_info_msg(k, stamp_msg(self.stamp_ns), OPTICAL_FRAME))

    def publish(self, color=None, depth=None, info=None) -> None:
        for key, message in (('color', color), ('depth', depth), ('info', info)):
            if message is not None:
                self.pubs[key].publish(message)
        self.node.spin_until(lambda: False, 0.05)  # keep the order of arrival across topics


def _unknown_colour_encoding(camera):
    color, depth = camera.images()
    color.encoding = 'yuv422'
    camera.publish(color, depth)


def _depth_size_differs(camera):
    color, _ = camera.images()
    _, depth = conv.image_msgs(camera.rgb[::2, ::2], camera.depth_m[::2, ::2], color.header.stamp, OPTICAL_FRAME)
    camera.publish(color, depth)


def _colour_data_short(camera):
    color, depth = camera.images()
    color.data = color.data[:-color.step]
    camera.publish(color, depth)


def _depth_all_zero(camera):
    color, depth = camera.images()
    depth.data = bytes(len(depth.data))
    camera.publish(color, depth)


def _depth_all_nan(camera):
    color, _ = camera.images()
    camera.publish(color, array_to_image(np.full((H, W), np.nan, np.float32), '32FC1', color.header.stamp,
                                         OPTICAL_FRAME))


def _colour_without_depth(camera):
    camera.publish(camera.images()[0])


def _depth_in_another_frame(camera):
    color, depth = camera.images()
    depth.header.frame_id = 'camera_depth_optical_frame'
    camera.publish(color, depth)


def _camera_info_of_another_size(camera):
    camera.info(CameraIntrinsics.d435(2 * W, 2 * H))
    camera.publish(*camera.images())
    camera.info()


def _pair_from_the_future(camera):
    """Stamped a year ahead: dropped against the node's clock, so later frames do not look old."""
    stamp = stamp_msg(time.time_ns() + YEAR_NS)
    camera.publish(*conv.image_msgs(camera.rgb, camera.depth_m, stamp, OPTICAL_FRAME))


BAD_INPUTS = {  # case -> what the capture node's log must say
    _unknown_colour_encoding: "dropped colour image (encoding, 1 so far): colour encoding 'yuv422' is not one of",
    _depth_size_differs: 'dropped frame (size, 1 so far): colour is 64x48 but depth is 32x24',
    _colour_data_short: 'dropped colour image (data, 1 so far): colour image: rgb8 64x48: step 192 and 9024 bytes',
    _depth_all_zero: 'dropped depth image (no_depth, 1 so far): depth image 64x48 has no valid pixel',
    _depth_all_nan: None,  # same reason as the line before, inside its log period: counted below
    _colour_without_depth: 'dropped colour image (unmatched',
    _depth_in_another_frame: "dropped frame (frame_id, 1 so far): depth image is in frame 'camera_depth_optical_frame'",
    _camera_info_of_another_size: 'camera_info is 128x96 but the images are 64x48',
    _pair_from_the_future: 'image is stamped 31535999',     # colour or depth first: arrival order varies
}


def test_bad_input_is_dropped_with_reasons_and_good_frames_still_come(graph):
    start, node = graph
    capture = start(CAPTURE, *(f'{key}_topic:={topic}' for key, topic in
                               (('color', TEST_TOPICS['color']), ('depth', TEST_TOPICS['depth']),
                                ('camera_info', TEST_TOPICS['info']))))
    frames = {}
    node.create_subscription('samrl_interfaces/msg/RGBDFrame', RGBD_TOPIC,
                             lambda m: frames.__setitem__(stamp_to_s(m.header.stamp), m), QOS_SENSOR_DATA)
    StaticTransformBroadcaster(node).send([to_msg('world', OPTICAL_FRAME, CAMERA_POSE, stamp_msg(time.time_ns()))])
    camera = FakeCamera(node)
    assert node.spin_until(lambda: all(p.get_subscription_count() for p in camera.pubs.values()), START_TIMEOUT_S)

    # Images before any camera_info: the pair waits, then goes.
    camera.publish(*camera.images())
    assert node.spin_until(lambda: 'dropped frame (no_camera_info, 1 so far): no valid camera_info received on '
                                   '/test/color/camera_info' in capture.output(),
                           FRAME_TIMEOUT_S), capture.output()
    camera.info()
    # Until the capture node's publisher has found our reader, its first frames may go unseen.
    good = []

    def publish_good(color=None, depth=None):
        if color is None:
            color, depth = camera.images()
        camera.publish(color, depth)
        good.append(stamp_to_s(color.header.stamp))
        return node.spin_until(lambda: good[-1] in frames, FRAME_TIMEOUT_S)

    assert wait_until(lambda: publish_good(), START_TIMEOUT_S, period_s=0), capture.output()
    seen_from = len(good) - 1

    for case in BAD_INPUTS:
        case(camera)
        assert publish_good(), f'no frame after {case.__name__}:\n{capture.output()}'

    # 32FC1 with holes and bgr8 are good input too.
    color, _ = camera.images()
    color = array_to_image(camera.rgb[..., ::-1], 'bgr8', color.header.stamp, OPTICAL_FRAME)
    holes = camera.depth_m.copy()
    holes[0, :3] = [np.nan, np.inf, -1.0]
    assert publish_good(color, array_to_image(holes, '32FC1', color.header.stamp, OPTICAL_FRAME))
    frame = frames[good[-1]]
    assert np.array_equal(image_to_array(frame.rgb), camera.rgb)
    depth = depth_array_m(frame.depth)
    assert depth[0, :3].tolist() == [0.0] * 3 and np.array_equal(depth[1:], camera.depth_m[1:])
    assert _same_pose(frame.camera_pose, CAMERA_POSE)

    assert set(frames) <= set(good) and set(good[seen_from:]) <= set(frames)  # all good input, no bad
    assert capture.alive()
    output = capture.output()
    missing = [text for text in BAD_INPUTS.values() if text and text not in output]
    assert not missing, f'{missing} not in:\n{output}'
    assert capture.stop() == 0
    # Unmatched: the depth of the colour refused for encoding and for data, the colour of both bad
    # depths and the colour without depth.
    summary = ('dropped: camera_info 1, clock 2, data 1, encoding 1, frame_id 1, no_camera_info 1, no_depth 2, '
               'size 1, unmatched 5')
    assert summary in capture.output(), capture.output()


def test_a_wrong_first_parent_and_a_future_sample_on_tf_do_not_stop_the_frames(graph):
    """The camera frame first appears under another parent, and one /tf sample comes from the far
    future: the capture node still publishes every later frame with the right camera pose."""
    start, node = graph
    capture = start(CAPTURE, *(f'{key}_topic:={topic}' for key, topic in
                               (('color', TEST_TOPICS['color']), ('depth', TEST_TOPICS['depth']),
                                ('camera_info', TEST_TOPICS['info']))))
    frames = {}
    node.create_subscription('samrl_interfaces/msg/RGBDFrame', RGBD_TOPIC,
                             lambda m: frames.__setitem__(stamp_to_s(m.header.stamp), m), QOS_SENSOR_DATA)
    tf = TransformBroadcaster(node)
    camera = FakeCamera(node)
    assert node.spin_until(lambda: all(p.get_subscription_count() for p in camera.pubs.values()), START_TIMEOUT_S)
    camera.info()
    tf.send([to_msg('somewhere_else', OPTICAL_FRAME, CAMERA_POSE, stamp_msg(time.time_ns()))])
    tf.send([to_msg('world', OPTICAL_FRAME, CAMERA_POSE, stamp_msg(time.time_ns() + YEAR_NS))])
    good = []

    def publish_good():
        color, depth = camera.images()
        tf.send([to_msg('world', OPTICAL_FRAME, CAMERA_POSE, color.header.stamp)])
        camera.publish(color, depth)
        good.append(stamp_to_s(color.header.stamp))
        return node.spin_until(lambda: good[-1] in frames, FRAME_TIMEOUT_S)

    assert wait_until(publish_good, START_TIMEOUT_S, period_s=0), capture.output()
    assert all(publish_good() for _ in range(3)), capture.output()
    assert _same_pose(frames[good[-1]].camera_pose, CAMERA_POSE)
    assert 'ahead of this node\'s clock' in capture.output()
