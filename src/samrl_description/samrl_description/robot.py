"""The parts of the robots that the model M renders: the Panda's hand and fingers.

Meshes: the collision meshes of the Franka Emika Panda from pybullet_data (franka_panda/meshes/
collision/hand.obj and finger.obj), Apache-2.0, copied unchanged into meshes/panda/ with their
LICENSE.txt. Poses follow franka_panda/panda.urdf: the tool centre point (panda_grasptarget) is
0.105 m along the hand's z axis with the hand's orientation; each finger's frame sits 0.0584 m
along the hand's z and slides along the hand's +y (left) or -y (right) by half the opening; the
right finger's mesh is turned by pi about z.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samrl_description.geometry import IDENTITY_QUAT, Pose, yaw_quat

PANDA_MESH_DIR = Path(__file__).resolve().parent / 'meshes' / 'panda'
PANDA_MESH_LICENCE = PANDA_MESH_DIR / 'LICENSE.txt'       # Apache-2.0
TCP_IN_HAND_Z_M = 0.105           # panda_grasptarget_hand joint
FINGER_IN_HAND_Z_M = 0.0584       # panda_finger_joint1/2 origin
FINGER_MAX_OPENING_M = 0.08       # both fingers together (0.04 m each)


@dataclass(frozen=True)
class MeshPart:
    """A rigid part of a robot: its mesh file and the mesh frame's pose in the tool centre point's frame."""

    name: str
    mesh: Path
    pose_in_tcp: Pose


def panda_hand_parts(opening_m: float) -> list[MeshPart]:
    """The hand and both fingers for a finger opening (m, distance between the fingers)."""
    if not 0.0 <= opening_m <= FINGER_MAX_OPENING_M:
        raise ValueError(f'finger opening must be in [0, {FINGER_MAX_OPENING_M}] m, got {opening_m}')
    half = 0.5 * opening_m
    finger_z = FINGER_IN_HAND_Z_M - TCP_IN_HAND_Z_M
    identity = np.array(IDENTITY_QUAT)
    return [MeshPart('panda_hand', PANDA_MESH_DIR / 'hand.obj', Pose(np.array([0.0, 0.0, -TCP_IN_HAND_Z_M]), identity)),
            MeshPart('panda_leftfinger', PANDA_MESH_DIR / 'finger.obj', Pose(np.array([0.0, half, finger_z]), identity)),
            MeshPart('panda_rightfinger', PANDA_MESH_DIR / 'finger.obj',
                     Pose(np.array([0.0, -half, finger_z]), yaw_quat(np.pi)))]


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (N, 3) float64 in metres, triangles (M, 3) int32) of a Wavefront OBJ file.

    Polygons are fanned into triangles; texture and normal indices are ignored.
    """
    vertices, faces = [], []
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == 'v':
            vertices.append([float(v) for v in fields[1:4]])
        elif fields[0] == 'f':
            corners = [int(f.split('/')[0]) - 1 for f in fields[1:]]
            faces.extend([corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1))
    if not vertices or not faces:
        raise ValueError(f'{path}: no vertices or faces')
    return np.array(vertices), np.array(faces, dtype=np.int32)
