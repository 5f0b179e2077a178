"""Triangle meshes of the task objects, built from the same specs as the PyBullet world.

Every mesh is given in its body's frame as samrl_description.objects defines it (the frame PyBullet
reports as the base pose, since the sim builds its bodies from the same description), so a pose
places the mesh directly: p_world = R(q) p_mesh + t. Compound bodies are the union of their
closed parts (samrl_description.objects' box layouts); faces are
wound counter-clockwise seen from outside (outward normals), which the renderer relies on
because its area emitters shine from the front side only.

The thread is articulated: each vertex belongs to one link (0 = the grasped base segment,
k = the segment of joint k - 1) and is expressed in that link's frame; `thread_link_poses` maps
the joint angles to the link poses along samrl_description.objects.thread_joints (differentiably).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from samrl_description.geometry import quat_to_matrix
from samrl_description.objects import (BoxPart, PancakeSpec, SceneObjects, TableSpec, ThreadSpec, hole_block_parts,
                                       needle_parts, peg_parts, spatula_parts, table_part, thread_joints)
from samrl_model.rotations import fixed_axis_rotation, homogeneous

CAPSULE_AROUND_SEGMENTS = 12     # vertices around a thread capsule's circumference
CAPSULE_CAP_RINGS = 3            # latitude rings per hemispherical cap (pole excluded)
OBJECT_NAMES = ('table', 'peg', 'hole_block', 'needle', 'thread', 'spatula', 'pancake')

# Unit cube corners (+-1) and its 12 outward triangles.
_CUBE_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
_CUBE_FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5],      # -x, +x
                        [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],      # -y, +y
                        [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]],     # -z, +z
                       dtype=np.int32)


@dataclass(frozen=True)
class Mesh:
    """Triangle mesh: vertices (N, 3) float32 in metres, faces (M, 3) int32, outward winding.

    `link_of_vertex` (N,) int32 names the link whose frame each vertex is expressed in (articulated
    bodies only; None = rigid, all vertices in the base frame).
    """

    vertices: np.ndarray
    faces: np.ndarray
    link_of_vertex: np.ndarray | None = None

    @property
    def extent_m(self) -> np.ndarray:
        """Axis-aligned size of the vertex cloud (m)."""
        return self.vertices.max(axis=0) - self.vertices.min(axis=0)


def concatenate(meshes: list[Mesh]) -> Mesh:
    """Union of meshes (faces re-indexed); link indices are kept if every part has them."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]).astype(np.int32)
    vertices = np.concatenate([m.vertices for m in meshes]).astype(np.float32)
    links = None
    if all(m.link_of_vertex is not None for m in meshes):
        links = np.concatenate([m.link_of_vertex for m in meshes]).astype(np.int32)
    return Mesh(vertices, faces, links)


def box_mesh(part: BoxPart) -> Mesh:
    """Closed box with the part's half extents, placed at the part's pose in the body frame."""
    rotation = quat_to_matrix(np.asarray(part.quaternion, dtype=float))
    corners = (_CUBE_CORNERS * np.asarray(part.half_extents)) @ rotation.T + np.asarray(part.position)
    return Mesh(corners.astype(np.float32), _CUBE_FACES.copy())


def compound_box_mesh(parts: list[BoxPart]) -> Mesh:
    return concatenate([box_mesh(p) for p in parts])


def capsule_mesh(radius_m: float, length_m: float, centre_x_m: float = 0.0) -> Mesh:
    """Closed capsule along x: a cylinder of `length_m` with hemispherical caps (PyBullet's capsule)."""
    # Latitude profile from the -x pole to the +x pole: (x offset, ring radius) per ring.
    cap = np.linspace(0.0, 0.5 * np.pi, CAPSULE_CAP_RINGS + 1)[1:]          # angle from the pole
    half = 0.5 * length_m
    profile = [(-half - radius_m * np.cos(a), radius_m * np.sin(a)) for a in cap]
    profile += [(half + radius_m * np.cos(a), radius_m * np.sin(a)) for a in cap[::-1]]
    around = np.linspace(0.0, 2.0 * np.pi, CAPSULE_AROUND_SEGMENTS, endpoint=False)
    rings = np.array([[x, r * np.cos(a), r * np.sin(a)] for x, r in profile for a in around])
    poles = np.array([[-half - radius_m, 0.0, 0.0], [half + radius_m, 0.0, 0.0]])
    vertices = np.concatenate([rings, poles]) + np.array([centre_x_m, 0.0, 0.0])
    return Mesh(vertices.astype(np.float32), _tube_faces(len(profile), CAPSULE_AROUND_SEGMENTS, closed=True))


def _tube_faces(n_rings: int, n_around: int, closed: bool) -> np.ndarray:
    """Faces of stacked rings (ring i has vertices i * n_around + j), rings ordered along +axis.

    With `closed`, two pole vertices follow the rings (first, last) and close the ends with fans.
    The axis is x for capsules and z for the pancake: both give outward faces for rings whose
    angular coordinate turns counter-clockwise about the axis.
    """
    faces = []
    for i in range(n_rings - 1):
        for j in range(n_around):
            a, b = i * n_around + j, i * n_around + (j + 1) % n_around
            c, d = a + n_around, b + n_around
            faces += [[a, b, d], [a, d, c]]
    if closed:
        first, last = n_rings * n_around, n_rings * n_around + 1
        top = (n_rings - 1) * n_around
        for j in range(n_around):
            faces.append([first, (j + 1) % n_around, j])
            faces.append([last, top + j, top + (j + 1) % n_around])
    return np.array(faces, dtype=np.int32)


def pancake_mesh(spec: PancakeSpec) -> Mesh:
    """The pancake as the camera sees it: the prism of PancakeSpec.visual_radius_m and visual_segments.

    PyBullet collides with the bevelled hull (PancakeSpec.hull_vertices) but draws this prism,
    like a URDF's visual and collision shapes; M renders what the camera sees. With the hull
    (4.5 mm wider at its rim) a resting pancake's mask agreed with the camera's at IoU 0.91-0.93.
    """
    angles = np.linspace(0.0, 2.0 * np.pi, spec.visual_segments, endpoint=False)
    half, radius = 0.5 * spec.thickness_m, spec.visual_radius_m
    rings = [[radius * np.cos(a), radius * np.sin(a), z] for z in (-half, half) for a in angles]
    vertices = np.concatenate([rings, [[0.0, 0.0, -half], [0.0, 0.0, half]]])
    return Mesh(vertices.astype(np.float32), _tube_faces(2, spec.visual_segments, closed=True))


def table_mesh(spec: TableSpec) -> Mesh:
    """Table box centred on its base frame (see `table_pose`)."""
    return box_mesh(table_part(spec)[0])


def table_pose(spec: TableSpec) -> tuple[np.ndarray, np.ndarray]:
    """(position, quaternion xyzw) of the table's base frame in the world: top face at z = 0."""
    return np.array(table_part(spec)[1]), np.array([0.0, 0.0, 0.0, 1.0])


# --- thread ----------------------------------------------------------------------------------------

def thread_mesh(spec: ThreadSpec) -> Mesh:
    """One capsule per link in that link's frame: the base centred, links shifted half a segment outward."""
    centres = [0.0] + [joint.capsule_x_m for joint in thread_joints(spec)]
    parts = []
    for link, centre in enumerate(centres):
        capsule = capsule_mesh(spec.radius_m, spec.segment_length_m, centre)
        parts.append(Mesh(capsule.vertices, capsule.faces, np.full(len(capsule.vertices), link, dtype=np.int32)))
    return concatenate(parts)


def thread_link_poses(angles: torch.Tensor, base_pose: torch.Tensor,
                      spec: ThreadSpec = ThreadSpec()) -> torch.Tensor:
    """(1 + n_joints, 4, 4) world poses of the thread's base and links (PyBullet's link frames).

    angles: (n_joints,) joint angles (rad) in PyBullet's joint order; base_pose: (4, 4) pose of the
    grasped segment. Link i = parent @ translate(origin_i) @ rotate(axis_i, angle_i), as in
    PyBullet's revolute joints whose frames coincide with the link frames.
    """
    poses = [base_pose]
    no_rotation = torch.eye(3, dtype=base_pose.dtype)
    no_translation = torch.zeros(3, dtype=base_pose.dtype)
    for i, joint in enumerate(thread_joints(spec)):
        origin = torch.tensor([joint.origin_x_m, 0.0, 0.0], dtype=base_pose.dtype)
        turn = fixed_axis_rotation(joint.axis, angles[i].to(base_pose.dtype))
        poses.append(poses[joint.parent + 1] @ homogeneous(no_rotation, origin) @ homogeneous(turn, no_translation))
    return torch.stack(poses)


def object_mesh(name: str, objects: SceneObjects = SceneObjects()) -> Mesh:
    """Mesh of a named object (OBJECT_NAMES) in its PyBullet base frame."""
    builders = {
        'table': lambda: table_mesh(objects.table),
        'peg': lambda: compound_box_mesh(peg_parts(objects.peg)),
        'hole_block': lambda: compound_box_mesh(hole_block_parts(objects.hole_block, objects.peg)),
        'needle': lambda: compound_box_mesh(needle_parts(objects.needle)),
        'thread': lambda: thread_mesh(objects.thread),
        'spatula': lambda: compound_box_mesh(spatula_parts(objects.spatula)),
        'pancake': lambda: pancake_mesh(objects.pancake),
    }
    if name not in builders:
        raise ValueError(f'unknown object {name!r}; expected one of {OBJECT_NAMES}')
    return builders[name]()


def object_rgb(name: str, objects: SceneObjects = SceneObjects()) -> tuple[float, float, float]:
    """The object's RGB colour (0..1) from its spec."""
    return tuple(getattr(objects, name).rgba[:3])
