"""The PyBullet "real world": Panda + task objects + the camera arm with its D435, in one client.

World frame = task frame: origin at the Panda's base on the table top, x forward, z up. The
Panda is driven by validated end-effector deltas at CONTROL_RATE_HZ, the camera arm by validated
camera pose goals. Nothing here imports ROS; the bridge node wraps this class.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pybullet as pb

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose, axis_angle_to_quat, quat_multiply, yaw_quat
from samrl_description.names import WORLD_FRAME
from samrl_description.objects import SceneObjects
from samrl_description.scene import CONTROL_RATE_HZ, GRAVITY_M_S2, PHYSICS_RATE_HZ
from samrl_sim.bodies import create_table
from samrl_sim.camera import CameraImage, render
from samrl_sim.camera_arm import CameraArm
from samrl_sim.commands import CameraPoseGoal, EeDeltaCommand
from samrl_sim.panda import PandaArm
from samrl_sim.safety import CameraLimits, EeLimits, ValidationResult, validate_camera_goal, validate_ee_delta
from samrl_sim.tasks import make_task
from samrl_sim.tasks.base import Scene, Task

PARKING_SPACING_M = 10.0                 # bodies are parked this far apart to drop contacts
RAMP_FRACTION = 0.5                      # share of a control period spent ramping the joint targets
CAMERA_ARM_BASE_XY_M = (0.55, -0.65)     # beside the table, facing +y
CAMERA_ARM_BASE_YAW_RAD = np.pi / 2
CAMERA_ARM_SHOULDER_HEIGHT_M = 0.365     # joint 2 above the base (0.155 + 0.210)


@dataclass(frozen=True)
class WorldConfig:
    physics_rate_hz: int = PHYSICS_RATE_HZ
    control_rate_hz: int = CONTROL_RATE_HZ
    camera_arm_base_xy_m: tuple[float, float] = CAMERA_ARM_BASE_XY_M
    camera_arm_base_yaw_rad: float = CAMERA_ARM_BASE_YAW_RAD
    ee_limits: EeLimits = field(default_factory=EeLimits)
    objects: SceneObjects = field(default_factory=SceneObjects)

    @property
    def substeps(self) -> int:
        return self.physics_rate_hz // self.control_rate_hz

    def camera_arm_base(self) -> Pose:
        return Pose(np.array([*self.camera_arm_base_xy_m, 0.0]), yaw_quat(self.camera_arm_base_yaw_rad))

    def camera_limits(self) -> CameraLimits:
        shoulder = (*self.camera_arm_base_xy_m, CAMERA_ARM_SHOULDER_HEIGHT_M)
        return CameraLimits(shoulder_position_m=shoulder)


@dataclass(frozen=True)
class JointStates:
    """Both arms' movable joints (Panda first): names, positions (rad or m), velocities."""

    names: list[str]
    positions: np.ndarray
    velocities: np.ndarray


@dataclass(frozen=True)
class FrameTransform:
    """Pose of `child` in `parent` (one edge of the tf tree); `static` for fixed joints and bases."""

    parent: str
    child: str
    pose: Pose
    static: bool = False


@dataclass(frozen=True)
class TaskState:
    task: str
    episode: int
    step: int
    reward: float
    normalized_reward: float
    success: bool
    truncated: bool
    info: dict


@dataclass(frozen=True)
class StepResult:
    """Outcome of one command: whether it was applied (else why not) and the task state after it."""

    accepted: bool
    reason: str
    state: TaskState


class World:
    """One simulated world for one task; every PyBullet call goes to this world's own client."""

    def __init__(self, task: str | Task, config: WorldConfig = WorldConfig()):
        self.config = config
        self.client = pb.connect(pb.DIRECT)
        pb.setGravity(0.0, 0.0, -GRAVITY_M_S2, physicsClientId=self.client)
        pb.setTimeStep(1.0 / config.physics_rate_hz, physicsClientId=self.client)
        self.table = create_table(self.client, config.objects.table)
        self.panda = PandaArm(self.client)
        self.camera_arm = CameraArm(self.client, config.camera_arm_base())
        self.task = make_task(task) if isinstance(task, str) else task
        self.task.build(Scene(self.client, self.panda, config.objects))
        self._initial_state = pb.saveState(physicsClientId=self.client)
        self._episode, self._step = -1, 0
        self._last = ValidationResult.accept()

    def close(self) -> None:
        self.panda.close()
        self.camera_arm.close()
        if pb.isConnected(self.client):
            pb.disconnect(self.client)

    # --- episode --------------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> TaskState:
        """Start a new episode: restore the built state, randomise the task, camera to its default view."""
        self._drop_contact_cache()
        pb.restoreState(self._initial_state, physicsClientId=self.client)
        self.task.seed(seed)
        self.task.initialise_episode()
        view = self.move_camera(_goal_from_pose(self.task.default_camera_pose()))
        if not view.ok:
            raise RuntimeError(f'{self.task.name}: default camera pose rejected: {view.reason}')
        self._episode += 1
        self._step = 0
        return self.task_state()

    def _drop_contact_cache(self) -> None:
        """Separate all bodies so PyBullet forgets its persistent contacts before a restore.

        restoreState keeps the contact manifolds (warm-start impulses) of the previous episode,
        which made identically seeded episodes differ by ~1e-8 m; with them gone every episode
        is bit-for-bit reproducible.
        """
        for body in range(pb.getNumBodies(physicsClientId=self.client)):
            parking = [PARKING_SPACING_M * (body + 1), PARKING_SPACING_M, PARKING_SPACING_M]
            pb.resetBasePositionAndOrientation(body, parking, [0, 0, 0, 1], physicsClientId=self.client)
        pb.performCollisionDetection(physicsClientId=self.client)

    def step(self, command: EeDeltaCommand) -> StepResult:
        """Validate and apply one end-effector delta, then simulate one control period."""
        tcp = self.panda.tcp_pose()
        check = validate_ee_delta(command, tcp.position, self.config.ee_limits)
        if not check.ok:
            return StepResult(False, check.reason, self.task_state())
        target = Pose(tcp.position + np.asarray(command.translation_m, dtype=float),
                      quat_multiply(axis_angle_to_quat(command.rotation_rad), tcp.quaternion))
        self._move_arm(self.panda.solve_ik(target), float(command.gripper_width_m))
        self._step += 1
        return StepResult(True, '', self.task_state())

    def hold(self) -> TaskState:
        """Simulate one control period with no new command (the arm keeps its last targets)."""
        for _ in range(self.config.substeps):
            pb.stepSimulation(physicsClientId=self.client)
            self.task.after_substep()
        self._step += 1
        return self.task_state()

    def _move_arm(self, goal_rad: np.ndarray, gripper_width_m: float) -> None:
        """Ramp the joint targets to `goal_rad` over the first part of the control period, then hold.

        The ramp keeps the tool on a nearly straight path (0.2 mm deviation for a 20 mm step)
        instead of the joints' uneven transients (5 mm), which matters for 2 mm clearances.
        """
        start_rad = self.panda.joint_positions()[:len(goal_rad)]
        ramp_steps = max(1, int(RAMP_FRACTION * self.config.substeps))
        for substep in range(self.config.substeps):
            fraction = min((substep + 1) / ramp_steps, 1.0)
            self.panda.set_targets(start_rad + fraction * (goal_rad - start_rad), gripper_width_m)
            pb.stepSimulation(physicsClientId=self.client)
            self.task.after_substep()

    def move_camera(self, goal: CameraPoseGoal) -> ValidationResult:
        """Validate a camera pose goal, solve IK and move the camera arm there (kinematically)."""
        check = validate_camera_goal(goal, self.config.camera_limits())
        if not check.ok:
            return check
        solution = self.camera_arm.solve(Pose.from_xyz_quat(goal.position_m, goal.quaternion_xyzw))
        if not solution.within_tolerance:
            return ValidationResult.reject(
                f'camera goal unreachable: IK error {solution.position_error_m * 1000:.1f} mm, '
                f'{np.degrees(solution.orientation_error_rad):.2f} deg')
        self.camera_arm.set_joints(solution.joints_rad)
        return check

    # --- state for the bridge ---------------------------------------------------------------------

    def task_state(self) -> TaskState:
        info = self.task.evaluate()
        reward = self.task.compute_dense_reward(info)
        return TaskState(self.task.name, self._episode, self._step, float(reward),
                         float(reward / self.task.max_dense_reward), bool(info['success']),
                         self._step >= self.task.max_episode_steps, info)

    def joint_states(self) -> JointStates:
        names = self.panda.movable_joint_names + self.camera_arm.movable_joint_names
        positions = np.concatenate([self.panda.joint_positions(), self.camera_arm.joint_positions()])
        velocities = np.concatenate([self.panda.joint_velocities(), self.camera_arm.joint_velocities()])
        return JointStates(names, positions, velocities)

    def tcp_pose(self) -> Pose:
        return self.panda.tcp_pose()

    def camera_pose(self) -> Pose:
        """camera_color_optical_frame in the world frame."""
        return self.camera_arm.optical_pose()

    def camera_intrinsics(self, width: int = 640, height: int = 480) -> CameraIntrinsics:
        return CameraIntrinsics.d435(width, height)

    def render(self, width: int = 84, height: int = 84) -> CameraImage:
        """RGB (uint8), metric depth (float32 m) and body-id segmentation from the wrist camera."""
        return render(self.client, self.camera_pose(), self.camera_intrinsics(width, height))

    def transforms(self) -> list[FrameTransform]:
        """tf edges: world -> both arm bases, then each link relative to its parent link."""
        edges = []
        for arm in (self.panda, self.camera_arm):
            edges.append(FrameTransform(WORLD_FRAME, arm.base_link_name, _base_pose(self.client, arm.body), True))
            edges.extend(_link_edges(self.client, arm))
        return edges

    def object_poses(self) -> dict[str, Pose]:
        """Ground-truth pose of every task object's base in the world frame."""
        return {name: self.task.object_pose(name) for name in self.task.object_bodies()}

    def segmentation_ids(self) -> dict[str, int]:
        """Segmentation value of each body: task objects, 'table', 'panda', 'camera_arm'."""
        return {**self.task.object_bodies(), 'table': self.table, 'panda': self.panda.body,
                'camera_arm': self.camera_arm.body}


def _goal_from_pose(pose: Pose) -> CameraPoseGoal:
    return CameraPoseGoal(tuple(pose.position), tuple(pose.quaternion))


def _base_pose(client: int, body: int) -> Pose:
    """URDF base-link frame in the world (PyBullet reports the base's inertial frame)."""
    position, quaternion = pb.getBasePositionAndOrientation(body, physicsClientId=client)
    inertial_position, inertial_quaternion = pb.getDynamicsInfo(body, -1, physicsClientId=client)[3:5]
    inertial = Pose.from_xyz_quat(inertial_position, inertial_quaternion)
    return Pose.from_xyz_quat(position, quaternion).compose(inertial.inverse())


def _link_edges(client: int, arm) -> list[FrameTransform]:
    """Each link's pose in its parent link (URDF link frames, fixed joints included)."""
    edges = []
    for link, name in enumerate(arm.link_names):
        parent_index = pb.getJointInfo(arm.body, link, physicsClientId=client)[16]
        parent_name = arm.base_link_name if parent_index < 0 else arm.link_names[parent_index]
        parent_pose = _base_pose(client, arm.body) if parent_index < 0 else arm.link_pose(parent_index)
        fixed = pb.getJointInfo(arm.body, link, physicsClientId=client)[2] == pb.JOINT_FIXED
        edges.append(FrameTransform(parent_name, name, parent_pose.inverse().compose(arm.link_pose(link)), fixed))
    return edges


@dataclass(frozen=True)
class BodyStates:
    """Kinematic state of every body: enough to mirror the world in another process.

    Poses are PyBullet's base frames (the base link's centre of mass), as reset takes them.
    """

    names: list[str]
    poses: list[Pose]
    joint_positions: list[np.ndarray]


def read_body_states(client: int) -> BodyStates:
    names, poses, joints = [], [], []
    for body in range(pb.getNumBodies(physicsClientId=client)):
        names.append(pb.getBodyInfo(body, physicsClientId=client)[1].decode())
        position, quaternion = pb.getBasePositionAndOrientation(body, physicsClientId=client)
        poses.append(Pose.from_xyz_quat(position, quaternion))  # PyBullet's base (inertial) frame
        count = pb.getNumJoints(body, physicsClientId=client)
        states = pb.getJointStates(body, range(count), physicsClientId=client) if count else []
        joints.append(np.array([s[0] for s in states], dtype=float))
    return BodyStates(names, poses, joints)


def write_body_states(client: int, states: BodyStates) -> None:
    """Place every body as in `states` (no physics step); the bodies must match in number and name."""
    count = pb.getNumBodies(physicsClientId=client)
    if len(states.names) != count:
        raise ValueError(f'state has {len(states.names)} bodies, this world {count}')
    for body, (name, pose, joints) in enumerate(zip(states.names, states.poses, states.joint_positions)):
        own = pb.getBodyInfo(body, physicsClientId=client)[1].decode()
        if own != name or len(joints) != pb.getNumJoints(body, physicsClientId=client):
            raise ValueError(f'body {body} is {own!r} here but {name!r} with {len(joints)} joints in the state')
        pb.resetBasePositionAndOrientation(body, pose.position.tolist(), pose.quaternion.tolist(),
                                           physicsClientId=client)
        for joint, position in enumerate(joints):
            pb.resetJointState(body, joint, float(position), physicsClientId=client)
