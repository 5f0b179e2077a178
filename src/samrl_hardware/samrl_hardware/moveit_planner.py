"""The Rizon's planner on moveit_py: rizon.ArmPlanner for the core, on a ROS 2 machine with MoveIt.

The thin part of the Rizon adapter that only runs where moveit_py exists (it is not importable
here, so this module imports it only when MoveItPlanner is built; the core's logic is tested with
fake planners). It plans with the planning component of `group` to a pose of `flange_link` in
`base_link`, samples the trajectory's forward kinematics densely for rizon.check_plan, executes
in a worker thread and stops through the trajectory execution manager.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from samrl_description.geometry import Pose
from samrl_hardware.rizon import CameraPlan, PlanningError

MAX_JOINT_STEP_RAD = 0.002          # spacing of the checked samples: < 12 mm at the flange (7 joints, 0.8 m)


@dataclass(frozen=True)
class MoveItSettings:
    group: str = 'rizon_arm'                    # flexiv_ros2's MoveIt config
    flange_link: str = 'flange'
    base_link: str = 'base_link'
    planning_pipeline: str = 'ompl'
    planning_time_s: float = 2.0
    velocity_scaling: float = 0.2
    acceleration_scaling: float = 0.2


class MoveItPlanner:
    def __init__(self, settings: MoveItSettings, node_name: str = 'rizon_adapter_moveit'):
        from moveit.planning import MoveItPy, PlanRequestParameters  # ROS 2 machines only
        self.settings = settings
        self._moveit = MoveItPy(node_name=node_name)
        if not hasattr(self._moveit, 'get_trajectory_execution_manager'):
            raise RuntimeError('this moveit_py cannot stop an execution (no get_trajectory_execution_manager): '
                               'the Rizon adapter needs MoveIt 2 from Jazzy on')
        self._arm = self._moveit.get_planning_component(settings.group)
        self._parameters = PlanRequestParameters(self._moveit, settings.planning_pipeline)
        self._parameters.planning_pipeline = settings.planning_pipeline
        self._parameters.planning_time = settings.planning_time_s
        self._parameters.max_velocity_scaling_factor = settings.velocity_scaling
        self._parameters.max_acceleration_scaling_factor = settings.acceleration_scaling
        self._lock = threading.Lock()
        self._ended: tuple[bool, str] | None = None

    # -- rizon.ArmPlanner ----------------------------------------------------------------------------
    def current_flange_pose(self) -> Pose | None:
        with self._moveit.get_planning_scene_monitor().read_only() as scene:
            state = scene.current_state
            state.update()
            return _pose(state.get_pose(self.settings.flange_link))

    def plan(self, flange_goal: Pose) -> CameraPlan:
        from geometry_msgs.msg import PoseStamped
        goal = PoseStamped()
        goal.header.frame_id = self.settings.base_link
        (goal.pose.position.x, goal.pose.position.y, goal.pose.position.z) = map(float, flange_goal.position)
        (goal.pose.orientation.x, goal.pose.orientation.y, goal.pose.orientation.z,
         goal.pose.orientation.w) = map(float, flange_goal.quaternion)
        self._arm.set_start_state_to_current_state()
        self._arm.set_goal_state(pose_stamped_msg=goal, pose_link=self.settings.flange_link)
        result = self._arm.plan(single_plan_parameters=self._parameters)
        if not result or result.trajectory is None:
            raise PlanningError(f'MoveIt found no plan for {self.settings.group} '
                                f'(error code {getattr(result, "error_code", "unknown")})')
        poses, times = self._samples(result.trajectory)
        return CameraPlan(tuple(poses), tuple(times), handle=result.trajectory)

    def execute(self, plan: CameraPlan) -> None:
        with self._lock:
            self._ended = None
        threading.Thread(target=self._execute, args=(plan.handle,), daemon=True).start()

    def poll(self) -> tuple[bool, str] | None:
        with self._lock:
            ended, self._ended = self._ended, None
        return ended

    def stop(self) -> None:
        self._moveit.get_trajectory_execution_manager().stop_execution()

    # -- details ---------------------------------------------------------------------------------
    def _execute(self, trajectory) -> None:
        try:
            status = self._moveit.execute(trajectory, controllers=[])
            ended = (_succeeded(status), f'execution status {status}')
        except Exception as exc:    # report, never leave the core waiting
            ended = (False, f'{type(exc).__name__}: {exc}')
        with self._lock:
            self._ended = ended

    def _samples(self, trajectory) -> tuple[list[Pose], list[float]]:
        """Flange poses every MAX_JOINT_STEP_RAD of joint motion, with their times from the start."""
        from moveit.core.robot_state import RobotState
        state = RobotState(trajectory.robot_model)
        joints = [np.asarray(trajectory[i].get_joint_group_positions(self.settings.group), dtype=float)
                  for i in range(len(trajectory))]
        durations = trajectory.get_waypoint_durations()      # each from the previous waypoint
        poses, times, elapsed = [self._forward(state, joints[0])], [0.0], 0.0
        for index in range(1, len(joints)):
            start, end, duration = joints[index - 1], joints[index], float(durations[index])
            pieces = max(1, math.ceil(float(np.max(np.abs(end - start))) / MAX_JOINT_STEP_RAD))
            for piece in range(1, pieces + 1):
                poses.append(self._forward(state, start + piece / pieces * (end - start)))
                times.append(elapsed + piece / pieces * duration)
            elapsed += duration
        return poses, times

    def _forward(self, state, joints: np.ndarray) -> Pose:
        state.set_joint_group_positions(self.settings.group, joints)
        state.update()
        return _pose(state.get_pose(self.settings.flange_link))


def _pose(message) -> Pose:
    p, q = message.position, message.orientation
    return Pose(np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]))


def _succeeded(status) -> bool:
    """moveit_py returns a bool (Humble) or an ExecutionStatus (later)."""
    return status if isinstance(status, bool) else 'SUCCEEDED' in str(status).upper()
