"""Oracle controllers: read the simulator's true state, act only through EeDeltaCommand.

They bound what a perfect-perception policy can reach through the same command interface and
limits as any learned policy, and they exercise the tasks end to end in tests.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from samrl_description.geometry import (
    Pose,
    axis_angle_to_quat,
    quat_conjugate,
    quat_multiply,
    quat_to_axis_angle,
    rotation_between,
    yaw_of,
    yaw_quat,
)
from samrl_description.scene import BLADE_YAW_RAD, GRIPPER_DOWN_QUAT
from samrl_sim.commands import EeDeltaCommand
from samrl_sim.safety import EeLimits
from samrl_sim.tasks.needle_threading import EYE_AXIS, PRE_THREAD_DISTANCE_M, THROUGH_DEPTH_M
from samrl_sim.tasks.peg_insertion import INSERTION_DEPTH_M, PRE_INSERT_HEIGHT_M
from samrl_sim.tasks.spatula_flipping import blade_direction

PEG_ALIGNED_LATERAL_M = 0.0015
PEG_ALIGNED_YAW_RAD = 0.03
PEG_OVERSHOOT_DEPTH_M = 0.015      # aim below the success depth so the last step is not marginal
THREAD_ALIGNED_LATERAL_M = 0.001
THREAD_ALIGNED_ANGLE_RAD = 0.05
THREAD_OVERSHOOT_M = 0.015
THREAD_ENTERING_LATERAL_M = 0.002   # once this close to the axis and near the eye, keep pushing
SPATULA_HOVER_M = 0.03
SPATULA_PRESS_M = 0.001           # command the blade this far into the table to keep it flat on it
SPATULA_TOUCH_HEIGHT_M = 0.002
SPATULA_SLIDE_PAST_M = 0.008      # blade tip this far past the pancake's near rim
SPATULA_POSITION_TOLERANCE_M = 0.004
SPATULA_ANGLE_TOLERANCE_RAD = 0.05
SPATULA_FLIP_END_RAD = np.radians(105.0)
SPATULA_PIVOT_LIFT_M = 0.002


class Oracle(Protocol):
    def reset(self, world) -> None: ...

    def act(self, world) -> EeDeltaCommand: ...


def _scaled(vector: np.ndarray, bound: float) -> np.ndarray:
    """Scale `vector` uniformly so that no component exceeds `bound` (keeps the direction)."""
    largest = float(np.max(np.abs(vector)))
    return vector * (bound / largest) if largest > bound else vector


def servo(current: Pose, target: Pose, gripper_width_m: float, limits: EeLimits) -> EeDeltaCommand:
    """Bounded delta that moves the tool centre point from `current` towards `target`."""
    translation = _scaled(target.position - current.position, limits.max_translation_m)
    rotation = quat_to_axis_angle(quat_multiply(target.quaternion, quat_conjugate(current.quaternion)))
    rotation = _scaled(rotation, limits.max_rotation_rad)
    return EeDeltaCommand(tuple(translation), tuple(rotation), gripper_width_m)


class PegInsertionOracle:
    """Align the peg tip over the hole (position and yaw, gripper kept vertical), then push it in."""

    def reset(self, world) -> None:
        pass

    def act(self, world) -> EeDeltaCommand:
        task, tcp = world.task, world.tcp_pose()
        hole = task.hole_top_pose()
        tip = task.peg_tip_position()
        yaw_error = task.peg_yaw_error()
        lateral = hole.position[:2] - tip[:2]
        aligned = np.linalg.norm(lateral) < PEG_ALIGNED_LATERAL_M and abs(yaw_error) < PEG_ALIGNED_YAW_RAD
        below_top = tip[2] < hole.position[2]
        if aligned or below_top:
            goal_z = hole.position[2] - INSERTION_DEPTH_M - PEG_OVERSHOOT_DEPTH_M
        else:
            goal_z = hole.position[2] + PRE_INSERT_HEIGHT_M
        tip_goal = np.array([*hole.position[:2], goal_z])
        tool_yaw = yaw_of(tcp.rotation) - yaw_error
        target = Pose(tcp.position + (tip_goal - tip), quat_multiply(yaw_quat(tool_yaw), GRIPPER_DOWN_QUAT))
        return servo(tcp, target, task.gripper_width_m, world.config.ee_limits)


class NeedleThreadingOracle:
    """Turn the gripper so the tip segment points along the eye axis, line it up, push it through."""

    def reset(self, world) -> None:
        pass

    def act(self, world) -> EeDeltaCommand:
        task, tcp = world.task, world.tcp_pose()
        eye, tip = task.eye_pose(), task.tip_pose()
        axis = eye.rotation @ EYE_AXIS
        tip_local = eye.inverse().apply(tip.position)
        turn = rotation_between(task.tip_direction(), axis)
        aligned = (np.linalg.norm(tip_local[1:]) < THREAD_ALIGNED_LATERAL_M
                   and np.linalg.norm(turn) < THREAD_ALIGNED_ANGLE_RAD)
        entering = (tip_local[0] > -0.5 * PRE_THREAD_DISTANCE_M
                    and np.linalg.norm(tip_local[1:]) < THREAD_ENTERING_LATERAL_M)
        depth = THROUGH_DEPTH_M + THREAD_OVERSHOOT_M if (aligned or entering) else -PRE_THREAD_DISTANCE_M
        tip_goal = eye.position + depth * axis
        goal_quaternion = quat_multiply(axis_angle_to_quat(turn), tcp.quaternion)
        tip_in_tcp = tcp.inverse().apply(tip.position)
        goal = Pose(tip_goal - Pose(tcp.position, goal_quaternion).rotation @ tip_in_tcp, goal_quaternion)
        return servo(tcp, goal, task.gripper_width_m, world.config.ee_limits)


class SpatulaFlippingOracle:
    """Slide the blade flat under the pancake, then turn the blade about its tip until it tips over."""

    def reset(self, world) -> None:
        self.phase, self.flip_steps = 'approach', 0
        self.rotation_step_rad = world.config.ee_limits.max_rotation_rad
        self.slide_goal = self.pivot = self.flat_tip = None

    def act(self, world) -> EeDeltaCommand:
        task, tcp = world.task, world.tcp_pose()
        tip = task.blade_tip_pose()
        phases = {'approach': self._approach, 'descend': self._descend, 'slide': self._slide, 'flip': self._flip}
        tip_goal = phases[self.phase](task, tip)     # each phase returns a blade-tip goal, may advance
        tip_in_tcp = tcp.inverse().compose(tip)
        return servo(tcp, tip_goal.compose(tip_in_tcp.inverse()), task.gripper_width_m, world.config.ee_limits)

    def _flat_blade(self, position: np.ndarray) -> Pose:
        return Pose(position, yaw_quat(BLADE_YAW_RAD))

    def _approach(self, task, tip: Pose) -> Pose:
        goal = self._flat_blade(task.scoop_start_position() + [0.0, 0.0, SPATULA_HOVER_M])
        if _close(tip, goal, SPATULA_POSITION_TOLERANCE_M, SPATULA_ANGLE_TOLERANCE_RAD):
            self.phase = 'descend'
        return goal

    def _descend(self, task, tip: Pose) -> Pose:
        goal = self._flat_blade(task.scoop_start_position() + [0.0, 0.0, -SPATULA_PRESS_M])
        if tip.position[2] < SPATULA_TOUCH_HEIGHT_M:
            self.phase = 'slide'
            centre = task.object_pose('pancake').position
            beyond = centre + (task.pancake_spec.radius_m + SPATULA_SLIDE_PAST_M) * blade_direction()
            self.slide_goal = np.array([beyond[0], beyond[1], -SPATULA_PRESS_M])
        return goal

    def _slide(self, task, tip: Pose) -> Pose:
        remaining = float(np.dot(self.slide_goal - tip.position, blade_direction()))
        if remaining < SPATULA_POSITION_TOLERANCE_M:
            self.phase, self.pivot, self.flat_tip = 'flip', tip.position.copy(), tip
        return self._flat_blade(self.slide_goal)

    def _flip(self, task, tip: Pose) -> Pose:
        self.flip_steps += 1
        angle = min(self.flip_steps * self.rotation_step_rad, SPATULA_FLIP_END_RAD)
        axis = self.flat_tip.rotation[:, 1]
        turned = quat_multiply(axis_angle_to_quat(angle * axis), self.flat_tip.quaternion)
        return Pose(self.pivot + [0.0, 0.0, SPATULA_PIVOT_LIFT_M], turned)


def _close(current: Pose, goal: Pose, position_m: float, angle_rad: float) -> bool:
    rotation = quat_to_axis_angle(quat_multiply(goal.quaternion, quat_conjugate(current.quaternion)))
    return np.linalg.norm(goal.position - current.position) < position_m and np.linalg.norm(rotation) < angle_rad


def make_oracle(task_name: str) -> Oracle:
    oracles = {'peg_insertion': PegInsertionOracle, 'needle_threading': NeedleThreadingOracle,
               'spatula_flipping': SpatulaFlippingOracle}
    if task_name not in oracles:
        raise ValueError(f'no oracle for task {task_name!r}')
    return oracles[task_name]()
