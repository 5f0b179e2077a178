"""Scripted guesses for the expert: waypoint servos that read M's state (no simulator).

Each task's servo does what samrl_sim's oracle does in PyBullet, in stages, but reads the model
M (model_tasks.py's torch kinematics) and decides its stage from the state alone, so that it can
start from any state M reaches (DAgger asks the expert about the learner's states). It returns the
normalised 6-d end-effector action (translation, rotation vector; each in [-1, 1]) that moves the
tool centre point (TCP) towards the stage's waypoint as far as one control step allows. The expert
(expert.py) rolls it out in M to initialise its action sequence.

Spatula-Flipping differs from the sim oracle because M differs from PyBullet: M's pancake is a box
(no bevelled rim rides up a blade pushed against it) and M's held objects pass through the static
table. The servo therefore slides the blade in just below the table's surface, under the pancake,
lifts it, and turns the blade tip-up about its handle end until the pancake, held by the handle,
falls over onto its face (in M, 20 of 20 episodes, seeds 1000-1019, with `samrl train expert`).
"""
from __future__ import annotations

import numpy as np
import torch

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
from samrl_description.scene import GRIPPER_DOWN_QUAT
from samrl_description.task_goals import (
    EYE_AXIS,
    FLIP_ANGLE_RAD,
    HOLE_SYMMETRY_RAD,
    INSERTION_DEPTH_M,
    MAX_ROTATION_PER_STEP_RAD,
    MAX_TRANSLATION_PER_STEP_M,
    PRE_INSERT_HEIGHT_M,
    PRE_THREAD_DISTANCE_M,
    THROUGH_DEPTH_M,
    turn_angle_rad,
    wrap_symmetric,
)
from samrl_model.physics.model import pancake_box_part
from samrl_policy.model_tasks import (
    ModelTask,
    NeedleThreading,
    PegInsertion,
    SpatulaFlipping,
    held_matrix,
    tcp_matrix,
    to_pose,
)

PEG_ALIGNED_LATERAL_M = 0.0015      # push down once the tip is this close to the hole's axis
PEG_ALIGNED_YAW_RAD = 0.03          # and the yaw this close
PEG_OVERSHOOT_DEPTH_M = 0.015       # aim below the success depth so the last step is not marginal
THREAD_ALIGNED_LATERAL_M = 0.001
THREAD_ALIGNED_ANGLE_RAD = 0.05
THREAD_OVERSHOOT_M = 0.015
THREAD_ENTERING_LATERAL_M = 0.002   # once this close to the axis and near the eye, keep pushing
SPATULA_HOVER_M = 0.03              # blade tip above the table while it travels to the scoop start
SPATULA_UNDER_MARGIN_M = 0.0015     # and at least this far under the box's lowest corner (a tilted box
#                                     rests with an edge a few mm into M's table)
SPATULA_SCOOP_CLEARANCE_M = 0.015   # scoop start this far before the pancake's near edge
SPATULA_RAISE_M = 0.04              # lift the blade (tip's lower face) this high before turning it
SPATULA_CARRIED_LIFT_M = 0.010      # the pancake is on the blade once it is this far above its rest
SPATULA_LIFTING_M = 0.003           # a pancake this far up over the blade is being lifted: go on lifting
SPATULA_POSITION_TOLERANCE_M = 0.004
SPATULA_DESCEND_RADIUS_M = 0.015    # this close to the scoop start (horizontally), go straight down to it
SPATULA_FLAT_PITCH_RAD = 0.05       # a blade turned less than this is still flat
SPATULA_TURN_END_RAD = float(np.radians(150.0))   # turn the blade tip-up this far at most


def servo(current: Pose, target: Pose) -> np.ndarray:
    """Normalised action (6,) moving the TCP from `current` towards `target`, each part scaled
    uniformly so that it stays within one control step's limits (its direction is kept)."""
    translation = (target.position - current.position) / MAX_TRANSLATION_PER_STEP_M
    rotation = quat_to_axis_angle(quat_multiply(target.quaternion, quat_conjugate(current.quaternion)))
    rotation = np.asarray(rotation) / MAX_ROTATION_PER_STEP_RAD
    return np.concatenate([_within_unit(translation), _within_unit(rotation)])


def _within_unit(vector: np.ndarray) -> np.ndarray:
    largest = float(np.max(np.abs(vector)))
    return vector / largest if largest > 1.0 else vector


def _tcp(task: ModelTask, state: torch.Tensor) -> Pose:
    with torch.no_grad():
        return to_pose(tcp_matrix(task.model, state))


def _pose_of(matrix: torch.Tensor) -> Pose:
    return to_pose(matrix.detach())


# --- Peg-Insertion --------------------------------------------------------------------------------

def peg_insertion_guess(task: PegInsertion, state: torch.Tensor) -> np.ndarray:
    """Line the peg's tip up over the hole (position and yaw, tool vertical), then push it in; a tip
    below the block's top but outside the hole (M lets it through the wall) rises first."""
    tcp = _tcp(task, state)
    with torch.no_grad():
        hole = _pose_of(task.hole_top())
        tip = hole.apply(task.tip_in_hole(state).numpy())
        yaw_error = float(task.yaw_error(state))
    yaw_error = wrap_symmetric(yaw_error, HOLE_SYMMETRY_RAD)
    lateral = hole.position[:2] - tip[:2]
    aligned = np.linalg.norm(lateral) < PEG_ALIGNED_LATERAL_M and abs(yaw_error) < PEG_ALIGNED_YAW_RAD
    in_hole = tip[2] < hole.position[2] and np.max(np.abs(lateral)) < task.objects.hole_block.clearance_m
    if aligned or in_hole:
        goal_z = hole.position[2] - INSERTION_DEPTH_M - PEG_OVERSHOOT_DEPTH_M
    else:
        goal_z = hole.position[2] + PRE_INSERT_HEIGHT_M
    tip_goal = np.array([*hole.position[:2], goal_z])
    tool_yaw = yaw_of(tcp.rotation) - yaw_error
    return servo(tcp, Pose(tcp.position + (tip_goal - tip), quat_multiply(yaw_quat(tool_yaw), GRIPPER_DOWN_QUAT)))


# --- Needle-Threading -----------------------------------------------------------------------------

def needle_threading_guess(task: NeedleThreading, state: torch.Tensor) -> np.ndarray:
    """Turn the tool so the tip segment points along the eye's axis, bring the tip to a point in
    front of the eye on that axis, then push it through."""
    tcp = _tcp(task, state)
    with torch.no_grad():
        eye = _pose_of(task.eye())
        points, direction = task.tip_side_in_eye(state)
    tip_local, direction = points[-1].numpy(), eye.rotation @ direction.numpy()
    axis = eye.rotation @ EYE_AXIS
    turn = rotation_between(direction, axis)
    lateral = np.linalg.norm(tip_local[1:])
    aligned = lateral < THREAD_ALIGNED_LATERAL_M and np.linalg.norm(turn) < THREAD_ALIGNED_ANGLE_RAD
    entering = tip_local[0] > -0.5 * PRE_THREAD_DISTANCE_M and lateral < THREAD_ENTERING_LATERAL_M
    depth = THROUGH_DEPTH_M + THREAD_OVERSHOOT_M if (aligned or entering) else -PRE_THREAD_DISTANCE_M
    tip_goal = eye.position + depth * axis
    goal_quaternion = quat_multiply(axis_angle_to_quat(turn), tcp.quaternion)
    tip_in_tcp = tcp.inverse().apply(eye.apply(tip_local))
    goal = Pose(tip_goal - Pose(tcp.position, goal_quaternion).rotation @ tip_in_tcp, goal_quaternion)
    return servo(tcp, goal)


# --- Spatula-Flipping -----------------------------------------------------------------------------

def spatula_flipping_guess(task: SpatulaFlipping, state: torch.Tensor) -> np.ndarray:
    """Approach, slide the blade under the pancake below the table's surface, lift, turn tip-up until
    the pancake falls over; the stage is read from where the blade and the pancake are."""
    tcp = _tcp(task, state)
    with torch.no_grad():
        pancake_matrix = task.pancake(state)
        pancake, tip, spatula = (_pose_of(m) for m in (pancake_matrix, task.blade_tip(state),
                                                         held_matrix(task.model, state)))
        lift = float(task.lift_m(state))
    if turn_angle_rad(pancake.rotation[:, 2]) >= FLIP_ANGLE_RAD:
        return np.zeros(6)                                             # done: hold still
    lane = _Lane.of(task, pancake_matrix)
    tip_to_tcp = tip.inverse().compose(tcp)
    if lift > SPATULA_CARRIED_LIFT_M:
        rotation = spatula.rotation
        pitch = float(np.arctan2(rotation[2, 0], rotation[2, 2]))      # blade tip-up angle, up to pi
        if pitch < SPATULA_FLAT_PITCH_RAD and tip.position[2] < SPATULA_RAISE_M - SPATULA_POSITION_TOLERANCE_M:
            return servo(tcp, lane.flat(tip.position[:2], SPATULA_RAISE_M).compose(tip_to_tcp))
        return servo(tcp, _turned_tip_up(spatula, pitch).compose(task.model.object_in_tcp.inverse()))
    return servo(tcp, lane.tip_goal(tip.position, lift > SPATULA_LIFTING_M).compose(tip_to_tcp))


def _turned_tip_up(spatula: Pose, pitch_rad: float) -> Pose:
    """The spatula turned one step further tip-up about its blade's back end (the handle's foot)."""
    step = min(MAX_ROTATION_PER_STEP_RAD, max(SPATULA_TURN_END_RAD - pitch_rad, 0.0))
    axis = spatula.rotation[:, 1]                                      # the blade's width direction
    return Pose(spatula.position, quat_multiply(axis_angle_to_quat(-step * axis), spatula.quaternion))


class _Lane:
    """The blade's straight path under the pancake: along u, the pancake's face direction nearest the
    nominal blade direction (M's pancake is a square box), from the scoop start to the slide's end."""

    def __init__(self, yaw_rad: float, centre: np.ndarray, half_side_m: float, end: np.ndarray,
                 slide_height_m: float, blade_half_width_m: float):
        self.u = np.array([np.cos(yaw_rad), np.sin(yaw_rad), 0.0])
        self.v, self.yaw_rad = np.array([-self.u[1], self.u[0], 0.0]), yaw_rad
        self.centre = np.array([centre[0], centre[1], 0.0])
        self.start_along_m = -(half_side_m + SPATULA_SCOOP_CLEARANCE_M)
        self.end_along_m = float(np.dot(end - self.centre, self.u))
        self.slide_height_m = slide_height_m
        self.covered_m = blade_half_width_m - half_side_m     # sideways offsets at which the blade covers the box
        self.overlap_m = blade_half_width_m + half_side_m     # and at which it is under some of it

    @staticmethod
    def of(task: SpatulaFlipping, pancake_matrix: torch.Tensor) -> _Lane:
        """The lane of model_tasks' cost (blade_yaw, slide_end), slid in deeper under a tilted box."""
        pancake = _pose_of(pancake_matrix)
        box = np.asarray(pancake_box_part(task.objects.pancake).half_extents)
        corners = pancake.apply(box * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]))
        under = corners[:, 2].min() - task.objects.spatula.blade_thickness_m - SPATULA_UNDER_MARGIN_M
        with torch.no_grad():
            yaw, end = float(task.blade_yaw(pancake_matrix)), task.slide_end(pancake_matrix).numpy()
        return _Lane(yaw, pancake.position, box[0], end, min(end[2], under), 0.5 * task.objects.spatula.blade_width_m)

    def point(self, along_m: float, height_m: float) -> np.ndarray:
        return self.centre + along_m * self.u + np.array([0.0, 0.0, height_m])

    def flat(self, xy: np.ndarray, height_m: float) -> Pose:
        """Blade tip pose at (xy, height), blade flat along the lane."""
        return Pose(np.array([xy[0], xy[1], height_m]), yaw_quat(self.yaw_rad))

    def tip_goal(self, tip: np.ndarray, lifting: bool) -> Pose:
        """Where the blade tip goes next while the pancake is not (yet) carried; `lifting`: it is partly
        up on the blade. The tip is the blade's front: a tip behind the scoop start keeps the whole blade
        behind the pancake."""
        along, side = float(np.dot(tip - self.centre, self.u)), abs(float(np.dot(tip - self.centre, self.v)))
        low = tip[2] < self.slide_height_m + 0.5 * SPATULA_POSITION_TOLERANCE_M
        slid_in = along > self.end_along_m - SPATULA_POSITION_TOLERANCE_M
        behind = along < self.start_along_m + SPATULA_DESCEND_RADIUS_M
        start = self.point(self.start_along_m, 0.0)
        under = slid_in or (lifting and not behind)
        if side < self.covered_m and under and tip[2] < SPATULA_RAISE_M - SPATULA_POSITION_TOLERANCE_M:
            return self.flat(tip[:2], SPATULA_RAISE_M)                     # lift the pancake
        if low and side < self.overlap_m and along > self.start_along_m - SPATULA_DESCEND_RADIUS_M:
            return self.flat(self.point(self.end_along_m, 0.0)[:2], self.slide_height_m)   # slide in (square up)
        if behind:
            return self.flat(start[:2], self.slide_height_m)               # down below the surface, behind it
        return self.flat(start[:2], SPATULA_HOVER_M)                       # travel round above the table


GUESSES = {'needle_threading': needle_threading_guess, 'peg_insertion': peg_insertion_guess,
           'spatula_flipping': spatula_flipping_guess}


def guess_action(task: ModelTask, state: torch.Tensor) -> np.ndarray:
    """The scripted servo's normalised 6-d action at `state` for `task`."""
    return GUESSES[task.name](task, state)
