"""The PyBullet world seen through the model M's types (sim-side: benchmarks, tests and data only).

Nothing a node imports uses this module: on a robot there is no World. Here the simulator
supplies true states to compare M with, segmented views in place of the camera and Mask R-CNN,
and realistic starting states for benchmarks.
"""

from __future__ import annotations

import numpy as np
import pybullet as pb
import torch

from samrl_description.geometry import Pose, look_at
from samrl_description.tasks import Placement
from samrl_model.physics.model import PhysicsModel
from samrl_model.physics.sync import model_state
from samrl_model.real2sim.observation import Observation
from samrl_model.render import ObjectParams, objects_from_placements
from samrl_model.rotations import pose_matrix_from_quat
from samrl_sim.commands import CameraPoseGoal
from samrl_sim.world import World

# Close views of each object: (distance from its centre in m, elevation, azimuth from +x in rad),
# chosen so the Panda does not hide it and the camera arm (at -y) reaches the pose. Searched on seeds
# 100-109 (`samrl bench real2sim --view close`, 0.3 m, elevations 30-65 deg, azimuths -150..30 deg):
# at 0.2 m / 60 / -30 deg the Panda's arm hid the thread's tail (link error 6.0 mm mean, 0.91 here);
# at 0.3 m / 35 / -90 deg the spatula hid the pancake in some seeds (none at 65 deg).
VIEWS = {'thread': (0.30, np.radians(30.0), np.radians(-150.0)),
         'hole_block': (0.35, np.radians(35.0), np.radians(-90.0)),
         'pancake': (0.30, np.radians(65.0), np.radians(-90.0))}
RGB_SCALE = 1.0 / 255.0


# --- true state ------------------------------------------------------------------------------------

def joint_states(world: World, body: int) -> tuple[np.ndarray, np.ndarray]:
    """Angles (rad) and rates (rad/s) of every joint of a body, in PyBullet's joint order."""
    client = world.client
    count = pb.getNumJoints(body, physicsClientId=client)
    states = pb.getJointStates(body, range(count), physicsClientId=client) if count else []
    return np.array([s[0] for s in states]), np.array([s[1] for s in states])


def placements(world: World) -> dict[str, Placement]:
    """Where the world has every task object (base poses; the thread's joint angles)."""
    bodies = world.task.object_bodies()
    result = {}
    for name, pose in world.object_poses().items():
        angles, _ = joint_states(world, bodies[name])
        result[name] = Placement(pose, tuple(angles) if len(angles) else None)
    return result


def objects_from_world(world: World, requires_grad: bool = False) -> tuple[dict[str, ObjectParams], torch.Tensor]:
    """Latents of the table and every task object of the world, and its camera pose (4, 4)."""
    objects = objects_from_placements(placements(world), world.config.objects, requires_grad)
    camera = world.camera_pose()
    return objects, pose_matrix_from_quat(camera.position, camera.quaternion)


def _twist(world: World, body: int) -> tuple[np.ndarray, np.ndarray]:
    linear, angular = pb.getBaseVelocity(body, physicsClientId=world.client)
    return np.asarray(linear, dtype=float), np.asarray(angular, dtype=float)


def state_from_sim(model: PhysicsModel, sim: World, thread_rest_rad: np.ndarray | None = None) -> torch.Tensor:
    """M's state equal to the world's (see physics.sync.model_state); static bodies are moved too.

    thread_rest_rad: spring rest angles of the thread (the sim's motor targets, e.g. task.bends);
    None takes the current joint angles.
    """
    bodies = sim.task.object_bodies()
    twists = {name: _twist(sim, body) for name, body in bodies.items()}
    thread = joint_states(sim, bodies['thread']) if 'thread' in bodies else None
    return model_state(model, sim.object_poses(), twists, thread, thread_rest_rad)


# --- views -------------------------------------------------------------------------------------------

def object_centre(world: World, name: str) -> np.ndarray:
    """Centre of the axis-aligned bounding box of all links of a task object (m, world frame)."""
    body = world.segmentation_ids()[name]
    boxes = [pb.getAABB(body, link, physicsClientId=world.client)
             for link in range(-1, pb.getNumJoints(body, physicsClientId=world.client))]
    lower = np.min([b[0] for b in boxes], axis=0)
    upper = np.max([b[1] for b in boxes], axis=0)
    return 0.5 * (lower + upper)


def close_view(world: World, name: str) -> Pose:
    centre = object_centre(world, name)
    distance, elevation, azimuth = VIEWS[name]
    offset = distance * np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                  np.sin(elevation)])
    return look_at(centre + offset, centre)


def capture(world: World, name: str, width: int, height: int, view: Pose | None = None) -> Observation:
    """Move the camera arm to `view` (default: a close view of the object) and take a segmented
    RGB-D frame: PyBullet (TinyRenderer) stands in for the RealSense and its segmentation for Mask
    R-CNN, so M (Mitsuba) is compared with images from a different renderer. The camera goes
    through the camera arm's IK and safety checks, as a real view would."""
    view = view or close_view(world, name)
    moved = world.move_camera(CameraPoseGoal(tuple(view.position), tuple(view.quaternion)))
    if not moved.ok:
        raise RuntimeError(f'camera cannot take the view of {name}: {moved.reason}')
    return snapshot(world, name, width, height)


def snapshot(world: World, name: str, width: int, height: int) -> Observation:
    """A segmented RGB-D frame of `name` from wherever the camera is now (see capture)."""
    image = world.render(width, height)
    mask = image.seg == world.segmentation_ids()[name]
    return Observation(image.rgb.astype(np.float32) * RGB_SCALE, image.depth_m, mask,
                       world.camera_intrinsics(width, height), world.camera_pose(), name)
