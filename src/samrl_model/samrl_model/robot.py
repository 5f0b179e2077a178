"""The robot in M: the Panda's hand and fingers as rendered (occluding) objects.

Their poses follow from the tool centre point and the finger opening (samrl_description.robot,
from the Panda's URDF), both known from the robot's state, so they are not latents: M renders
them so that the target's mask loses the pixels the hand covers, as the camera's does.
"""

from __future__ import annotations

import functools

import numpy as np

from samrl_description.geometry import Pose
from samrl_description.robot import FINGER_MAX_OPENING_M, panda_hand_parts, read_obj
from samrl_model.meshes import Mesh
from samrl_model.render import ObjectParams, object_params

HAND_RGB = (0.85, 0.85, 0.85)      # panda.urdf's white under PyBullet's lighting
HAND_PART_NAMES = tuple(part.name for part in panda_hand_parts(0.0))


@functools.cache
def _part_mesh(path: str) -> Mesh:
    vertices, faces = read_obj(path)
    return Mesh(vertices.astype(np.float32), faces.astype(np.int32))


def hand_objects(tcp: Pose, opening_m: float) -> dict[str, ObjectParams]:
    """The hand and both fingers at tool centre point `tcp` (world) with the fingers `opening_m` apart."""
    opening_m = float(np.clip(opening_m, 0.0, FINGER_MAX_OPENING_M))   # joint readings overshoot slightly
    objects = {}
    for part in panda_hand_parts(opening_m):
        pose = tcp.compose(part.pose_in_tcp)
        objects[part.name] = object_params(_part_mesh(str(part.mesh)), pose.position, pose.quaternion, HAND_RGB)
    return objects
