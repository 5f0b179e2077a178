"""Copy the PyBullet world's true state into M: object poses, the thread's joint angles, velocities.

The grasped object's pose in the sim fixes the gripper's: TCP = object pose * object_in_tcp^-1, so
the held object in M sits exactly where the sim has it (the sim's grasp constraint is slightly
compliant, so the Panda's own TCP may differ by a fraction of a millimetre).
"""
from __future__ import annotations

import numpy as np
import pybullet as pb
import torch
from samrl_sim.geometry import Pose, matrix_to_quat
from samrl_sim.world import World

from samrl_model.physics.builder import set_static_pose, set_thread_rest
from samrl_model.physics.model import PhysicsModel
from samrl_model.physics.rotations import euler_rates_matrix, matrix_to_euler_xyz, matrix_to_rotvec

STATIC_OBJECTS = ('needle', 'hole_block')


def gripper_state(model: PhysicsModel, held_pose: Pose, linear_m_s: np.ndarray,
                  angular_rad_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gripper positions and velocities from the held object's pose and world-frame velocity."""
    tcp = held_pose.compose(model.object_in_tcp.inverse())
    rotation = tcp.rotation
    euler = matrix_to_euler_xyz(model.gripper_reference.T @ rotation)
    tcp_linear = linear_m_s + np.cross(angular_rad_s, tcp.position - held_pose.position)
    rates = np.linalg.solve(euler_rates_matrix(torch.as_tensor(euler)).numpy(), rotation.T @ angular_rad_s)
    return np.concatenate([tcp.position, euler]), np.concatenate([tcp_linear, rates])


def free_body_state(pose: Pose, linear_m_s: np.ndarray, angular_rad_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nimble FreeJoint coordinates: (rotation vector, position), (body angular, world linear)."""
    rotation = pose.rotation
    return (np.concatenate([matrix_to_rotvec(rotation), pose.position]),
            np.concatenate([rotation.T @ angular_rad_s, linear_m_s]))


def _velocity(client: int, body: int) -> tuple[np.ndarray, np.ndarray]:
    linear, angular = pb.getBaseVelocity(body, physicsClientId=client)
    return np.asarray(linear, dtype=float), np.asarray(angular, dtype=float)


def thread_joint_state(client: int, body: int) -> tuple[np.ndarray, np.ndarray]:
    """Angles (rad) and rates (rad/s) of every thread joint, in PyBullet's joint order."""
    states = pb.getJointStates(body, range(pb.getNumJoints(body, physicsClientId=client)), physicsClientId=client)
    return np.array([s[0] for s in states]), np.array([s[1] for s in states])


def state_from_sim(model: PhysicsModel, sim: World, thread_rest_rad: np.ndarray | None = None) -> torch.Tensor:
    """M's state (float64 tensor) equal to the sim's; also moves M's static bodies to the sim's poses.

    thread_rest_rad: spring rest angles of the thread (the sim's motor targets, e.g. task.bends);
    None takes the current joint angles.
    """
    poses, bodies, client = sim.object_poses(), sim.task.object_bodies(), sim.client
    for name in STATIC_OBJECTS:
        if name in poses:
            set_static_pose(model.world, name, poses[name])
    positions, velocities = gripper_state(model, poses[model.held_object],
                                          *_velocity(client, bodies[model.held_object]))
    parts_q, parts_v = [positions], [velocities]
    if model.task == 'needle_threading':
        angles, rates = thread_joint_state(client, bodies['thread'])
        set_thread_rest(model.world.getSkeleton('gripper'), angles if thread_rest_rad is None else thread_rest_rad)
        parts_q.append(angles)
        parts_v.append(rates)
    if model.task == 'spatula_flipping':
        q, v = free_body_state(poses['pancake'], *_velocity(client, bodies['pancake']))
        parts_q.append(q)
        parts_v.append(v)
    return torch.tensor(np.concatenate(parts_q + parts_v), dtype=torch.float64)


def body_pose(model: PhysicsModel, state: torch.Tensor, skeleton: str, body: str | int) -> Pose:
    """World pose (body frame) of one body of M for `state` (this sets the world's state)."""
    model.world.setState(state.detach().numpy())
    transform = model.world.getSkeleton(skeleton).getBodyNode(body).getWorldTransform()
    return Pose.from_xyz_quat(transform.translation(), matrix_to_quat(transform.rotation()))


def held_object_pose(model: PhysicsModel, state: torch.Tensor) -> Pose:
    """World pose of the grasped object in M for `state`."""
    return body_pose(model, state, 'gripper', model.held_object)
