"""Node runtime: one API (Node, run_node) over rclpy or Cyclone DDS speaking the ROS 2 wire protocol."""

from samrl_common.runtime.main import run_node
from samrl_common.runtime.node import Client, Node, Publisher, Subscription, Timer, stamp_now, stamp_to_s
from samrl_common.runtime.qos import (QOS_DEFAULT, QOS_FRAMES, QOS_LATCHED, QOS_SENSOR_DATA, QOS_SERVICES,
                                      QOS_TF, QoSProfile)

__all__ = ['Client', 'Node', 'Publisher', 'QOS_DEFAULT', 'QOS_LATCHED', 'QOS_SENSOR_DATA', 'QOS_SERVICES',
           'QOS_FRAMES', 'QOS_TF', 'QoSProfile', 'Subscription', 'Timer', 'run_node', 'stamp_now', 'stamp_to_s']
