"""rizon_adapter: camera pose goals to motions of the Rizon through moveit_py, within the safety limits.

A thin shell over samrl_hardware.rizon (which plans, checks, executes and reports through an
ArmPlanner). `planner:=moveit` plans and executes with moveit_py (a ROS 2 machine with the Rizon's
MoveIt configuration); `planner:=fake` moves a kinematic stand-in (samrl_hardware.fake_arm) for dry
runs without a robot. The status topic says when a motion ended and how.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from samrl_common.conversions import pose_from_msg
from samrl_common.runtime import Node, run_node
from samrl_description.geometry import look_at
from samrl_description.names import WORLD_FRAME
from samrl_hardware import rizon
from samrl_hardware.calibration import load_calibration
from samrl_hardware.guards import Verdict
from samrl_hardware.rizon import RizonAdapterCore, RizonLimits
from samrl_hardware.shell import STOP_TOPIC, AdapterShell
from samrl_sim.commands import CameraPoseGoal

PLANNERS = ('moveit', 'fake')
TICK_RATE_HZ = 20.0                 # end-of-motion and watchdog checks per second
GOAL_FRAMES = ('', WORLD_FRAME)


@dataclass(frozen=True)
class RizonAdapterParams:
    calibration_file: str = field(default='', metadata={
        'description': 'the calibration YAML file: the Rizon\'s base and the camera on its flange'})
    goal_topic: str = field(default='/samrl/camera_goal', metadata={
        'description': 'geometry_msgs/PoseStamped goals of camera_color_optical_frame in the world frame'})
    stop_topic: str = field(default=STOP_TOPIC, metadata={'description': 'latched std_msgs/Bool stop of both arms'})
    planner: str = field(default='moveit', metadata={'description': 'moveit (moveit_py) or fake (dry run)'})
    planning_group: str = field(default='rizon_arm', metadata={'description': 'MoveIt planning group'})
    flange_link: str = field(default='flange', metadata={'description': 'the flange link in the MoveIt model'})
    base_link: str = field(default='base_link', metadata={'description': 'the Rizon\'s base link in the MoveIt model'})
    velocity_scaling: float = field(default=0.2, metadata={'description': 'MoveIt max velocity scaling',
                                                           'range': (0.01, 1.0)})
    fake_start_camera_m: tuple[float, ...] = field(default=(0.55, -0.35, 0.55), metadata={
        'description': 'planner:=fake: the camera position at start (m, world)'})
    fake_start_look_at_m: tuple[float, ...] = field(default=(0.55, 0.0, 0.05), metadata={
        'description': 'planner:=fake: the point the camera looks at at start (m, world)'})
    watchdog_timeout_s: float = field(default=rizon.WATCHDOG_TIMEOUT_S, metadata={
        'description': 'stop a motion not finished this long after its planned duration (s)', 'range': (0.1, 30.0)})
    max_step_m: float = field(default=rizon.MAX_CAMERA_STEP_M, metadata={
        'description': 'camera travel per goal (m)', 'range': (0.001, 1.0)})
    max_step_rad: float = field(default=rizon.MAX_CAMERA_STEP_RAD, metadata={
        'description': 'camera turn per goal (rad)', 'range': (0.001, 3.14)})
    max_speed_m_s: float = field(default=rizon.MAX_CAMERA_SPEED_M_S, metadata={
        'description': 'camera speed along a plan and over time (m/s)', 'range': (0.001, 1.0)})
    max_angular_speed_rad_s: float = field(default=rizon.MAX_CAMERA_ANGULAR_SPEED_RAD_S, metadata={
        'description': 'camera angular speed along a plan and over time (rad/s)', 'range': (0.001, 3.0)})

    def __post_init__(self):
        if not self.calibration_file:
            raise ValueError('calibration_file is required: the path of the cell\'s calibration YAML file')
        if self.planner not in PLANNERS:
            raise ValueError(f'planner must be one of {", ".join(PLANNERS)}, got {self.planner!r}')

    def limit_overrides(self) -> dict:
        return dict(max_step_m=self.max_step_m, max_step_rad=self.max_step_rad, max_speed_m_s=self.max_speed_m_s,
                    max_angular_speed_rad_s=self.max_angular_speed_rad_s, watchdog_timeout_s=self.watchdog_timeout_s)


class RizonAdapter(Node):
    def __init__(self, argv=None):
        super().__init__('rizon_adapter', params=RizonAdapterParams, argv=argv)
        p = self.params
        calibration = load_calibration(p.calibration_file)
        self.core = RizonAdapterCore(self._make_planner(calibration), calibration,
                                     RizonLimits.for_cell(calibration, **p.limit_overrides()))
        self.create_subscription('geometry_msgs/msg/PoseStamped', p.goal_topic, self.on_goal)
        self.shell = AdapterShell(self, p.stop_topic, self.on_stop, self.core.reset, lambda: self.core.status)
        self.create_timer(1.0 / TICK_RATE_HZ, self.on_tick)
        self.logger.info(f'{p.goal_topic} -> {p.planner} planner for {p.planning_group}, stop on {p.stop_topic}')

    def _make_planner(self, calibration):
        p = self.params
        if p.planner == 'moveit':
            from samrl_hardware.moveit_planner import MoveItPlanner, MoveItSettings
            settings = MoveItSettings(group=p.planning_group, flange_link=p.flange_link, base_link=p.base_link,
                                      velocity_scaling=p.velocity_scaling)
            try:
                return MoveItPlanner(settings)
            except (ImportError, RuntimeError) as exc:    # stop start-up with the reason (exit code 2)
                raise ValueError(f'planner:=moveit cannot start: {exc} (planner:=fake runs without a robot)') from exc
        from samrl_hardware.fake_arm import KinematicPlanner
        camera = look_at(p.fake_start_camera_m, p.fake_start_look_at_m)
        start = calibration.rizon_base_in_world.inverse() * camera * calibration.hand_eye.inverse()
        return KinematicPlanner(start)

    def on_goal(self, message) -> None:
        if message.header.frame_id not in GOAL_FRAMES:
            self.shell.refuse('camera goal', Verdict.refuse(
                f'camera goal in frame {message.header.frame_id!r}; only {WORLD_FRAME!r} is accepted'))
            return
        pose = pose_from_msg(message.pose)
        outcome = self.core.on_goal(CameraPoseGoal(tuple(pose.position), tuple(pose.quaternion)), time.monotonic())
        if outcome.verdict.accepted:
            self.logger.info(f'camera goal accepted: {outcome.verdict.reason}')
        else:
            self.shell.refuse('camera goal', outcome.verdict)
        self.shell.publish_status()

    def on_stop(self, stop: bool, source: str) -> None:
        self._report(self.core.on_stop(stop, source))

    def on_tick(self) -> None:
        self._report(self.core.on_tick(time.monotonic()))

    def _report(self, verdict: Verdict | None) -> None:
        if verdict is not None:
            (self.logger.info if verdict.accepted else self.logger.warn)(verdict.reason)
            self.shell.publish_status()


def main(argv=None) -> int:
    return run_node(RizonAdapter, argv)


if __name__ == '__main__':
    raise SystemExit(main())
