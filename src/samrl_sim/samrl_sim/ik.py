"""Damped least-squares inverse kinematics on a private kinematic copy of an arm.

The solver loads the arm into its own PyBullet DIRECT client, used only for forward kinematics and
Jacobians, so solving never disturbs the simulated world. PyBullet's built-in IK leaves errors of
several millimetres near the workspace boundary; this solver iterates to sub-millimetre accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as pb

from samrl_description.geometry import Pose, quat_conjugate, quat_multiply, quat_to_axis_angle

DAMPING = 0.05                # DLS damping (m / rad); larger is steadier but slower near singularities
MAX_JOINT_STEP_RAD = 0.3      # largest joint change per iteration
MAX_ITERATIONS = 100
POSITION_EPS_M = 1e-4
ROTATION_EPS_RAD = 1e-3


@dataclass(frozen=True)
class IkResult:
    joints_rad: np.ndarray
    position_error_m: float
    orientation_error_rad: float


class KinematicChain:
    """Serial arm from `urdf` with its `joints` driving the pose of `link`."""

    def __init__(self, urdf: str, base_pose: Pose, link: int, joints: list[int], search_path: str = ''):
        self.client = pb.connect(pb.DIRECT)
        if search_path:
            pb.setAdditionalSearchPath(search_path, physicsClientId=self.client)
        position, quaternion = base_pose.as_tuple()
        self.body = pb.loadURDF(urdf, position, quaternion, useFixedBase=True, physicsClientId=self.client)
        self.link, self.joints = link, list(joints)
        infos = [pb.getJointInfo(self.body, j, physicsClientId=self.client) for j in self.joints]
        self._base_rotation = base_pose.rotation
        self.lower = np.array([info[8] for info in infos])
        self.upper = np.array([info[9] for info in infos])
        num_joints = pb.getNumJoints(self.body, physicsClientId=self.client)
        self._movable = [j for j in range(num_joints)
                         if pb.getJointInfo(self.body, j, physicsClientId=self.client)[2] != pb.JOINT_FIXED]

    def close(self) -> None:
        if pb.isConnected(self.client):
            pb.disconnect(self.client)

    def forward(self, joints_rad: np.ndarray) -> Pose:
        for joint, angle in zip(self.joints, joints_rad):
            pb.resetJointState(self.body, joint, float(angle), physicsClientId=self.client)
        state = pb.getLinkState(self.body, self.link, computeForwardKinematics=True, physicsClientId=self.client)
        return Pose.from_xyz_quat(state[4], state[5])

    def _jacobian(self, joints_rad: np.ndarray) -> np.ndarray:
        """6 x n world-frame Jacobian (linear; angular) of the link origin (PyBullet's is in the base frame)."""
        q_all = [pb.getJointState(self.body, j, physicsClientId=self.client)[0] for j in self._movable]
        zeros = [0.0] * len(q_all)
        linear, angular = pb.calculateJacobian(self.body, self.link, [0.0, 0.0, 0.0], q_all, zeros, zeros,
                                               physicsClientId=self.client)
        columns = [self._movable.index(j) for j in self.joints]
        rot = self._base_rotation
        return np.vstack([rot @ np.asarray(linear)[:, columns], rot @ np.asarray(angular)[:, columns]])

    def solve(self, goal: Pose, seed_rad, iterations: int = MAX_ITERATIONS) -> IkResult:
        """Joint angles within limits that bring the link to `goal`, starting from `seed_rad`."""
        q = np.clip(np.asarray(seed_rad, dtype=float), self.lower, self.upper)
        for _ in range(iterations):
            error = self._pose_error(self.forward(q), goal)
            if np.linalg.norm(error[:3]) < POSITION_EPS_M and np.linalg.norm(error[3:]) < ROTATION_EPS_RAD:
                break
            q = np.clip(q + self._step(q, error), self.lower, self.upper)
        error = self._pose_error(self.forward(q), goal)
        return IkResult(q, float(np.linalg.norm(error[:3])), float(np.linalg.norm(error[3:])))

    def _step(self, q: np.ndarray, error: np.ndarray) -> np.ndarray:
        jac = self._jacobian(q)
        jjt = jac @ jac.T + DAMPING ** 2 * np.eye(6)
        pinv = jac.T @ np.linalg.inv(jjt)
        step = pinv @ error
        largest = float(np.max(np.abs(step)))
        return step * (MAX_JOINT_STEP_RAD / largest) if largest > MAX_JOINT_STEP_RAD else step

    @staticmethod
    def _pose_error(current: Pose, goal: Pose) -> np.ndarray:
        rotation = quat_to_axis_angle(quat_multiply(goal.quaternion, quat_conjugate(current.quaternion)))
        return np.concatenate([goal.position - current.position, rotation])
