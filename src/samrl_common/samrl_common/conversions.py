"""samrl_description's types to and from ROS messages (our message classes; no ROS import)."""

from __future__ import annotations

import numpy as np

from samrl_common import msgs
from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose


def pose_msg(pose: Pose):
    """geometry_msgs/Pose of a Pose."""
    Point, Quaternion = msgs.get_message('geometry_msgs/msg/Point'), msgs.get_message('geometry_msgs/msg/Quaternion')
    return msgs.get_message('geometry_msgs/msg/Pose')(position=Point(*map(float, pose.position)),
                                                      orientation=Quaternion(*map(float, pose.quaternion)))


def pose_from_msg(message) -> Pose:
    """A Pose, without normalising the quaternion (validation must see it as sent)."""
    p, q = message.position, message.orientation
    return Pose(np.array([p.x, p.y, p.z], dtype=float), np.array([q.x, q.y, q.z, q.w], dtype=float))


def camera_info_msg(k: CameraIntrinsics, stamp, frame_id: str):
    """sensor_msgs/CameraInfo of a distortion-free pinhole camera (plumb_bob, zero coefficients)."""
    info = msgs.sensor_msgs.msg.CameraInfo(
        height=k.height, width=k.width, distortion_model='plumb_bob', d=[0.0] * 5,
        k=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0])
    info.header.stamp, info.header.frame_id = stamp, frame_id
    return info


def intrinsics_from_msg(info) -> CameraIntrinsics:
    """Validated pinhole intrinsics from sensor_msgs/CameraInfo.k (distortion ignored: the colour
    stream is rectified); ValueError naming the problem."""
    if len(info.k) != 9:
        raise ValueError(f'camera_info.k has {len(info.k)} entries, not 9')
    return CameraIntrinsics.from_k(list(info.k), info.width, info.height).validate()
