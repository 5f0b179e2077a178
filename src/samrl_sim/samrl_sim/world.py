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
from samrl_description.scene import (
    CAMERA_ARM_BASE_XY_M,
    CAMERA_ARM_BASE_YAW_RAD,
    CONTROL_RATE_HZ,
    GRAVITY_M_S2,
    PHYSICS_RATE_HZ,
)
from samrl_sim.bodies import create_table
from samrl_sim.camera import CameraImage, render
from samrl_sim.camera_arm import CameraArm
from samrl_sim.commands import CameraPoseGoal, EeDeltaCommand
from samrl_sim.panda import ARM_MAX_VELOCITY_RAD_S, PandaArm
from samrl_sim.safety import (
    CameraLimits,
    EeLimits,
    ToolMotion,
    ValidationResult,
    check_ik_residual,
    check_tool_motion,
    validate_camera_goal,
    validate_ee_delta,
)
from samrl_sim.tasks import make_task
from samrl_sim.tasks.base import Scene, Task

PARKING_SPACING_M = 10.0                 # bodies are parked this far apart to drop contacts
CAMERA_ARM_SHOULDER_HEIGHT_M = 0.365     # joint 2 above the base (0.155 + 0.210)
# A joint step may need at most (rated speed x control period / divisor). The shoulder and elbow
# (87 N m, moving the whole arm against gravity) overshot when braking from faster steps, so they
# keep a margin; 1.875 (minimum-jerk peak speed within the rating) slowed the spatula flip too much.
JOINT_SPEED_DIVISORS = (1.3, 1.3, 1.3, 1.3, 1.0, 1.0, 1.0)
SHORTEN_BISECTIONS = 10                  # halvings when shortening a joint step (fraction resolution 1e-3)
BRAKING_TIME_S = 0.008                   # the arm is held once the tool, coasting this long, would pass a bound
# Parts of a planned step previewed in turn until one's measured motion is within bounds. Momentum
# and contact (a held peg or spatula pressed on the table) moved the tool up to 44 mm in steps whose
# plan was within the 20 mm limit; the part that stays within bounds is usually a half or a quarter.
PREVIEW_FRACTIONS = (1.0, 0.5, 0.25, 0.0)
SETTLE_TIME_S = 1.0                      # simulated after placing an episode's objects (see World._settle)


@dataclass(frozen=True)
class WorldConfig:
    physics_rate_hz: int = PHYSICS_RATE_HZ
    control_rate_hz: int = CONTROL_RATE_HZ
    camera_arm_base_xy_m: tuple[float, float] = CAMERA_ARM_BASE_XY_M
    camera_arm_base_yaw_rad: float = CAMERA_ARM_BASE_YAW_RAD
    ee_limits: EeLimits = field(default_factory=EeLimits)
    objects: SceneObjects = field(default_factory=SceneObjects)
    settle_time_s: float = SETTLE_TIME_S     # simulated at reset so an episode starts at rest (0: as placed)

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
    """Outcome of one command: whether it was applied (else why not) and the task state after it.

    An applied command may have been shortened (`shortened` says why) so that the predicted or
    previewed tool motion stays inside the per-step limits and the workspace, or stopped during the
    period (`stopped` says why) when the tool neared those bounds; `motion` is the tool motion
    measured over the step, always within the bounds.
    """

    accepted: bool
    reason: str
    state: TaskState
    shortened: str = ''
    stopped: str = ''
    motion: ToolMotion | None = None


@dataclass(frozen=True)
class ArmPlan:
    """Joint goal for one step, or why there is none; `shortened` says why it is short of the command."""

    joints_rad: np.ndarray | None
    reason: str = ''
    shortened: str = ''


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
        self._settle()
        view = self.move_camera(_goal_from_pose(self.task.default_camera_pose()))
        if not view.ok:
            raise RuntimeError(f'{self.task.name}: default camera pose rejected: {view.reason}')
        self._episode += 1
        self._step = 0
        return self.task_state()

    def _settle(self) -> None:
        """Let the placed objects come to rest with the arm held, so that an episode starts at rest.

        The thread is placed at its randomised bend angles, which its weak joint motors cannot hold
        against gravity: without this its links moved 5-8 mm (joints 13-26 deg) in the first control
        step, before any command could have caused it.
        """
        self.camera_arm.set_joints(self.camera_arm.joint_positions())   # restoreState keeps old motor targets
        for _ in range(round(self.config.settle_time_s * self.config.physics_rate_hz)):
            pb.stepSimulation(physicsClientId=self.client)

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
        """Validate one end-effector delta and what the arm will do for it, apply it, check what it did.

        Commands are checked before anything moves, but the arm executes an IK solution through
        torque-limited motors and may touch things: so the solution's reached pose and predicted
        tool motion are checked (shortened to the limits if needed), the step is then previewed on
        this world's own physics, and kept only if its measured motion is within the bounds; else
        the world goes back to before the preview and tries a shorter part of the step
        (PREVIEW_FRACTIONS). If no part stays within bounds the command is refused and nothing moved.
        """
        start = self.panda.tcp_pose()
        check = validate_ee_delta(command, start.position, self.config.ee_limits)
        if not check.ok:
            return StepResult(False, check.reason, self.task_state())
        plan = self._plan_arm(start, _command_target(start, command))
        if plan.joints_rad is None:
            return StepResult(False, plan.reason, self.task_state())
        start_rad = self.panda.arm_joint_positions()
        failures = []
        for fraction in PREVIEW_FRACTIONS:
            goal_rad = start_rad + fraction * (plan.joints_rad - start_rad)
            stopped, measured = self._preview(start, goal_rad, float(command.gripper_width_m))
            if measured.ok:
                self._step += 1
                shortened = plan.shortened if fraction == 1.0 else '; '.join(filter(None, [
                    plan.shortened, f'previewed at {", ".join(failures)} of the step: out of bounds, so '
                                    f'{fraction:g} of it executed']))
                return StepResult(True, '', self.task_state(), shortened, stopped,
                                  ToolMotion.between(start, self.panda.tcp_pose()))
            failures.append(f'{fraction:g}')
            last = measured.reason
        return StepResult(False, f'every previewed part of the step ({", ".join(failures)}) would leave the '
                                 f'bounds: the smallest measured {last}', self.task_state())

    def _preview(self, start: Pose, goal_rad: np.ndarray, gripper_width_m: float) -> tuple[str, ValidationResult]:
        """Execute one step towards `goal_rad` and measure it; if it leaves the bounds, restore the world
        (physics and the task's episode memory) to before it. Returns (stopped early why, the check)."""
        snapshot = pb.saveState(physicsClientId=self.client)
        memory, targets = self.task.episode_memory(), self.panda.targets()
        try:
            stopped = self._move_arm(start, goal_rad, gripper_width_m)
            measured = check_measured_step(start, self.panda.tcp_pose(), self.config.ee_limits)
            if not measured.ok:
                pb.restoreState(snapshot, physicsClientId=self.client)
                self.task.restore_episode_memory(memory)
                self.panda.set_targets(*targets)     # motor targets are not part of a saved state
            return stopped, measured
        finally:
            pb.removeState(snapshot, physicsClientId=self.client)

    def _plan_arm(self, start: Pose, target: Pose) -> ArmPlan:
        """Joint goal for `target`: rejected if the IK misses the target, slowed to joint speeds the
        motors can brake from, shortened until the predicted tool motion is within bounds."""
        solution = self.panda.solve_ik_result(target)
        reached = check_ik_residual(self.panda.tcp_pose_at(solution.joints_rad), target)
        if not reached.ok:
            return ArmPlan(None, reached.reason)
        start_rad = self.panda.arm_joint_positions()
        goal_rad, too_fast = self._within_joint_speeds(start_rad, solution.joints_rad)
        return self._within_tool_bounds(start, start_rad, goal_rad, too_fast)

    def _within_tool_bounds(self, start: Pose, start_rad: np.ndarray, goal_rad: np.ndarray,
                            shortened: str) -> ArmPlan:
        """The largest part of the joint step whose predicted tool motion is within bounds, or a rejection."""
        predicted = self._predict(start, start_rad, goal_rad, 1.0)
        if predicted.ok:
            return ArmPlan(goal_rad, shortened=shortened)
        fraction = self._largest_safe_fraction(start, start_rad, goal_rad)
        if fraction <= 0.0:
            return ArmPlan(None, f'no safe part of the step: predicted {predicted.reason}')
        scaled = f'scaled to {fraction:.3f} of the step: predicted {predicted.reason}'
        why = '; '.join(filter(None, [shortened, scaled]))
        return ArmPlan(start_rad + fraction * (goal_rad - start_rad), shortened=why)

    def _within_joint_speeds(self, start_rad: np.ndarray, goal_rad: np.ndarray) -> tuple[np.ndarray, str]:
        """Scale the joint step down to joint speeds the torque-limited motors can still brake from.

        Near the workspace edge a 20 mm step can need 0.5 rad of shoulder motion; the shoulder then
        saturated at 87 N m and the tool overshot the step by up to 17 mm.
        """
        period_s = 1.0 / self.config.control_rate_hz
        largest_rad = np.asarray(ARM_MAX_VELOCITY_RAD_S) * period_s / np.asarray(JOINT_SPEED_DIVISORS)
        ratio = float(np.max(np.abs(goal_rad - start_rad) / largest_rad))
        if ratio <= 1.0:
            return goal_rad, ''
        return start_rad + (goal_rad - start_rad) / ratio, f'slowed to the joint speed limit ({ratio:.2f} x over)'

    def _predict(self, start: Pose, start_rad: np.ndarray, goal_rad: np.ndarray, fraction: float) -> ValidationResult:
        """Check the tool motion of `fraction` of the joint step, from forward kinematics."""
        end = self.panda.tcp_pose_at(start_rad + fraction * (goal_rad - start_rad))
        limits = self.config.ee_limits
        already_out_m = limits.workspace.excursion_m(start.position)     # never push further out than now
        return check_tool_motion(ToolMotion.between(start, end), end.position, limits,
                                 workspace_tolerance_m=already_out_m)

    def _largest_safe_fraction(self, start: Pose, start_rad: np.ndarray, goal_rad: np.ndarray) -> float:
        """Bisect the joint-step fraction whose predicted tool motion is within bounds (0 always is)."""
        safe, unsafe = 0.0, 1.0
        for _ in range(SHORTEN_BISECTIONS):
            middle = 0.5 * (safe + unsafe)
            if self._predict(start, start_rad, goal_rad, middle).ok:
                safe = middle
            else:
                unsafe = middle
        return safe

    def hold(self) -> TaskState:
        """Simulate one control period with no new command (the arm keeps its last targets)."""
        for _ in range(self.config.substeps):
            pb.stepSimulation(physicsClientId=self.client)
            self.task.after_substep()
        self._step += 1
        return self.task_state()

    def _move_arm(self, start: Pose, goal_rad: np.ndarray, gripper_width_m: float) -> str:
        """Drive the joints along a minimum-jerk profile to `goal_rad` over the control period.

        The joints follow the straight joint-space line to the goal (the tool stays within 0.2 mm of a
        straight path for a 20 mm step, which matters for 2 mm clearances), starting and ending at
        zero velocity: a linear ramp made the 87 N m shoulder overshoot by up to 0.08 rad. If the
        tool's motion since `start` leaves the bounds anyway (momentum, contact), the arm is held
        where it is for the rest of the period; returns why ('' if it was not).
        """
        start_rad = self.panda.arm_joint_positions()
        stopped = ''
        for substep in range(self.config.substeps):
            if not stopped:
                fraction = _minimum_jerk((substep + 1) / self.config.substeps)
                self.panda.set_targets(start_rad + fraction * (goal_rad - start_rad), gripper_width_m)
            pb.stepSimulation(physicsClientId=self.client)
            self.task.after_substep()
            if not stopped:
                stopped = self._stop_if_out_of_bounds(start)
        return stopped

    def _stop_if_out_of_bounds(self, start: Pose) -> str:
        """Hold the arm where it is once the tool, braking from its current speed, would move farther
        than a step may; returns why."""
        tcp = _coasted(self.panda.tcp_pose(), *self.panda.tcp_velocity(), BRAKING_TIME_S)
        limits = self.config.ee_limits
        check = check_tool_motion(ToolMotion.between(start, tcp), tcp.position, limits,
                                  workspace_tolerance_m=limits.workspace.excursion_m(start.position))
        if check.ok:
            return ''
        self.panda.hold_still()
        return f'stopped early: {check.reason}'

    def move_camera(self, goal: CameraPoseGoal) -> ValidationResult:
        """Validate a camera pose goal, solve IK and move the camera arm there (kinematically)."""
        check = validate_camera_goal(goal, self.config.camera_limits())
        if not check.ok:
            return check
        solution = self.camera_arm.solve(Pose.from_xyz_quat(goal.position_m, goal.quaternion_xyzw))
        if not solution.reachable:
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


def check_measured_step(start: Pose, end: Pose, limits: EeLimits) -> ValidationResult:
    """Check a step's measured tool motion against the per-step limits and the workspace, without
    tolerance. A tool already outside the workspace (pushed there) counts only if it went further out."""
    already_out_m = limits.workspace.excursion_m(start.position)
    return check_tool_motion(ToolMotion.between(start, end), end.position, limits,
                             workspace_tolerance_m=already_out_m)


def _coasted(pose: Pose, linear_m_s: np.ndarray, angular_rad_s: np.ndarray, duration_s: float) -> Pose:
    """Where the tool gets to if it keeps its velocity for `duration_s` (a braking allowance)."""
    return Pose(pose.position + duration_s * linear_m_s,
                quat_multiply(axis_angle_to_quat(duration_s * angular_rad_s), pose.quaternion))


def _minimum_jerk(time_fraction: float) -> float:
    """Share of the way covered at `time_fraction` of a move that starts and ends at rest."""
    t = min(max(time_fraction, 0.0), 1.0)
    return t ** 3 * (10.0 - 15.0 * t + 6.0 * t ** 2)


def _command_target(tcp: Pose, command: EeDeltaCommand) -> Pose:
    """Tool pose a validated delta asks for: translated in the world frame, rotated about the tool."""
    return Pose(tcp.position + np.asarray(command.translation_m, dtype=float),
                quat_multiply(axis_angle_to_quat(command.rotation_rad), tcp.quaternion))


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
