"""Talker: publishes a test-pattern camera image, a chatter string and tf; serves ~/reset (Trigger)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from samrl_common import msgs
from samrl_common.runtime import QOS_SENSOR_DATA, Node, run_node, stamp_now
from samrl_common.tf_ros import StaticTransformBroadcaster, TransformBroadcaster, to_msg
from samrl_description.geometry import Pose

ENCODINGS = {'rgb8': (np.uint8, 3), '32FC1': (np.float32, 1)}
# The test camera circles the origin at this radius (m) and angular speed (rad/s).
ORBIT_RADIUS_M = 0.5
ORBIT_RATE_RAD_S = 0.5
# Frames of the moving test pattern rendered once at start-up, then cycled.
PATTERN_FRAMES = 16
MAX_IMAGE_SIDE_PX = 4096


@dataclass(frozen=True)
class TalkerParams:
    rate_hz: float = field(default=30.0, metadata={'description': 'image publishing rate (Hz)'})
    width: int = field(default=640, metadata={'description': 'image width (px)', 'range': (1, MAX_IMAGE_SIDE_PX)})
    height: int = field(default=480, metadata={'description': 'image height (px)', 'range': (1, MAX_IMAGE_SIDE_PX)})
    encoding: str = field(default='rgb8', metadata={'description': 'rgb8 or 32FC1'})
    frame_id: str = field(default='camera_color_optical_frame', metadata={'description': 'image frame'})

    def __post_init__(self):
        if not 0 < self.rate_hz <= 1000:
            raise ValueError(f'rate_hz must be in (0, 1000], got {self.rate_hz}')
        if not (0 < self.width <= MAX_IMAGE_SIDE_PX and 0 < self.height <= MAX_IMAGE_SIDE_PX):
            raise ValueError(f'width/height must be in 1..4096, got {self.width}x{self.height}')
        if self.encoding not in ENCODINGS:
            raise ValueError(f'encoding must be one of {", ".join(ENCODINGS)}, got {self.encoding!r}')


def test_pattern(params: TalkerParams, index: int) -> bytes:
    """A moving gradient, so a viewer sees frames change."""
    dtype, channels = ENCODINGS[params.encoding]
    x = (np.arange(params.width, dtype=np.uint32) + 4 * index) % 256
    row = np.repeat(x[:, None], channels, axis=1) if channels > 1 else x
    image = np.broadcast_to(row, (params.height, *row.shape)).astype(dtype)
    return image.tobytes()


class Talker(Node):
    def __init__(self, argv=None):
        super().__init__('talker', params=TalkerParams, argv=argv)
        self.count = 0
        self.frames = [test_pattern(self.params, i) for i in range(PATTERN_FRAMES)]
        self.image_pub = self.create_publisher('sensor_msgs/msg/Image', 'image', QOS_SENSOR_DATA)
        self.chatter_pub = self.create_publisher('std_msgs/msg/String', 'chatter')
        self.tf = TransformBroadcaster(self)
        StaticTransformBroadcaster(self).send([to_msg('world', 'orbit_center', Pose.identity(), stamp_now())])
        self.create_service('std_srvs/srv/Trigger', '~/reset', self.on_reset)
        self.create_timer(1.0 / self.params.rate_hz, self.on_timer)

    def on_timer(self) -> None:
        p = self.params
        dtype, channels = ENCODINGS[p.encoding]
        image = msgs.sensor_msgs.msg.Image(
            height=p.height, width=p.width, encoding=p.encoding,
            step=p.width * channels * np.dtype(dtype).itemsize, data=self.frames[self.count % PATTERN_FRAMES])
        stamp = stamp_now()  # just before publishing: receivers measure transport latency from it
        image.header.stamp, image.header.frame_id = stamp, p.frame_id
        self.image_pub.publish(image)
        self.chatter_pub.publish(msgs.std_msgs.msg.String(data=f'hello {self.count}'))
        angle = ORBIT_RATE_RAD_S * stamp.sec + ORBIT_RATE_RAD_S * stamp.nanosec * 1e-9
        pose = Pose.checked(np.array([ORBIT_RADIUS_M * math.cos(angle), ORBIT_RADIUS_M * math.sin(angle), 0.0]),
                         np.array([0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)]))
        self.tf.send([to_msg('orbit_center', p.frame_id, pose, stamp)])
        self.count += 1

    def on_reset(self, _request):
        self.logger.info(f'reset after {self.count} images')
        self.count = 0
        return msgs.std_srvs.srv.Trigger.Response(success=True, message='counter reset')


def main(argv=None) -> int:
    return run_node(Talker, argv)


if __name__ == '__main__':
    raise SystemExit(main())
