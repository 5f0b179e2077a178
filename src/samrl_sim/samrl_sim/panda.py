"""The Franka Panda (pybullet_data franka_panda/panda.urdf): joint bookkeeping, IK and motor targets."""
from __future__ import annotations

import numpy as np
import pybullet as pb
import pybullet_data

from samrl_description.geometry import Pose
from samrl_sim.ik import IkResult, KinematicChain

PANDA_URDF = 'franka_panda/panda.urdf'
ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
TCP_LINK = 11                  # panda_grasptarget: 0.105 m below the hand, between the fingertips
ARM_MAX_TORQUE_NM = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)   # Franka data sheet
ARM_MAX_VELOCITY_RAD_S = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)   # Franka data sheet
FINGER_MAX_FORCE_N = 70.0      # continuous grasp force of the Franka hand
ARM_POSITION_GAIN = 0.3        # PyBullet motor proportional gain (unitless)
HOME_JOINTS_RAD = (0.0, -0.3, 0.0, -2.2, 0.0, 1.9, np.pi / 4)
IK_RESET_ITERATIONS = 300      # placing the arm at an episode start from the home configuration


class PandaArm:
    """Panda body in one PyBullet client; positions in rad, widths in m, poses in the world frame."""

    def __init__(self, client: int, base_pose: Pose | None = None):
        self.client = client
        base_pose = base_pose or Pose.identity()
        position, quaternion = base_pose.as_tuple()
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
        self.body = pb.loadURDF(PANDA_URDF, position, quaternion, useFixedBase=True,
                                physicsClientId=client)
        infos = [pb.getJointInfo(self.body, j, physicsClientId=client) for j in range(self._num_joints())]
        self.joint_names = [info[1].decode() for info in infos]
        self.link_names = [info[12].decode() for info in infos]
        self.base_link_name = pb.getBodyInfo(self.body, physicsClientId=client)[0].decode()
        self._movable = [j for j, info in enumerate(infos) if info[2] != pb.JOINT_FIXED]
        self._chain = KinematicChain(PANDA_URDF, base_pose, TCP_LINK, list(ARM_JOINTS),
                                     search_path=pybullet_data.getDataPath())
        self._gripper_target_m = 0.0
        self._arm_target_rad = np.asarray(HOME_JOINTS_RAD, dtype=float)

    def close(self) -> None:
        self._chain.close()

    def _num_joints(self) -> int:
        return pb.getNumJoints(self.body, physicsClientId=self.client)

    @property
    def movable_joint_names(self) -> list[str]:
        return [self.joint_names[j] for j in self._movable]

    def joint_positions(self) -> np.ndarray:
        states = pb.getJointStates(self.body, self._movable, physicsClientId=self.client)
        return np.array([s[0] for s in states])

    def joint_velocities(self) -> np.ndarray:
        states = pb.getJointStates(self.body, self._movable, physicsClientId=self.client)
        return np.array([s[1] for s in states])

    def link_pose(self, link: int) -> Pose:
        state = pb.getLinkState(self.body, link, computeForwardKinematics=True, physicsClientId=self.client)
        return Pose.from_xyz_quat(state[4], state[5])

    def tcp_pose(self) -> Pose:
        return self.link_pose(TCP_LINK)

    def tcp_velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Linear (m/s) and angular (rad/s) velocity of the tool centre point in the world frame."""
        state = pb.getLinkState(self.body, TCP_LINK, computeLinkVelocity=True, computeForwardKinematics=True,
                                physicsClientId=self.client)
        return np.asarray(state[6]), np.asarray(state[7])

    def gripper_width(self) -> float:
        return float(sum(self.joint_positions()[-2:]))

    def arm_joint_positions(self) -> np.ndarray:
        return self.joint_positions()[:len(ARM_JOINTS)]

    def solve_ik(self, target: Pose) -> np.ndarray:
        """Arm joint angles (7) putting the tool centre point at `target`, seeded by the current state."""
        return self.solve_ik_result(target).joints_rad

    def solve_ik_result(self, target: Pose) -> IkResult:
        """As solve_ik, with the solution's residual so callers can tell an unreachable target."""
        return self._chain.solve(target, self.arm_joint_positions())

    def tcp_pose_at(self, arm_rad: np.ndarray) -> Pose:
        """Tool centre point pose the arm would have at `arm_rad` (forward kinematics; nothing moves)."""
        return self._chain.forward(arm_rad)

    def hold_still(self) -> None:
        """Make the current arm configuration the motor target, keeping the gripper's last target."""
        self.set_targets(self.arm_joint_positions(), self._gripper_target_m)

    def targets(self) -> tuple[np.ndarray, float]:
        """The motor targets last set: arm joints (rad) and gripper width (m)."""
        return self._arm_target_rad.copy(), self._gripper_target_m

    def reset_joints(self, arm_rad, gripper_width_m: float) -> None:
        """Teleport the arm and fingers (zero velocity) and hold them there with the motors."""
        finger = 0.5 * gripper_width_m
        for joint, angle in zip(ARM_JOINTS, arm_rad):
            pb.resetJointState(self.body, joint, float(angle), 0.0, physicsClientId=self.client)
        for joint in FINGER_JOINTS:
            pb.resetJointState(self.body, joint, finger, 0.0, physicsClientId=self.client)
        self.set_targets(np.asarray(arm_rad, dtype=float), gripper_width_m)

    def reset_tcp(self, target: Pose, gripper_width_m: float) -> float:
        """Teleport the arm so the tool centre point is at `target`; returns the position error (m)."""
        solution = self._chain.solve(target, HOME_JOINTS_RAD, iterations=IK_RESET_ITERATIONS)
        self.reset_joints(solution.joints_rad, gripper_width_m)
        return float(np.linalg.norm(self.tcp_pose().position - target.position))

    def set_targets(self, arm_rad: np.ndarray, gripper_width_m: float) -> None:
        """Position-control targets for the seven arm joints and the two fingers."""
        self._gripper_target_m = float(gripper_width_m)
        self._arm_target_rad = np.array(arm_rad, dtype=float)
        pb.setJointMotorControlArray(self.body, list(ARM_JOINTS), pb.POSITION_CONTROL,
                                     targetPositions=arm_rad.tolist(), forces=list(ARM_MAX_TORQUE_NM),
                                     positionGains=[ARM_POSITION_GAIN] * len(ARM_JOINTS),
                                     physicsClientId=self.client)
        pb.setJointMotorControlArray(self.body, list(FINGER_JOINTS), pb.POSITION_CONTROL,
                                     targetPositions=[0.5 * gripper_width_m] * 2,
                                     forces=[FINGER_MAX_FORCE_N] * 2, physicsClientId=self.client)
