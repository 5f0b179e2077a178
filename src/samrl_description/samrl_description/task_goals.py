"""What each task asks for, in one place for both worlds that judge it (no simulator here).

The PyBullet tasks (samrl_sim.tasks.*, whose docstrings are the specs) and the model M's goals
(samrl_policy.model_tasks) import from here: step budgets, success thresholds, the constants of
the dense rewards and the rewards themselves as functions of evaluate()'s dict, and the geometric
helpers both evaluate() implementations share. The end-effector action's limits are here too, so
that an episode in M scales and bounds actions as the gymnasium environments do.
"""
from __future__ import annotations

import numpy as np

from samrl_description.scene import BLADE_YAW_RAD

MAX_DENSE_REWARD = 5.0                      # every task's dense reward lies in [0, 5]
STEP_BUDGETS = {'needle_threading': 60, 'peg_insertion': 40, 'spatula_flipping': 60}   # control steps

# --- the action (the same numbers as samrl_sim.safety.EeLimits; a test keeps them equal) -----------

MAX_TRANSLATION_PER_STEP_M = 0.02           # per axis, per control step (0.2 m/s at 10 Hz)
MAX_ROTATION_PER_STEP_RAD = 0.10            # per rotation-vector component, per control step
TOOL_WORKSPACE_M = ((0.20, -0.45, 0.0), (0.85, 0.45, 0.60))   # lower, upper corner of the TCP's box
# Scaled actions stop this far inside the box: at the wall itself the arm's tracking error left the
# tool a hair outside, where even a zero step is refused and an actor pushing outwards is stuck.
TOOL_WALL_MARGIN_M = 0.001
GRIPPER_WIDTH_RANGE_M = (0.0, 0.08)         # the gripper number -1..1 maps linearly onto this opening

# --- Peg-Insertion ------------------------------------------------------------------------------

INSERTION_DEPTH_M = 0.030                   # tip this far below the block's top counts as inserted
PRE_INSERT_HEIGHT_M = 0.020                 # reward's reach point above the hole
ALIGN_RADIUS_M = 0.010                      # yaw is rewarded once the tip is this close to the hole's axis
HOLE_SYMMETRY_RAD = np.pi / 2               # the square hole repeats every quarter turn
PEG_REACH_SCALE_PER_M = 5.0

# --- Needle-Threading ---------------------------------------------------------------------------

THROUGH_DEPTH_M = 0.010                     # tip this far beyond the eye's mid-plane counts as threaded
PRE_THREAD_DISTANCE_M = 0.030               # reward's reach point in front of the eye
THREAD_REACH_SCALE_PER_M = 10.0
EYE_AXIS = np.array([1.0, 0.0, 0.0])        # threading direction in the eye frame (aligned with the world)

# --- Spatula-Flipping ---------------------------------------------------------------------------

LIFT_HEIGHT_M = 0.025                       # the pancake's centre must rise this much at some time
FLIP_ANGLE_RAD = float(np.radians(150.0))   # and its normal turn this far from up
SCOOP_CLEARANCE_M = 0.015                   # blade tip this far beyond the pancake's rim before sliding in
SPATULA_REACH_SCALE_PER_M = 10.0
UP = np.array([0.0, 0.0, 1.0])


def blade_direction(blade_yaw_rad: float = BLADE_YAW_RAD) -> np.ndarray:
    """Horizontal unit direction of a blade (handle to free edge) turned `blade_yaw_rad` about world z
    (default: the task's nominal blade direction)."""
    return np.array([np.cos(blade_yaw_rad), np.sin(blade_yaw_rad), 0.0])


def wrap_symmetric(angle: float, period: float) -> float:
    """Angle wrapped to [-period / 2, period / 2)."""
    return float((angle + 0.5 * period) % period - 0.5 * period)


def plane_crossing(points_local: np.ndarray) -> np.ndarray | None:
    """(y, z) where a polyline (n, 3), given in a frame whose x is a plane's normal, first crosses the
    plane x = 0 going towards +x; None if it never does (the thread through the eye's mid-plane)."""
    for start, end in zip(points_local[:-1], points_local[1:]):
        if start[0] < 0.0 <= end[0]:
            t = -start[0] / (end[0] - start[0])
            return (start + t * (end - start))[1:]
    return None


def turn_angle_rad(normal: np.ndarray) -> float:
    """Angle (rad) between a unit normal and the world's up direction."""
    return float(np.arccos(np.clip(np.dot(normal, UP), -1.0, 1.0)))


# --- dense rewards: functions of evaluate()'s dict, read info['success'] (ManiSkill's split) -------

def peg_insertion_reward(info: dict) -> float:
    """Peg-Insertion's shaped reward in [0, MAX_DENSE_REWARD] (samrl_sim.tasks.peg_insertion)."""
    if info['success']:
        return MAX_DENSE_REWARD
    # Stage 1: bring the tip above the hole.
    reward = 1.0 - np.tanh(PEG_REACH_SCALE_PER_M * info['distance_to_pre_insert_m'])
    # Stage 2: align the yaw once near the hole's axis.
    if info['lateral_offset_m'] < ALIGN_RADIUS_M:
        reward += 1.0 - abs(info['yaw_error_rad']) / (0.5 * HOLE_SYMMETRY_RAD)
    # Stage 3: push the peg into the hole.
    if info['laterally_inside'] and info['insertion_depth_m'] > 0.0:
        reward += 2.0 * min(info['insertion_depth_m'] / INSERTION_DEPTH_M, 1.0)
    return float(reward)


def needle_threading_reward(info: dict) -> float:
    """Needle-Threading's shaped reward in [0, MAX_DENSE_REWARD] (samrl_sim.tasks.needle_threading)."""
    if info['success']:
        return MAX_DENSE_REWARD
    # Stage 1: bring the tip in front of the eye.
    reward = 1.0 - np.tanh(THREAD_REACH_SCALE_PER_M * info['distance_to_pre_thread_m'])
    # Stage 2: point the tip segment along the eye's axis.
    reward += 1.0 - info['tip_angle_rad'] / np.pi
    # Stage 3: push it through the opening.
    if info['crossing_inside_eye']:
        reward += 2.0 * min(info['tip_depth_m'] / THROUGH_DEPTH_M, 1.0)
    return float(reward)


def spatula_flipping_reward(info: dict) -> float:
    """Spatula-Flipping's shaped reward in [0, MAX_DENSE_REWARD] (samrl_sim.tasks.spatula_flipping)."""
    if info['success']:
        return MAX_DENSE_REWARD
    # Stage 1: bring the blade to the pancake.
    reward = 1.0 - np.tanh(SPATULA_REACH_SCALE_PER_M * info['tip_to_scoop_start_m'])
    # Stage 2: lift the pancake.
    reward += min(info['max_lift_m'] / LIFT_HEIGHT_M, 1.0)
    # Stage 3: turn it over.
    if info['lifted']:
        reward += 2.0 * min(info['turn_angle_rad'] / FLIP_ANGLE_RAD, 1.0)
    return float(reward)


DENSE_REWARDS = {'needle_threading': needle_threading_reward, 'peg_insertion': peg_insertion_reward,
                 'spatula_flipping': spatula_flipping_reward}
