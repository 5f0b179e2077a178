"""The tracked model's error against the sim bridge's privileged state (monitoring only).

The bridge's SimState gives every PyBullet body's base pose and joint positions in creation order;
a task object's base frame is M's object frame (sim_adapter.placements reads the same poses), so
its latents follow directly. SimState names bodies by their URDF names and the task objects, built
in code, have none: which body is which comes from a World of the task, built once. That is the
only use of the simulator here, imported when the first SimState arrives; a robot has no SimState.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samrl_common.conversions import pose_from_msg
from samrl_description.geometry import Pose
from samrl_description.objects import SceneObjects
from samrl_description.tasks import Placement
from samrl_model.real2sim.coarse import YAW_PERIOD_RAD
from samrl_model.real2sim.errors import errors
from samrl_model.render import ObjectParams, objects_from_placements

NO_THREAD = float('nan')        # thread_link_mm of objects that are not the thread


@dataclass(frozen=True)
class SimBodies:
    """The bodies of a task's world in SimState order, and the index of each task object."""

    names: tuple[str, ...]
    objects: dict[str, int]


@dataclass(frozen=True)
class TrackingError:
    position_mm: float
    rotation_deg: float         # up to the object's symmetry where it has one
    thread_link_mm: float       # NO_THREAD unless the object is the thread


def sim_bodies(task: str) -> SimBodies:
    """The body order of the bridge's world for `task` (ImportError where there is no simulator)."""
    from samrl_sim.world import World, read_body_states
    world = World(task)
    try:
        return SimBodies(tuple(read_body_states(world.client).names), dict(world.task.object_bodies()))
    finally:
        world.close()


def object_truth(sim, bodies: SimBodies, name: str, specs: SceneObjects = SceneObjects()) -> ObjectParams:
    """The latents of task object `name` in `sim` (a SimState: body_names, body_poses, joint_counts,
    joint_positions); ValueError if the state does not describe the expected world."""
    if tuple(sim.body_names) != bodies.names or len(sim.body_poses) != len(bodies.names):
        raise ValueError(f'SimState has bodies {list(sim.body_names)}, the task\'s world {list(bodies.names)}')
    counts = np.asarray(sim.joint_counts, dtype=int)
    if len(counts) != len(bodies.names) or counts.sum() != len(sim.joint_positions):
        raise ValueError('SimState: joint_counts do not match the bodies and joint positions')
    body = bodies.objects[name]
    first = int(counts[:body].sum())
    angles = np.asarray(sim.joint_positions[first:first + counts[body]], dtype=float)
    pose = pose_from_msg(sim.body_poses[body])
    pose = Pose.checked(pose.position, pose.quaternion)
    if not np.all(np.isfinite(angles)):
        raise ValueError(f'SimState: joint positions of {name} are not finite')
    placement = Placement(pose, tuple(angles) if len(angles) else None)
    return objects_from_placements({name: placement}, specs)[name]


def tracking_error(estimate: ObjectParams, truth: ObjectParams, name: str) -> TrackingError:
    """Position (mm), rotation (deg, up to symmetry) and the thread's mean link error (mm)."""
    figures = errors(estimate, truth, YAW_PERIOD_RAD.get(name))
    return TrackingError(figures['translation_mm'], figures.get('rotation_sym_deg', figures['rotation_deg']),
                         figures.get('thread_mm', NO_THREAD))
