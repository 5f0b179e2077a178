"""ROS 2 QoS profiles (rmw defaults, from rclpy.qos / rmw/qos_profiles.h), backend-neutral."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QoSProfile:
    """reliable: Reliable vs BestEffort; transient_local: late joiners get the last `depth` samples."""

    depth: int = 10
    reliable: bool = True
    transient_local: bool = False

    def __post_init__(self):
        if self.depth < 1:
            raise ValueError(f'QoS depth must be >= 1, got {self.depth}')


QOS_DEFAULT = QoSProfile(depth=10, reliable=True)
QOS_SENSOR_DATA = QoSProfile(depth=5, reliable=False)
# Synchronized frames that other nodes work on (megabytes each): reliable, because one lost UDP
# fragment of a best-effort sample loses the whole frame; depth 1, so a slow reader gets the
# newest frame and never a backlog (older ones are superseded, and counted so by the reader).
QOS_FRAMES = QoSProfile(depth=1, reliable=True)
QOS_SERVICES = QoSProfile(depth=10, reliable=True)
# What a service server and a client keep of the other side's samples: deeper than the wire
# default, so a burst is taken in whole (and answered, "busy" beyond the node's queue bound)
# instead of losing the oldest requests, or replies, in the DDS history.
QOS_SERVICE_INBOX = QoSProfile(depth=1000, reliable=True)
# Latched state (/tf_static, robot_description, task configuration).
QOS_LATCHED = QoSProfile(depth=1, reliable=True, transient_local=True)
# tf2_ros TransformBroadcaster / TransformListener use depth 100 on /tf.
QOS_TF = QoSProfile(depth=100, reliable=True)
