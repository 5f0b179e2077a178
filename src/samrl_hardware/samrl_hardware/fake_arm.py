"""A kinematic stand-in for the Rizon and its planner: dry runs without a robot, and the tests.

It plans straight flange motions (linear position, slerp rotation) at a fixed speed, with
waypoints dense enough for rizon.check_plan, and "executes" them against the clock it is given.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from samrl_description.geometry import Pose, interpolate
from samrl_hardware.rizon import MAX_WAYPOINT_GAP_M, MAX_WAYPOINT_GAP_RAD, CameraPlan, pose_distance

FAKE_SPEED_M_S = 0.1                # flange speed of a planned motion
FAKE_ANGULAR_SPEED_RAD_S = 0.4
MIN_DURATION_S = 0.05
WAYPOINT_FILL = 0.5                 # waypoints at half the largest gap rizon.check_plan allows


class KinematicPlanner:
    """Implements rizon.ArmPlanner for a perfect arm whose flange starts at `start` (base frame)."""

    def __init__(self, start: Pose, clock: Callable[[], float] = time.monotonic,
                 speed_m_s: float = FAKE_SPEED_M_S, angular_speed_rad_s: float = FAKE_ANGULAR_SPEED_RAD_S):
        self.pose = Pose.checked(start.position, start.quaternion)
        self.clock = clock
        self.speed_m_s, self.angular_speed_rad_s = speed_m_s, angular_speed_rad_s
        self._plan: CameraPlan | None = None
        self._started_s = 0.0

    def current_flange_pose(self) -> Pose | None:
        if self._plan is not None:
            self.pose = self._pose_at(self.clock() - self._started_s)
        return self.pose

    def plan(self, flange_goal: Pose) -> CameraPlan:
        start = self.current_flange_pose()
        distance_m, angle_rad = pose_distance(start, flange_goal)
        gaps = max(distance_m / MAX_WAYPOINT_GAP_M, angle_rad / MAX_WAYPOINT_GAP_RAD)
        pieces = max(1, math.ceil(gaps / WAYPOINT_FILL))
        duration_s = max(MIN_DURATION_S, distance_m / self.speed_m_s, angle_rad / self.angular_speed_rad_s)
        fractions = np.linspace(0.0, 1.0, pieces + 1)
        poses = tuple(start if f == 0.0 else interpolate(start, flange_goal, float(f)) for f in fractions)
        return CameraPlan(poses, tuple(float(f * duration_s) for f in fractions))

    def execute(self, plan: CameraPlan) -> None:
        self._plan, self._started_s = plan, self.clock()

    def poll(self) -> tuple[bool, str] | None:
        if self._plan is None or self.clock() - self._started_s < self._plan.duration_s:
            return None
        self.pose, self._plan = self._plan.flange_poses[-1], None
        return True, 'motion complete'

    def stop(self) -> None:
        self.current_flange_pose()
        self._plan = None

    def _pose_at(self, elapsed_s: float) -> Pose:
        times = self._plan.times_s
        if elapsed_s >= times[-1]:
            return self._plan.flange_poses[-1]
        index = max(0, int(np.searchsorted(times, elapsed_s, side='right')) - 1)
        fraction = (elapsed_s - times[index]) / (times[index + 1] - times[index])
        return interpolate(self._plan.flange_poses[index], self._plan.flange_poses[index + 1], float(fraction))
