"""The "real" side of Real2Sim in simulation: a segmented RGB-D view of a task object from PyBullet.

PyBullet (TinyRenderer) stands in for the RealSense, and its segmentation for Mask R-CNN, so the
model (Mitsuba) is compared with images from a different renderer: the gap is real. The camera
is sent through the camera arm's IK and safety checks, as a real view would be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as pb

from samrl_sim.camera import CameraIntrinsics
from samrl_sim.commands import CameraPoseGoal
from samrl_sim.geometry import Pose, look_at
from samrl_sim.world import World

# The object Real2Sim tracks in each task (the one whose state the policy needs).
TARGETS = {'needle_threading': 'thread', 'peg_insertion': 'hole_block', 'spatula_flipping': 'pancake'}
# Close views of each object: (distance from its centre in m, elevation, azimuth from +x in rad),
# chosen so the Panda's hand does not hide it and the camera arm (at -y) reaches the pose.
VIEWS = {'thread': (0.20, np.radians(60.0), np.radians(-30.0)),
         'hole_block': (0.35, np.radians(35.0), np.radians(-90.0)),
         'pancake': (0.30, np.radians(35.0), np.radians(-90.0))}
RGB_SCALE = 1.0 / 255.0


@dataclass(frozen=True)
class Observation:
    """rgb HxWx3 in [0, 1]; depth_m HxW (0 = no return); mask HxW bool of `target`."""

    rgb: np.ndarray
    depth_m: np.ndarray
    mask: np.ndarray
    intrinsics: CameraIntrinsics
    camera_pose: Pose
    target: str


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
    """Move the camera arm to `view` (default: a close view of the object) and take a segmented RGB-D frame."""
    view = view or close_view(world, name)
    moved = world.move_camera(CameraPoseGoal(tuple(view.position), tuple(view.quaternion)))
    if not moved.ok:
        raise RuntimeError(f'camera cannot take the view of {name}: {moved.reason}')
    image = world.render(width, height)
    mask = image.seg == world.segmentation_ids()[name]
    return Observation(image.rgb.astype(np.float32) * RGB_SCALE, image.depth_m, mask,
                       world.camera_intrinsics(width, height), world.camera_pose(), name)
