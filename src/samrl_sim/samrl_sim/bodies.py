"""PyBullet bodies built from the specs in objects.py; every function takes the client id explicitly."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as pb

from samrl_sim.geometry import Pose, quat_from_euler
from samrl_sim.objects import (HoleBlockSpec, NeedleSpec, PancakeSpec, PegSpec, SpatulaSpec,
                               TableSpec, ThreadSpec)

STATIC_MASS_KG = 0.0   # PyBullet treats mass 0 as a fixed body
IDENTITY_QUAT = (0.0, 0.0, 0.0, 1.0)
CAPSULE_TO_X_QUAT = tuple(quat_from_euler(0.0, np.pi / 2, 0.0))  # capsules are along z; turn to x


@dataclass(frozen=True)
class BoxPart:
    """One box of a compound body: half extents (m) and pose in the body frame."""

    half_extents: tuple[float, float, float]
    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float] = IDENTITY_QUAT


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
    half = tuple(0.5 * s for s in spec.size_m)
    centre = Pose(np.array([*spec.centre_xy_m, -half[2]]), np.array(IDENTITY_QUAT))
    body = _compound_boxes(client, [BoxPart(half, (0.0, 0.0, 0.0))], spec.rgba, STATIC_MASS_KG, centre)
    _set_friction(client, body, spec.lateral_friction)
    return body


def create_peg(client: int, spec: PegSpec) -> int:
    """Peg with its frame at the centre; long axis along z."""
    half = (0.5 * spec.side_m, 0.5 * spec.side_m, 0.5 * spec.length_m)
    body = _compound_boxes(client, [BoxPart(half, (0.0, 0.0, 0.0))], spec.rgba, spec.mass_kg, Pose.identity())
    _set_friction(client, body, spec.lateral_friction)
    return body


def hole_block_parts(block: HoleBlockSpec, peg: PegSpec) -> list[BoxPart]:
    """Four boxes around a centred square hole; block frame origin at the bottom centre."""
    hole = block.hole_side_m(peg)
    wall = 0.5 * (block.outer_side_m - hole)
    half_h = 0.5 * block.height_m
    offset = 0.5 * (hole + wall)
    long_half, short_half = 0.5 * block.outer_side_m, 0.5 * wall
    return [BoxPart((long_half, short_half, half_h), (0.0, offset, half_h)),
            BoxPart((long_half, short_half, half_h), (0.0, -offset, half_h)),
            BoxPart((short_half, 0.5 * hole, half_h), (offset, 0.0, half_h)),
            BoxPart((short_half, 0.5 * hole, half_h), (-offset, 0.0, half_h))]


def create_hole_block(client: int, block: HoleBlockSpec, peg: PegSpec) -> int:
    body = _compound_boxes(client, hole_block_parts(block, peg), block.rgba, STATIC_MASS_KG, Pose.identity())
    _set_friction(client, body, block.lateral_friction)
    return body


def needle_parts(spec: NeedleSpec) -> list[BoxPart]:
    """Shaft plus the eye's ring (two side bars and a top bar); needle frame on the table."""
    half_t = 0.5 * spec.thickness_m
    eye_half = 0.5 * spec.eye_opening_m
    bar_half = 0.5 * spec.eye_bar_m
    ring_half_width = eye_half + spec.eye_bar_m
    side_y = eye_half + bar_half
    side_z = spec.shaft_height_m + eye_half
    top_z = spec.shaft_height_m + spec.eye_opening_m + bar_half
    return [BoxPart((half_t, 0.5 * spec.shaft_width_m, 0.5 * spec.shaft_height_m),
                    (0.0, 0.0, 0.5 * spec.shaft_height_m)),
            BoxPart((half_t, bar_half, eye_half), (0.0, side_y, side_z)),
            BoxPart((half_t, bar_half, eye_half), (0.0, -side_y, side_z)),
            BoxPart((half_t, ring_half_width, bar_half), (0.0, 0.0, top_z))]


def create_needle(client: int, spec: NeedleSpec) -> int:
    return _compound_boxes(client, needle_parts(spec), spec.rgba, STATIC_MASS_KG, Pose.identity())


def create_thread(client: int, spec: ThreadSpec) -> int:
    """Chain multibody: base = grasped segment, links 0..tip_links-1 towards the tip, then the tail.

    The base frame is at the grasped segment's centre, the capsule along its x axis. Every other
    link frame sits at its joint (the end of the parent segment) with the capsule shifted half a
    segment outward; joint axes alternate z and y so random bends are 3-D.
    """
    length = spec.segment_length_m
    n_links = spec.tip_links + spec.tail_links
    parents, positions, axes, offsets = [], [], [], []
    for i in range(n_links):
        first_of_side = i in (0, spec.tip_links)
        direction = 1.0 if i < spec.tip_links else -1.0
        parents.append(0 if first_of_side else i)          # 0 = base, k = link k-1
        positions.append((direction * (0.5 * length if first_of_side else length), 0.0, 0.0))
        axes.append((0.0, 0.0, 1.0) if i % 2 == 0 else (0.0, 1.0, 0.0))
        offsets.append((direction * 0.5 * length, 0.0, 0.0))
    shapes = {offset: _capsule_shapes(client, spec, offset) for offset in set(offsets) | {(0.0, 0.0, 0.0)}}
    base_collision, base_visual = shapes[(0.0, 0.0, 0.0)]
    body = pb.createMultiBody(
        baseMass=spec.segment_mass_kg, baseCollisionShapeIndex=base_collision, baseVisualShapeIndex=base_visual,
        linkMasses=[spec.segment_mass_kg] * n_links,
        linkCollisionShapeIndices=[shapes[o][0] for o in offsets],
        linkVisualShapeIndices=[shapes[o][1] for o in offsets],
        linkPositions=positions, linkOrientations=[IDENTITY_QUAT] * n_links,
        linkInertialFramePositions=offsets, linkInertialFrameOrientations=[IDENTITY_QUAT] * n_links,
        linkParentIndices=parents, linkJointTypes=[pb.JOINT_REVOLUTE] * n_links, linkJointAxis=axes,
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


def spatula_parts(spec: SpatulaSpec) -> list[BoxPart]:
    """Handle along z above the origin and blade along +x in the plane z = 0 (an L-shaped turner)."""
    handle = BoxPart((0.5 * spec.handle_thickness_m, 0.5 * spec.handle_width_m, 0.5 * spec.handle_length_m),
                     (0.0, 0.0, 0.5 * spec.handle_length_m))
    blade = BoxPart((0.5 * spec.blade_length_m, 0.5 * spec.blade_width_m, 0.5 * spec.blade_thickness_m),
                    (0.5 * spec.blade_length_m, 0.0, 0.0))
    return [handle, blade]


def create_spatula(client: int, spec: SpatulaSpec) -> int:
    body = _compound_boxes(client, spatula_parts(spec), spec.rgba, spec.mass_kg, Pose.identity())
    _set_friction(client, body, spec.lateral_friction)
    return body


def create_pancake(client: int, spec: PancakeSpec) -> int:
    vertices = spec.hull_vertices().tolist()
    collision = pb.createCollisionShape(pb.GEOM_MESH, vertices=vertices, physicsClientId=client)
    visual = pb.createVisualShape(pb.GEOM_CYLINDER, radius=spec.radius_m - 0.5 * spec.bevel_width_m,
                                  length=spec.thickness_m, rgbaColor=spec.rgba, physicsClientId=client)
    body = pb.createMultiBody(spec.mass_kg, collision, visual, physicsClientId=client)
    _set_friction(client, body, spec.lateral_friction)
    return body
