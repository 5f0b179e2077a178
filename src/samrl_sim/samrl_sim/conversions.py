"""Conversions between the world's plain data and ROS messages (no ROS import: our message classes)."""

from __future__ import annotations

import json

import numpy as np

from samrl_common import msgs
from samrl_common.conversions import pose_from_msg, pose_msg
from samrl_description.geometry import Pose
from samrl_sim.commands import CameraPoseGoal, EeDeltaCommand
from samrl_sim.world import BodyStates, JointStates, TaskState

DEPTH_UNITS_PER_M = 1000.0      # realsense2_camera publishes 16UC1 depth in millimetres
MAX_DEPTH_MM = np.iinfo(np.uint16).max


def command_from_msg(message) -> EeDeltaCommand:
    t, r = message.translation, message.rotation
    return EeDeltaCommand((t.x, t.y, t.z), (r.x, r.y, r.z), message.gripper_width)


def command_msg(command: EeDeltaCommand, stamp, frame_id: str):
    Vector3 = msgs.get_message('geometry_msgs/msg/Vector3')
    message = msgs.samrl_interfaces.msg.EndEffectorCommand(
        translation=Vector3(*map(float, command.translation_m)), rotation=Vector3(*map(float, command.rotation_rad)),
        gripper_width=float(command.gripper_width_m))
    message.header.stamp, message.header.frame_id = stamp, frame_id
    return message


def camera_goal_from_msg(message) -> CameraPoseGoal:
    pose = pose_from_msg(message.pose)
    return CameraPoseGoal(tuple(pose.position), tuple(pose.quaternion))


def image_msgs(rgb: np.ndarray, depth_m: np.ndarray, stamp, frame_id: str) -> tuple:
    """(rgb8 colour, 16UC1 depth in mm) as realsense2_camera publishes them; a non-finite depth (TinyRenderer
    gave one NaN pixel in about 500 frames of a lock-step run) is published as 0, the camera's "no return"."""
    Image = msgs.sensor_msgs.msg.Image
    height, width = rgb.shape[:2]
    color = Image(height=height, width=width, encoding='rgb8', step=width * 3, data=np.ascontiguousarray(rgb).tobytes())
    depth_m = np.where(np.isfinite(depth_m), depth_m, 0.0)
    depth_mm = np.clip(np.round(depth_m * DEPTH_UNITS_PER_M), 0, MAX_DEPTH_MM).astype('<u2')
    depth = Image(height=height, width=width, encoding='16UC1', step=width * 2, data=depth_mm.tobytes())
    for message in (color, depth):
        message.header.stamp, message.header.frame_id = stamp, frame_id
    return color, depth


def joint_state_msg(states: JointStates, stamp):
    message = msgs.sensor_msgs.msg.JointState(name=list(states.names), position=[float(v) for v in states.positions],
                                              velocity=[float(v) for v in states.velocities])
    message.header.stamp = stamp
    return message


def _json_safe(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def task_state_msg(state: TaskState, seed: int, episode_return: float, max_steps: int, stamp):
    message = msgs.samrl_interfaces.msg.TaskState(
        task=state.task, episode=max(state.episode, 0), seed=seed, step=state.step, max_steps=max_steps,
        reward=state.reward, episode_return=episode_return, success=state.success,
        done=state.success or state.truncated,
        info_json=json.dumps({k: _json_safe(v) for k, v in state.info.items()}))
    message.header.stamp, message.header.frame_id = stamp, 'world'
    return message


def sim_state_msg(states: BodyStates, task: str, episode: int, seed: int, stamp):
    message = msgs.samrl_interfaces.msg.SimState(
        task=task, episode=max(episode, 0), seed=seed, body_names=list(states.names),
        body_poses=[pose_msg(p) for p in states.poses],
        joint_counts=[len(j) for j in states.joint_positions],
        joint_positions=[float(v) for j in states.joint_positions for v in j])
    message.header.stamp, message.header.frame_id = stamp, 'world'
    return message


def body_states_from_msg(message) -> BodyStates:
    if len(message.body_poses) != len(message.body_names) or len(message.joint_counts) != len(message.body_names):
        raise ValueError('SimState: body_names, body_poses and joint_counts differ in length')
    if sum(message.joint_counts) != len(message.joint_positions):
        raise ValueError('SimState: joint_counts do not add up to the joint positions given')
    bounds = np.cumsum([0, *message.joint_counts])
    positions = np.asarray(message.joint_positions, dtype=float)
    if not np.all(np.isfinite(positions)):
        raise ValueError('SimState: joint positions contain NaN or inf')
    poses = [pose_from_msg(p) for p in message.body_poses]
    for name, pose in zip(message.body_names, poses):
        try:
            Pose.checked(pose.position, pose.quaternion)
        except ValueError as exc:
            raise ValueError(f'SimState: pose of {name!r}: {exc}') from None
    return BodyStates(list(message.body_names), poses, [positions[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
