"""capture_node: synchronized RGB-D frames with the camera pose, from the RealSense driver's topics.

Subscribes (realsense2_camera 4.x names by default, parameters color_topic, depth_topic,
camera_info_topic; sensor-data QoS): the colour image (rgb8/bgr8), the depth aligned to colour
(16UC1 mm or 32FC1 m) and the colour camera_info; and /tf, /tf_static for the camera pose.

Publishes (sensor-data QoS):
  /samrl/perception/rgbd    samrl_interfaces/RGBDFrame: rgb8 + 32FC1 depth (m, 0 = no return) of
                            one stamp, camera_info and the optical frame's pose in world_frame
  /samrl/perception/points  sensor_msgs/PointCloud2: the scene in the optical frame (x, y, z, rgb),
                            every point_stride-th pixel; only while someone subscribes

Colour and depth are paired by stamp within sync_tolerance_s; a pair waits up to
transform_wait_s for its camera pose (tf at the image's stamp) and camera_info. Inputs it cannot
use are dropped, counted per reason and logged (at most once a period per kind) with why.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from samrl_common import msgs
from samrl_common.conversions import pose_msg
from samrl_common.images import array_to_image
from samrl_common.runtime import QOS_FRAMES, QOS_SENSOR_DATA, Node, run_node, stamp_to_s
from samrl_common.tf import TransformBuffer, TransformError
from samrl_common.tf_ros import TransformListener
from samrl_description.names import COLOR_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC, OPTICAL_FRAME
from samrl_perception.pointcloud import pointcloud2_msg, points_from_depth
from samrl_perception.rgbd import (
    NS_PER_S,
    DropLog,
    FrameError,
    FramePairer,
    NotYetAvailable,
    Reason,
    RetryQueue,
    RGBDFrame,
    StampedImage,
    check_pair,
    check_stamp,
    decode_color,
    decode_depth,
    intrinsics_from_camera_info,
    make_frame,
)

RGBD_TOPIC = '/samrl/perception/rgbd'
POINTS_TOPIC = '/samrl/perception/points'
DROP_LOG_PERIOD_S = 2.0
RETRY_PERIOD_S = 0.01      # how often waiting pairs look for their pose; tf normally follows within ms
MAX_WAITING_PAIRS = 8      # bounds the memory held while tf or camera_info is missing
MAX_SYNC_TOLERANCE_S = 1.0
MAX_QUEUE_SIZE = 100
MAX_TRANSFORM_WAIT_S = 10.0
MAX_POINT_STRIDE = 64
MAX_CLOCK_OFFSET_S = 3600.0


@dataclass(frozen=True)
class CaptureParams:
    color_topic: str = field(default=COLOR_TOPIC, metadata={'description': 'colour image (rgb8 or bgr8)'})
    depth_topic: str = field(default=DEPTH_TOPIC, metadata={
        'description': 'depth aligned to colour (16UC1 mm or 32FC1 m)'})
    camera_info_topic: str = field(default=COLOR_INFO_TOPIC, metadata={'description': 'colour camera_info'})
    optical_frame: str = field(default=OPTICAL_FRAME, metadata={
        'description': 'frame_id both images must carry; its pose is looked up on tf'})
    world_frame: str = field(default='world', metadata={'description': 'frame the camera pose is given in'})
    sync_tolerance_s: float = field(default=0.005, metadata={
        'description': 'largest stamp difference of a colour and depth pair (s)', 'range': (0.0, MAX_SYNC_TOLERANCE_S)})
    queue_size: int = field(default=5, metadata={'description': 'unmatched images kept per stream',
                                                 'range': (1, MAX_QUEUE_SIZE)})
    transform_wait_s: float = field(default=0.5, metadata={
        'description': 'how long a pair may wait for its camera pose and camera_info (s)'})
    point_stride: int = field(default=4, metadata={
        'description': 'point cloud uses every n-th pixel row and column', 'range': (1, MAX_POINT_STRIDE)})
    max_stamp_future_s: float = field(default=1.0, metadata={
        'description': 'images stamped further ahead of this node\'s clock are dropped (s; clocks of the '
                       'camera PC and this one must agree this well)'})
    max_stamp_age_s: float = field(default=10.0, metadata={
        'description': 'images stamped further behind this node\'s clock are dropped (s)'})

    def __post_init__(self):
        for name in ('color_topic', 'depth_topic', 'camera_info_topic'):
            if not getattr(self, name):
                raise ValueError(f'{name} must not be empty')
        for name in ('optical_frame', 'world_frame'):
            frame = getattr(self, name)
            if not frame or frame.startswith('/'):
                raise ValueError(f'{name} must be a tf frame id (non-empty, no leading "/"), got {frame!r}')
        if not 0 <= self.sync_tolerance_s <= MAX_SYNC_TOLERANCE_S:
            raise ValueError(f'sync_tolerance_s must be in [0, {MAX_SYNC_TOLERANCE_S}], got {self.sync_tolerance_s}')
        if not 1 <= self.queue_size <= MAX_QUEUE_SIZE:
            raise ValueError(f'queue_size must be in [1, {MAX_QUEUE_SIZE}], got {self.queue_size}')
        if not 0 < self.transform_wait_s <= MAX_TRANSFORM_WAIT_S:
            raise ValueError(f'transform_wait_s must be in (0, {MAX_TRANSFORM_WAIT_S}], got {self.transform_wait_s}')
        if not 1 <= self.point_stride <= MAX_POINT_STRIDE:
            raise ValueError(f'point_stride must be in [1, {MAX_POINT_STRIDE}], got {self.point_stride}')
        for name in ('max_stamp_future_s', 'max_stamp_age_s'):
            if not 0 < getattr(self, name) <= MAX_CLOCK_OFFSET_S:
                raise ValueError(f'{name} must be in (0, {MAX_CLOCK_OFFSET_S}], got {getattr(self, name)}')


def stamp_msg(stamp_ns: int):
    sec, nanosec = divmod(stamp_ns, NS_PER_S)
    return msgs.get_message('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec)


def frame_msg(frame: RGBDFrame, camera_info):
    """samrl_interfaces/RGBDFrame of a frame; camera_info is the message its intrinsics came from.

    The info is restamped with the frame's stamp: the latest info may be newer than a frame that waited
    for its camera pose, and every part of a frame carries one stamp.
    """
    stamp = stamp_msg(frame.stamp_ns)
    camera_info = copy.deepcopy(camera_info)
    camera_info.header.stamp = stamp
    message = msgs.samrl_interfaces.msg.RGBDFrame(
        rgb=array_to_image(frame.rgb, 'rgb8', stamp, frame.frame_id),
        depth=array_to_image(frame.depth_m, '32FC1', stamp, frame.frame_id),
        camera_info=camera_info, world_frame=frame.world_frame,
        camera_pose=pose_msg(frame.camera_pose))
    message.header.stamp, message.header.frame_id = stamp, frame.frame_id
    return message


class CaptureNode(Node):
    def __init__(self, argv=None):
        super().__init__('capture_node', params=CaptureParams, argv=argv)
        p = self.params
        self.pairer: FramePairer[StampedImage] = FramePairer(round(p.sync_tolerance_s * NS_PER_S), p.queue_size)
        self.waiting: RetryQueue[tuple[StampedImage, StampedImage]] = RetryQueue(p.transform_wait_s,
                                                                                 MAX_WAITING_PAIRS)
        self.camera_info = None  # (message, intrinsics) of the latest valid camera_info
        self.published = 0
        self.drops = DropLog(self.logger, DROP_LOG_PERIOD_S)
        self.tf = TransformListener(self, TransformBuffer())
        self.rgbd_pub = self.create_publisher('samrl_interfaces/msg/RGBDFrame', RGBD_TOPIC, QOS_FRAMES)
        self.points_pub = self.create_publisher('sensor_msgs/msg/PointCloud2', POINTS_TOPIC, QOS_SENSOR_DATA)
        self.create_subscription('sensor_msgs/msg/Image', p.color_topic, self.on_color, QOS_SENSOR_DATA)
        self.create_subscription('sensor_msgs/msg/Image', p.depth_topic, self.on_depth, QOS_SENSOR_DATA)
        self.create_subscription('sensor_msgs/msg/CameraInfo', p.camera_info_topic, self.on_camera_info,
                                 QOS_SENSOR_DATA)
        self.create_timer(RETRY_PERIOD_S, self.process_waiting)
        self.logger.info(f'pairing {p.color_topic} and {p.depth_topic} within {p.sync_tolerance_s * 1e3:g} ms; '
                         f'camera pose {p.world_frame} <- {p.optical_frame}')

    # -- inputs ----------------------------------------------------------------------------------
    def on_color(self, message) -> None:
        self._on_image('colour image', decode_color, self.pairer.add_color, message)

    def on_depth(self, message) -> None:
        self._on_image('depth image', decode_depth, self.pairer.add_depth, message)

    def _on_image(self, what: str, decode, add, message) -> None:
        p = self.params
        try:
            image = decode(message)
            check_stamp(image.stamp_ns, time.time_ns(), round(p.max_stamp_future_s * NS_PER_S),
                        round(p.max_stamp_age_s * NS_PER_S), what)
        except FrameError as exc:
            self.drops.drop(what, exc)
            return
        result = add(image.stamp_ns, image)
        for unmatched in result.dropped:
            self.drops.drop(f'{unmatched.stream} image', FrameError(
                Reason.UNMATCHED, f'stamp {unmatched.stamp_ns / NS_PER_S:.6f} s: {unmatched.why}'))
        if result.pair is not None:
            self._on_pair(result.pair)

    def _on_pair(self, pair: tuple[StampedImage, StampedImage]) -> None:
        try:
            check_pair(*pair, self.params.optical_frame)
        except FrameError as exc:
            self.drops.drop('frame', exc)
            return
        pushed_out = self.waiting.add(pair, time.monotonic())
        if pushed_out is not None:
            self.drops.drop('frame', FrameError(Reason.TRANSFORM, f'more than {MAX_WAITING_PAIRS} frames waiting for '
                                                             'their camera pose or camera_info'))
        self.process_waiting()  # most often everything is there already

    def on_camera_info(self, message) -> None:
        try:
            self.camera_info = (message, intrinsics_from_camera_info(message))
        except FrameError as exc:
            self.drops.drop('camera_info', exc)

    # -- output ----------------------------------------------------------------------------------
    def process_waiting(self) -> None:
        if len(self.waiting):
            for _pair, error in self.waiting.process(self._publish, time.monotonic()):
                self.drops.drop('frame', error)

    def _publish(self, pair: tuple[StampedImage, StampedImage]) -> None:
        """Publish the pair's frame, or raise why not (NotYetAvailable: worth another try)."""
        p, (color, depth) = self.params, pair
        if self.camera_info is None:
            raise NotYetAvailable(Reason.NO_CAMERA_INFO, f'no valid camera_info received on {p.camera_info_topic}')
        info, intrinsics = self.camera_info
        at = stamp_msg(color.stamp_ns)
        try:
            pose = self.tf.buffer.lookup(p.world_frame, color.frame_id, stamp_to_s(at))
        except TransformError as exc:
            raise NotYetAvailable(Reason.TRANSFORM, f'no camera pose at {stamp_to_s(at):.6f} s: {exc}') from None
        frame = make_frame(color, depth, intrinsics, p.world_frame, pose)
        self.rgbd_pub.publish(frame_msg(frame, info))
        self.published += 1
        if self.points_pub.get_subscription_count() > 0:  # the cloud is for viewing; skip it when nobody looks
            points, pixels = points_from_depth(frame.depth_m, intrinsics, stride=p.point_stride)
            colors = frame.rgb[pixels[:, 0], pixels[:, 1]]
            self.points_pub.publish(pointcloud2_msg(points, colors, at, frame.frame_id))

    def destroy(self) -> None:
        self.logger.info(f'published {self.published} frames; dropped: {self.drops.summary()}')
        super().destroy()


def main(argv=None) -> int:
    return run_node(CaptureNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
