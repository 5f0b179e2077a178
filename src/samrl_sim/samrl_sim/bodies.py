"""PyBullet bodies built from samrl_description's specs and box layouts; every function takes the client id."""
from __future__ import annotations

import numpy as np
import pybullet as pb

from samrl_description.geometry import IDENTITY_QUAT, Pose, quat_from_euler
from samrl_description.objects import (BoxPart, HoleBlockSpec, NeedleSpec, PancakeSpec, PegSpec, SpatulaSpec,
                                       TableSpec, ThreadSpec, hole_block_parts, needle_parts, peg_parts,
                                       spatula_parts, table_part, thread_joints)

STATIC_MASS_KG = 0.0   # PyBullet treats mass 0 as a fixed body
CAPSULE_TO_X_QUAT = tuple(quat_from_euler(0.0, np.pi / 2, 0.0))  # capsules are along z; turn to x


def _compound_boxes(client: int, parts: list[BoxPart], rgba, mass: float, pose: Pose) -> int:
    """One rigid body made of several boxes (collision and visual shapes alike)."""
    kwargs = dict(shapeTypes=[pb.GEOM_BOX] * len(parts),
                  halfExtents=[p.half_extents for p in parts],
                  physicsClientId=client)
    positions = [p.position for p in parts]
    orientations = [p.quaternion for p in parts]
    collision = pb.createCollisionShapeArray(collisionFramePositions=positions,
                                             collisionFrameOrientations=orientations, **kwargs)
    visual = pb.createVisualShapeArray(rgbaColors=[rgba] * len(parts), visualFramePositions=positions,
                                       visualFrameOrientations=orientations, **kwargs)
    position, quaternion = pose.as_tuple()
    return pb.createMultiBody(mass, collision, visual, position, quaternion, physicsClientId=client)


def _set_friction(client: int, body: int, friction: float, link: int = -1) -> None:
    pb.changeDynamics(body, link, lateralFriction=friction, physicsClientId=client)


def create_table(client: int, spec: TableSpec) -> int:
    part, centre = table_part(spec)
    body = _compound_boxes(client, [part], spec.rgba, STATIC_MASS_KG, Pose(np.array(centre), np.array(IDENTITY_QUAT)))
    _set_friction(client, body, spec.lateral_friction)
    return body


def create_peg(client: int, spec: PegSpec) -> int:
    """Peg with its frame at the centre; long axis along z."""
    body = _compound_boxes(client, peg_parts(spec), spec.rgba, spec.mass_kg, Pose.identity())
    _set_friction(client, body, spec.lateral_friction)
    return body


def create_hole_block(client: int, block: HoleBlockSpec, peg: PegSpec) -> int:
    body = _compound_boxes(client, hole_block_parts(block, peg), block.rgba, STATIC_MASS_KG, Pose.identity())
    _set_friction(client, body, block.lateral_friction)
    return body


def create_needle(client: int, spec: NeedleSpec) -> int:
    return _compound_boxes(client, needle_parts(spec), spec.rgba, STATIC_MASS_KG, Pose.identity())


def create_thread(client: int, spec: ThreadSpec) -> int:
    """Chain multibody: base = grasped segment, then one link per joint of objects.thread_joints.

    The base frame is at the grasped segment's centre, the capsule along its x axis; every other
    link frame sits at its joint with the capsule shifted half a segment outward.
    """
    joints = thread_joints(spec)
    n_links = len(joints)
    offsets = [(j.capsule_x_m, 0.0, 0.0) for j in joints]
    shapes = {offset: _capsule_shapes(client, spec, offset) for offset in set(offsets) | {(0.0, 0.0, 0.0)}}
    base_collision, base_visual = shapes[(0.0, 0.0, 0.0)]
    body = pb.createMultiBody(
        baseMass=spec.segment_mass_kg, baseCollisionShapeIndex=base_collision, baseVisualShapeIndex=base_visual,
        linkMasses=[spec.segment_mass_kg] * n_links,
        linkCollisionShapeIndices=[shapes[o][0] for o in offsets],
        linkVisualShapeIndices=[shapes[o][1] for o in offsets],
        linkPositions=[(j.origin_x_m, 0.0, 0.0) for j in joints], linkOrientations=[IDENTITY_QUAT] * n_links,
        linkInertialFramePositions=offsets, linkInertialFrameOrientations=[IDENTITY_QUAT] * n_links,
        linkParentIndices=[j.parent + 1 for j in joints],       # PyBullet: 0 = base, k = link k - 1
        linkJointTypes=[pb.JOINT_REVOLUTE] * n_links, linkJointAxis=[j.axis for j in joints],
        physicsClientId=client)
    for link in range(-1, n_links):
        _set_friction(client, body, spec.lateral_friction, link)
    return body


def _capsule_shapes(client: int, spec: ThreadSpec, offset) -> tuple[int, int]:
    """Collision and visual capsule of one thread segment along x, centred at `offset`."""
    common = dict(radius=spec.radius_m, physicsClientId=client)
    collision = pb.createCollisionShape(pb.GEOM_CAPSULE, height=spec.segment_length_m,
                                        collisionFramePosition=offset,
                                        collisionFrameOrientation=CAPSULE_TO_X_QUAT, **common)
    visual = pb.createVisualShape(pb.GEOM_CAPSULE, length=spec.segment_length_m, rgbaColor=spec.rgba,
                                  visualFramePosition=offset, visualFrameOrientation=CAPSULE_TO_X_QUAT, **common)
    return collision, visual


def create_spatula(client: int, spec: SpatulaSpec) -> int:
    body = _compound_boxes(client, spatula_parts(spec), spec.rgba, spec.mass_kg, Pose.identity())
    _set_friction(client, body, spec.lateral_friction)
    return body


def create_pancake(client: int, spec: PancakeSpec) -> int:
    vertices = spec.hull_vertices().tolist()
    collision = pb.createCollisionShape(pb.GEOM_MESH, vertices=vertices, physicsClientId=client)
    vertices, normals, indices = _prism_mesh(spec.visual_radius_m, spec.thickness_m, spec.visual_segments)
    visual = pb.createVisualShape(pb.GEOM_MESH, vertices=vertices, normals=normals, indices=indices,
                                  rgbaColor=spec.rgba, physicsClientId=client)
    body = pb.createMultiBody(spec.mass_kg, collision, visual, physicsClientId=client)
    _set_friction(client, body, spec.lateral_friction)
    return body


def _prism_mesh(radius_m: float, height_m: float, sides: int) -> tuple[list, list, list]:
    """A regular prism about z, as PyBullet's (vertices, normals, indices): two rims of `sides` vertices.

    Not GEOM_CYLINDER: PyBullet draws that through a hull grown by a 1 mm collision margin, which
    put the drawn pancake's top 0.9 mm above the spec (M's render at the true pose was 1.3 mm
    deeper than the camera's on every pancake pixel, and a tilt 5 deg off fitted better). Each
    normal points from the centre through its vertex, as PyBullet shades its own convex shapes, so
    the pancake keeps the look the shipped Mask R-CNN was trained on (flat-shaded caps are brighter,
    and its pancake masks lost about 5 points of IoU on them).
    """
    angles = np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    half = 0.5 * height_m
    vertices = [[radius_m * np.cos(a), radius_m * np.sin(a), z] for z in (half, -half) for a in angles]
    normals = [list(np.asarray(v) / np.linalg.norm(v)) for v in vertices]
    indices = []
    for j in range(1, sides - 1):                     # caps: fans, facing out
        indices += [0, j, j + 1, sides, sides + j + 1, sides + j]
    for j in range(sides):                            # sides: one quad per face
        top, next_top = j, (j + 1) % sides
        indices += [top, sides + j, sides + next_top, top, sides + next_top, next_top]
    return vertices, normals, indices
