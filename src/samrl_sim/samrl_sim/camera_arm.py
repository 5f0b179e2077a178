"""The camera arm: a Rizon 4 stand-in carrying the D435 at its flange (samrl_description's URDF).

The arm is kinematic: a validated camera goal is solved by inverse kinematics and the joints are
set at once (the viewpoint is chosen between manipulation steps, Sec. III-D of the paper). It
does not collide with the scene, so it can never disturb the task; joint limits are respected and
goals the arm cannot reach within tolerance are rejected without moving it.
"""
from __future__ import annotations

import numpy as np
import pybullet as pb

from samrl_description.camera_arm_kinematics import (
    CAMERA_ARM_URDF,
    HOME_JOINTS_RAD,
    CameraArmKinematics,
    IkSolution,
)
from samrl_description.geometry import Pose
from samrl_description.names import OPTICAL_FRAME
from samrl_sim.ik import KinematicChain

URDF_PATH = CAMERA_ARM_URDF         # samrl_description describes the arm (and mirrors its IK in numpy)
HOLD_TORQUE_NM = 200.0              # joint motors keep the solved pose against gravity


class CameraArm:
    """Rizon 4 stand-in in one PyBullet client; all poses in the world frame."""

    def __init__(self, client: int, base_pose: Pose):
        self.client = client
        position, quaternion = base_pose.as_tuple()
        self.body = pb.loadURDF(str(URDF_PATH), position, quaternion, useFixedBase=True, physicsClientId=client)
        infos = [pb.getJointInfo(self.body, j, physicsClientId=client)
                 for j in range(pb.getNumJoints(self.body, physicsClientId=client))]
        self.joint_names = [info[1].decode() for info in infos]
        self.link_names = [info[12].decode() for info in infos]
        self.base_link_name = pb.getBodyInfo(self.body, physicsClientId=client)[0].decode()
        self._movable = [j for j, info in enumerate(infos) if info[2] == pb.JOINT_REVOLUTE]
        self.optical_link = self.link_names.index(OPTICAL_FRAME)
        for link in range(-1, len(infos)):
            pb.setCollisionFilterGroupMask(self.body, link, 0, 0, physicsClientId=client)
        self.set_joints(np.array(HOME_JOINTS_RAD))
        self._chain = KinematicChain(str(URDF_PATH), base_pose, self.optical_link, self._movable)
        self._kinematics = CameraArmKinematics(base_pose)

    @property
    def movable_joint_names(self) -> list[str]:
        return [self.joint_names[j] for j in self._movable]

    def joint_positions(self) -> np.ndarray:
        return np.array([s[0] for s in pb.getJointStates(self.body, self._movable, physicsClientId=self.client)])

    def joint_velocities(self) -> np.ndarray:
        return np.array([s[1] for s in pb.getJointStates(self.body, self._movable, physicsClientId=self.client)])

    def link_pose(self, link: int) -> Pose:
        state = pb.getLinkState(self.body, link, computeForwardKinematics=True, physicsClientId=self.client)
        return Pose.from_xyz_quat(state[4], state[5])

    def optical_pose(self) -> Pose:
        return self.link_pose(self.optical_link)

    def set_joints(self, joints_rad: np.ndarray) -> None:
        """Teleport the joints and hold them with the motors."""
        for joint, angle in zip(self._movable, joints_rad):
            pb.resetJointState(self.body, joint, float(angle), 0.0, physicsClientId=self.client)
        pb.setJointMotorControlArray(self.body, self._movable, pb.POSITION_CONTROL,
                                     targetPositions=list(map(float, joints_rad)),
                                     forces=[HOLD_TORQUE_NM] * len(self._movable), physicsClientId=self.client)

    def solve(self, goal: Pose) -> IkSolution:
        """Best IK solution seeded from the current and the home configuration and, if neither
        reaches, from samrl_description's multi-start IK, which the view distribution trusts (arm not moved)."""
        best = None
        for seed in self._seeds(goal):
            result = self._chain.solve(goal, seed)
            candidate = IkSolution(result.joints_rad, result.position_error_m, result.orientation_error_rad)
            if best is None or candidate.position_error_m < best.position_error_m:
                best = candidate
            if best.reachable:
                break
        return best

    def _seeds(self, goal: Pose):
        yield self.joint_positions()
        yield np.array(HOME_JOINTS_RAD)
        yield self._kinematics.solve(goal, self.joint_positions()).joints_rad

    def close(self) -> None:
        self._chain.close()
