"""M's state from object poses and velocities, and poses of M's bodies from its state (no simulator).

The grasped object's pose fixes the gripper's: TCP = object pose * object_in_tcp^-1, so the held
object in M sits exactly where it was observed. samrl_model.sim_adapter.state_from_sim feeds these
functions with the PyBullet world's true state.
"""
from __future__ import annotations

import numpy as np
import torch

from samrl_description.geometry import Pose, matrix_to_euler_xyz, matrix_to_quat, matrix_to_rotvec
from samrl_model.physics.builder import set_static_pose, set_thread_rest
from samrl_model.physics.model import PhysicsModel
from samrl_model.rotations import euler_rates_matrix

STATIC_OBJECTS = ('needle', 'hole_block')
Twist = tuple[np.ndarray, np.ndarray]     # world-frame linear (m/s) and angular (rad/s) velocity



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


def model_state(model: PhysicsModel, poses: dict[str, Pose], twists: dict[str, Twist],
                thread: tuple[np.ndarray, np.ndarray] | None = None,
                thread_rest_rad: np.ndarray | None = None) -> torch.Tensor:
    """M's state (float64 tensor) from object poses and velocities; also moves M's static bodies.

    thread: the thread's joint angles (rad) and rates (rad/s), in the joint order of
    samrl_description.objects.thread_joints; thread_rest_rad: its springs' rest angles (None: the
    current angles).
    """
    for name in STATIC_OBJECTS:
        if name in poses:
            set_static_pose(model.world, name, poses[name])
    positions, velocities = gripper_state(model, poses[model.held_object], *twists[model.held_object])
    parts_q, parts_v = [positions], [velocities]
    if model.task == 'needle_threading':
        angles, rates = thread
        set_thread_rest(model.world.getSkeleton('gripper'), angles if thread_rest_rad is None else thread_rest_rad)
        parts_q.append(angles)
        parts_v.append(rates)
    if model.task == 'spatula_flipping':
        q, v = free_body_state(poses['pancake'], *twists['pancake'])
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


def equilibrium_rest_rad(model: PhysicsModel, state: torch.Tensor) -> np.ndarray:
    """Thread spring rest angles (rad) that make the thread's shape in `state` M's equilibrium.

    A thread seen at rest holds its shape against gravity. With rest angles r and stiffness k, joint i
    is at rest where k (r_i - q_i) = g_i(q) (nimble's generalised gravity force, at zero velocity),
    so r = q + g(q) / k. The sim's motor targets are not that: PyBullet's motors hold the thread
    softer towards its tip than M's springs, so from the targets M's thread sprang up in the first
    control step of an episode (tip 0.24 rad off the world's, seed 900000001). On a robot only the
    seen shape is known, and this is what it gives.
    """
    n = model.num_dofs
    thread = model.dof_slice('thread')
    positions = state.detach().numpy()[:n]
    model.world.setState(np.concatenate([positions, np.zeros(n)]))
    gravity = np.asarray(model.world.getCoriolisAndGravityForces())[thread]
    stiffness = model.config.thread.stiffness_nm_per_rad
    return positions[thread] + gravity / stiffness
