"""The three tasks as the system sees them without a simulator: names, objects, grasps, nominal scene.

What each task is (randomisation, success, reward, step budget) is specified in its own file
under samrl_sim/tasks/; this module holds what perception, the model M and the policies need
to know about a task on a real robot too: which objects are in the scene, which one Real2Sim
fits, which one the Panda holds and how, and a nominal scene (the middle of the sim's
randomisation ranges) from which the model starts before it has seen anything.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samrl_description.geometry import IDENTITY_QUAT, Pose, quat_multiply, yaw_quat
from samrl_description.objects import SceneObjects, ThreadSpec
from samrl_description.scene import BLADE_YAW_RAD, GRIPPER_DOWN_QUAT, NEEDLE_POSITION_M

TASK_NAMES = ('needle_threading', 'peg_insertion', 'spatula_flipping')
# The object classes in each task's scene (one instance each), in OBJECT_CLASSES order.
TASK_OBJECTS: dict[str, tuple[str, ...]] = {'needle_threading': ('thread', 'needle'),
                                            'peg_insertion': ('peg', 'hole_block'),
                                            'spatula_flipping': ('spatula', 'pancake')}
# The object Real2Sim fits in each task (the one whose state the policy needs to see).
TARGETS = {'needle_threading': 'thread', 'peg_insertion': 'hole_block', 'spatula_flipping': 'pancake'}
# The object the Panda holds (welded to its tool centre point in both simulators).
HELD_OBJECTS = {'needle_threading': 'thread', 'peg_insertion': 'peg', 'spatula_flipping': 'spatula'}
# Finger opening (m) held through an episode: closed on the 3 mm thread, 20 mm peg, 10 mm handle.
GRIPPER_WIDTHS_M = {'needle_threading': 0.003, 'peg_insertion': 0.02, 'spatula_flipping': 0.010}
FLIP_ABOUT_X_QUAT = (1.0, 0.0, 0.0, 0.0)     # the spatula hangs handle up from the downward tool
# Nominal tool centre point (m) and tool yaw about world z (rad): the middle of each task's start ranges.
NOMINAL_TCP = {'needle_threading': ((0.38, 0.0, 0.27), 0.0),
               'peg_insertion': ((0.45, 0.0, 0.25), 0.0),
               'spatula_flipping': ((0.475, -0.25, 0.27), BLADE_YAW_RAD)}
NOMINAL_HOLE_BLOCK_M = (0.525, 0.0, 0.0)     # bottom centre, yaw 0
NOMINAL_PANCAKE_XY_M = (0.47, 0.0)           # centre, yaw 0, resting on the table


def check_task(name: str) -> str:
    """`name` if it is a task; ValueError listing the tasks otherwise."""
    if name not in TASK_NAMES:
        raise ValueError(f'unknown task {name!r}; expected one of {", ".join(TASK_NAMES)}')
    return name


def grasp_pose(task: str, objects: SceneObjects = SceneObjects()) -> Pose:
    """Pose of the held object's frame in the tool centre point's frame."""
    check_task(task)
    if task == 'peg_insertion':
        peg = objects.peg
        return Pose(np.array([0.0, 0.0, 0.5 * peg.length_m - peg.grasp_depth_m]), np.array(IDENTITY_QUAT))
    if task == 'spatula_flipping':
        spatula = objects.spatula
        return Pose(np.array([0.0, 0.0, spatula.handle_length_m - spatula.grasp_depth_m]),
                    np.array(FLIP_ABOUT_X_QUAT))
    return Pose.identity()      # the thread's grasped segment is centred between the fingertips


def tool_pose(position_m, yaw_rad: float) -> Pose:
    """Tool centre point at `position_m`, pointing down, turned by `yaw_rad` about world z."""
    return Pose(np.asarray(position_m, dtype=float), quat_multiply(yaw_quat(yaw_rad), GRIPPER_DOWN_QUAT))


@dataclass(frozen=True)
class Placement:
    """Where an object is: its frame's pose in the world and, for the thread, its joint angles (rad)."""

    pose: Pose
    joint_angles: tuple[float, ...] | None = None


def nominal_scene(task: str, objects: SceneObjects = SceneObjects()) -> dict[str, Placement]:
    """Every object of `task` at its nominal placement (the table is not included)."""
    check_task(task)
    tcp = tool_pose(*NOMINAL_TCP[task])
    held = HELD_OBJECTS[task]
    scene = {held: Placement(tcp.compose(grasp_pose(task, objects)), _straight(objects.thread)
                             if held == 'thread' else None)}
    if task == 'needle_threading':
        scene['needle'] = Placement(Pose(np.array(NEEDLE_POSITION_M), np.array(IDENTITY_QUAT)))
    elif task == 'peg_insertion':
        scene['hole_block'] = Placement(Pose(np.array(NOMINAL_HOLE_BLOCK_M), np.array(IDENTITY_QUAT)))
    else:
        centre = (*NOMINAL_PANCAKE_XY_M, 0.5 * objects.pancake.thickness_m)
        scene['pancake'] = Placement(Pose(np.array(centre), np.array(IDENTITY_QUAT)))
    return {name: scene[name] for name in TASK_OBJECTS[task]}


def _straight(spec: ThreadSpec) -> tuple[float, ...]:
    return (0.0,) * (spec.tip_links + spec.tail_links)
