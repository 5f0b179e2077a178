"""Listener: receives images and chatter, calls the talker's reset service, looks up tf; reports rates.

With `exit_after_images:=N` it exits 0 after N images, so a launched demo graph ends by itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from samrl_common.runtime import QOS_SENSOR_DATA, Node, run_node, stamp_to_s
from samrl_common.tf import TransformBuffer, TransformError
from samrl_common.tf_ros import TransformListener

REPORT_PERIOD_S = 1.0
SERVICE_WAIT_S = 10.0


@dataclass(frozen=True)
class ListenerParams:
    exit_after_images: int = field(default=0, metadata={'description': 'exit after N images (0: never)'})
    reset_service: str = field(default='/talker/reset', metadata={'description': 'Trigger service to call'})
    target_frame: str = field(default='world', metadata={'description': 'frame to look the image frame up in'})

    def __post_init__(self):
        if self.exit_after_images < 0:
            raise ValueError(f'exit_after_images must be >= 0, got {self.exit_after_images}')


class Listener(Node):
    def __init__(self, argv=None):
        super().__init__('listener', params=ListenerParams, argv=argv)
        self.images, self.latencies_ms, self.exit_code = 0, [], 0
        self.tf = TransformListener(self, TransformBuffer())
        self.create_subscription('sensor_msgs/msg/Image', 'image', self.on_image, QOS_SENSOR_DATA)
        self.create_subscription('std_msgs/msg/String', 'chatter', lambda m: self.logger.debug(m.data))
        self.reset = self.create_client('std_srvs/srv/Trigger', self.params.reset_service)
        self.called = False
        self.create_timer(REPORT_PERIOD_S, self.on_report)

    def on_image(self, image) -> None:
        self.images += 1
        self.latencies_ms.append((time.time() - stamp_to_s(image.header.stamp)) * 1e3)
        self.last_image = image
        if self.params.exit_after_images and self.images >= self.params.exit_after_images:
            self.logger.info(f'received {self.images} images; done')
            self.shutdown()

    def on_report(self) -> None:
        if not self.called and self.reset.wait_for_service(SERVICE_WAIT_S):
            answer = self.reset.call(self.reset.srv_type.Request(), timeout_s=5.0)
            self.logger.info(f'{self.params.reset_service} answered: {answer.message}')
            self.called = True
        if not self.latencies_ms:
            self.logger.info('waiting for images')
            return
        image = self.last_image
        try:
            pose = self.tf.buffer.lookup(self.params.target_frame, image.header.frame_id,
                                         stamp_to_s(image.header.stamp))
            where = f'camera at {pose.position.round(3).tolist()} in {self.params.target_frame}'
        except TransformError as exc:
            where = f'no transform yet ({exc})'
        mean = sum(self.latencies_ms) / len(self.latencies_ms)
        self.logger.info(f'{len(self.latencies_ms)} images of {image.width}x{image.height} {image.encoding} '
                         f'in {REPORT_PERIOD_S:.0f} s, mean latency {mean:.1f} ms; {where}')
        self.latencies_ms.clear()


def main(argv=None) -> int:
    return run_node(Listener, argv)


if __name__ == '__main__':
    raise SystemExit(main())
