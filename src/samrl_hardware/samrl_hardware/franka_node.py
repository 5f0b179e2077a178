"""franka_adapter: EndEffectorCommands to the Franka's Cartesian controller, within the safety limits.

A thin shell over samrl_hardware.franka (which decides everything). The controller interface is a
parameter: `controller_message:=pose` publishes geometry_msgs/PoseStamped TCP targets in the
Franka's base frame (an impedance controller's equilibrium pose), `twist` publishes
geometry_msgs/TwistStamped velocities that reach the target in one control period (zero when
holding). franka_ros2 drives an FR3; a Panda needs the community multipanda_ros2 driver; either
way point `controller_topic` at the controller's input and `state_topic` at the measured TCP pose.

With `fake_hardware:=true` no robot is needed: the measured pose is the last target (a perfect
arm starting at fake_start_*), for dry runs of the graph and for the process tests.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from samrl_common import msgs
from samrl_common.conversions import pose_from_msg, pose_msg
from samrl_common.runtime import Node, run_node, stamp_now
from samrl_description.geometry import Pose
from samrl_description.names import PANDA_BASE_FRAME, WORLD_FRAME
from samrl_hardware import franka
from samrl_hardware.franka import CartesianTarget, FrankaAdapterCore, FrankaLimits, FrankaOutcome
from samrl_hardware.guards import Verdict
from samrl_hardware.shell import STOP_TOPIC, AdapterShell
from samrl_sim.commands import EeDeltaCommand

CONTROLLER_MESSAGES = {'pose': 'geometry_msgs/msg/PoseStamped', 'twist': 'geometry_msgs/msg/TwistStamped'}
TICK_RATE_HZ = 50.0                 # watchdog checks (and the fake arm's state) per second
COMMAND_FRAMES = ('', WORLD_FRAME)  # EndEffectorCommands are deltas in the task frame


@dataclass(frozen=True)
class FrankaAdapterParams:
    command_topic: str = field(default='/samrl/ee_command', metadata={
        'description': 'samrl_interfaces/EndEffectorCommand input (task frame)'})
    controller_topic: str = field(default='/cartesian_impedance_controller/equilibrium_pose', metadata={
        'description': 'the Cartesian controller\'s input topic'})
    controller_message: str = field(default='pose', metadata={
        'description': 'pose: PoseStamped TCP target; twist: TwistStamped velocity over one control period'})
    base_frame: str = field(default=PANDA_BASE_FRAME, metadata={
        'description': 'frame_id of the targets: the Franka\'s base frame (fr3_link0 on an FR3)'})
    state_topic: str = field(default='/franka_robot_state_broadcaster/current_pose', metadata={
        'description': 'measured TCP pose (geometry_msgs/PoseStamped in base_frame)'})
    gripper_topic: str = field(default='', metadata={
        'description': 'std_msgs/Float64 gripper width (m) on each accepted command; empty: none'})
    stop_topic: str = field(default=STOP_TOPIC, metadata={'description': 'latched std_msgs/Bool stop of both arms'})
    fake_hardware: bool = field(default=False, metadata={
        'description': 'no robot: the measured pose is the last target (dry runs, tests)'})
    fake_start_position_m: tuple[float, ...] = field(default=(0.45, 0.0, 0.3), metadata={
        'description': 'fake_hardware: the TCP position at start (m, base frame)'})
    fake_start_quaternion_xyzw: tuple[float, ...] = field(default=(1.0, 0.0, 0.0, 0.0), metadata={
        'description': 'fake_hardware: the TCP orientation at start (x, y, z, w; default pointing down)'})
    control_rate_hz: float = field(default=1.0 / franka.CONTROL_PERIOD_S, metadata={
        'description': 'expected command rate (Hz); twist velocities cover one period', 'range': (1.0, 1000.0)})
    watchdog_timeout_s: float = field(default=franka.WATCHDOG_TIMEOUT_S, metadata={
        'description': 'hold the arm when no command came for this long (s)', 'range': (0.05, 5.0)})
    max_speed_m_s: float = field(default=franka.MAX_TCP_SPEED_M_S, metadata={
        'description': 'TCP speed bound over time (m/s)', 'range': (0.001, 1.0)})
    max_angular_speed_rad_s: float = field(default=franka.MAX_TCP_ANGULAR_SPEED_RAD_S, metadata={
        'description': 'TCP angular speed bound over time (rad/s)', 'range': (0.001, 2.5)})
    max_state_age_s: float = field(default=franka.MAX_STATE_AGE_S, metadata={
        'description': 'refuse commands when the measured pose is older than this (s)', 'range': (0.001, 1.0)})
    max_lead_m: float = field(default=franka.MAX_LEAD_M, metadata={
        'description': 'refuse targets further than this from the measured TCP (m)', 'range': (0.001, 0.2)})

    def __post_init__(self):
        if self.controller_message not in CONTROLLER_MESSAGES:
            raise ValueError(f'controller_message must be one of {", ".join(CONTROLLER_MESSAGES)}, '
                             f'got {self.controller_message!r}')
        self.limits()           # range checks, with their messages
        if self.fake_hardware:
            Pose.checked(self.fake_start_position_m, self.fake_start_quaternion_xyzw)

    def limits(self) -> FrankaLimits:
        return FrankaLimits(max_speed_m_s=self.max_speed_m_s, max_angular_speed_rad_s=self.max_angular_speed_rad_s,
                            watchdog_timeout_s=self.watchdog_timeout_s, max_state_age_s=self.max_state_age_s,
                            max_lead_m=self.max_lead_m, command_period_s=1.0 / self.control_rate_hz)


class FrankaAdapter(Node):
    def __init__(self, argv=None):
        super().__init__('franka_adapter', params=FrankaAdapterParams, argv=argv)
        p = self.params
        self.core = FrankaAdapterCore(p.limits())
        self.controller_pub = self.create_publisher(CONTROLLER_MESSAGES[p.controller_message], p.controller_topic)
        self.gripper_pub = self.create_publisher('std_msgs/msg/Float64', p.gripper_topic) if p.gripper_topic else None
        self.create_subscription('samrl_interfaces/msg/EndEffectorCommand', p.command_topic, self.on_command)
        if p.fake_hardware:
            self.fake_pose = Pose.checked(p.fake_start_position_m, p.fake_start_quaternion_xyzw)
            self.core.on_state(self.fake_pose, time.monotonic())
        else:
            self.create_subscription('geometry_msgs/msg/PoseStamped', p.state_topic, self.on_state)
        self.shell = AdapterShell(self, p.stop_topic, self.on_stop, self.core.reset, lambda: self.core.status)
        self.create_timer(1.0 / TICK_RATE_HZ, self.on_tick)
        self.logger.info(f'{p.command_topic} -> {p.controller_topic} ({CONTROLLER_MESSAGES[p.controller_message]}'
                         f'{", fake hardware" if p.fake_hardware else ""}), stop on {p.stop_topic}')

    def on_state(self, message) -> None:
        if message.header.frame_id not in ('', self.params.base_frame):
            self.logger.warn_throttled('state-frame', f'measured pose in frame {message.header.frame_id!r} '
                                       f'ignored; expected {self.params.base_frame!r}')
            return
        verdict = self.core.on_state(pose_from_msg(message.pose), time.monotonic())
        if not verdict.accepted:
            self.logger.warn_throttled('state', verdict.reason)

    def on_command(self, message) -> None:
        if message.header.frame_id not in COMMAND_FRAMES:
            self.shell.refuse('end-effector command', Verdict.refuse(
                f'command in frame {message.header.frame_id!r}; only the task frame {WORLD_FRAME!r} is accepted'))
            return
        t, r = message.translation, message.rotation
        command = EeDeltaCommand((t.x, t.y, t.z), (r.x, r.y, r.z), message.gripper_width)
        self._apply(self.core.on_command(command, time.monotonic()), 'end-effector command')

    def on_stop(self, stop: bool, source: str) -> None:
        self._apply(self.core.on_stop(stop, source), 'stop')

    def on_tick(self) -> None:
        if self.params.fake_hardware:
            self.core.on_state(self.fake_pose, time.monotonic())
        self._apply(self.core.on_tick(time.monotonic()), 'watchdog')

    def _apply(self, outcome: FrankaOutcome | None, what: str) -> None:
        if outcome is None:
            return
        if outcome.target is not None:
            self._send(outcome.target)
        if not outcome.verdict.accepted and outcome.target is None:
            self.shell.refuse(what, outcome.verdict)
        self.shell.publish_status()

    def _send(self, target: CartesianTarget) -> None:
        header = msgs.get_message('std_msgs/msg/Header')(stamp=stamp_now(), frame_id=self.params.base_frame)
        if self.params.controller_message == 'pose':
            message = msgs.get_message('geometry_msgs/msg/PoseStamped')(header=header, pose=pose_msg(target.pose))
        else:
            message = msgs.get_message('geometry_msgs/msg/TwistStamped')(header=header)
            message.twist.linear = msgs.get_message('geometry_msgs/msg/Vector3')(*map(float, target.linear_m_s))
            message.twist.angular = msgs.get_message('geometry_msgs/msg/Vector3')(*map(float, target.angular_rad_s))
        self.controller_pub.publish(message)
        if self.gripper_pub is not None and target.gripper_width_m is not None:
            self.gripper_pub.publish(msgs.get_message('std_msgs/msg/Float64')(data=float(target.gripper_width_m)))
        if self.params.fake_hardware:
            self.fake_pose = target.pose


def main(argv=None) -> int:
    return run_node(FrankaAdapter, argv)


if __name__ == '__main__':
    raise SystemExit(main())
