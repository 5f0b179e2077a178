"""tf2 over the node runtime: broadcasters for /tf and /tf_static and a listener filling a TransformBuffer.

Mirrors tf2_ros' TransformBroadcaster, StaticTransformBroadcaster and
TransformListener; on rclpy machines tf2_ros could be used instead, but this
one works on both backends and with the same messages.
"""

from __future__ import annotations

import time

from samrl_common import msgs
from samrl_common.runtime import QOS_LATCHED, QOS_TF, stamp_to_s
from samrl_common.tf import TransformBuffer
from samrl_description.geometry import Pose

TF_TOPIC = '/tf'
TF_STATIC_TOPIC = '/tf_static'
MAX_FUTURE_S = 1.0      # dynamic transforms stamped further ahead of this node's clock are ignored


def to_msg(parent: str, child: str, transform: Pose, stamp):
    """geometry_msgs/TransformStamped from a Pose."""
    TransformStamped = msgs.get_message('geometry_msgs/msg/TransformStamped')
    Vector3 = msgs.get_message('geometry_msgs/msg/Vector3')
    Quaternion = msgs.get_message('geometry_msgs/msg/Quaternion')
    Header = msgs.get_message('std_msgs/msg/Header')
    t, q = (float(v) for v in transform.position), (float(v) for v in transform.quaternion)
    message = TransformStamped(header=Header(stamp=stamp, frame_id=parent), child_frame_id=child)
    message.transform.translation = Vector3(*t)
    message.transform.rotation = Quaternion(*q)
    return message


def from_msg(message) -> Pose:
    tr, rot = message.transform.translation, message.transform.rotation
    return Pose.checked([tr.x, tr.y, tr.z], [rot.x, rot.y, rot.z, rot.w])


class TransformBroadcaster:
    """Publishes dynamic transforms on /tf."""

    def __init__(self, node):
        self._pub = node.create_publisher('tf2_msgs/msg/TFMessage', TF_TOPIC, QOS_TF)

    def send(self, transforms: list) -> None:
        self._pub.publish(msgs.get_message('tf2_msgs/msg/TFMessage')(transforms=list(transforms)))


class StaticTransformBroadcaster:
    """Publishes static transforms on latched /tf_static; like tf2_ros, each send re-publishes all of them."""

    def __init__(self, node):
        self._pub = node.create_publisher('tf2_msgs/msg/TFMessage', TF_STATIC_TOPIC, QOS_LATCHED)
        self._by_child: dict[str, object] = {}

    def send(self, transforms: list) -> None:
        for message in transforms:
            self._by_child[message.child_frame_id] = message
        self._pub.publish(msgs.get_message('tf2_msgs/msg/TFMessage')(transforms=list(self._by_child.values())))


class TransformListener:
    """Fills `buffer` from /tf and /tf_static; inconsistent transforms, and dynamic ones stamped more
    than `max_future_s` ahead of this node's clock, are logged, counted in `ignored` and skipped (one
    sample from the far future would otherwise make every later one look too old)."""

    def __init__(self, node, buffer: TransformBuffer, max_future_s: float = MAX_FUTURE_S):
        self._node, self.buffer, self.max_future_s = node, buffer, max_future_s
        self.ignored = 0
        node.create_subscription('tf2_msgs/msg/TFMessage', TF_TOPIC, lambda m: self._add(m, False), QOS_TF)
        node.create_subscription('tf2_msgs/msg/TFMessage', TF_STATIC_TOPIC, lambda m: self._add(m, True),
                                 QOS_LATCHED)

    def _add(self, message, static: bool) -> None:
        for item in message.transforms:
            try:
                ahead_s = stamp_to_s(item.header.stamp) - time.time()
                if not static and ahead_s > self.max_future_s:
                    raise ValueError(f"'{item.header.frame_id}' -> '{item.child_frame_id}' is stamped {ahead_s:.3f} s "
                                     f'ahead of this node\'s clock (more than {self.max_future_s:g} s)')
                self.buffer.set_transform(item.header.frame_id, item.child_frame_id,
                                          stamp_to_s(item.header.stamp), from_msg(item), static=static)
            except ValueError as exc:
                self.ignored += 1
                self._node.logger.warn_throttled(f'tf:{item.child_frame_id}', f'ignored transform ({self.ignored} '
                                                 f'so far): {exc}')
