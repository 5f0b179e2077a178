"""Every object of the three tasks: dimensions (m), masses (kg), friction coefficients and colours.

This module is the single source of truth for object geometry and physical parameters: the
PyBullet "real world" (samrl_sim.bodies) and the differentiable model (samrl_model: nimblephysics
and Mitsuba) both build their objects from these dataclasses and from the box layouts below. The paper gives no sizes (FACTS.md), so the numbers are
ours: household scale, enlarged where PyBullet needs it (the needle's eye is 10 mm wide so that a
3 mm thread can be threaded at a 240 Hz physics rate).

Friction values are PyBullet lateral friction coefficients; PyBullet multiplies the two bodies'
coefficients at a contact.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Rgba = tuple[float, float, float, float]
IDENTITY_QUAT = (0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class BoxPart:
    """One box of a compound body: half extents (m) and pose in the body frame."""

    half_extents: tuple[float, float, float]
    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float] = IDENTITY_QUAT


@dataclass(frozen=True)
class TableSpec:
    """Table top: a box whose upper face is the plane z = 0 of the world frame."""

    size_m: tuple[float, float, float] = (1.8, 1.6, 0.04)
    centre_xy_m: tuple[float, float] = (0.45, 0.0)
    lateral_friction: float = 0.7
    rgba: Rgba = (0.62, 0.52, 0.40, 1.0)


@dataclass(frozen=True)
class PegSpec:
    """Square peg held by the Panda; its long axis is the gripper's approach (z) axis."""

    side_m: float = 0.020
    length_m: float = 0.100
    grasp_depth_m: float = 0.020   # length of peg above the tool centre point (between the fingers)
    mass_kg: float = 0.05
    lateral_friction: float = 0.3
    rgba: Rgba = (0.85, 0.15, 0.12, 1.0)


@dataclass(frozen=True)
class HoleBlockSpec:
    """Block fixed to the table with a square through-hole; built from four boxes around the hole."""

    outer_side_m: float = 0.120
    height_m: float = 0.050
    clearance_m: float = 0.002     # per side: hole side = peg side + 2 * clearance
    lateral_friction: float = 0.3
    rgba: Rgba = (0.20, 0.35, 0.80, 1.0)

    def hole_side_m(self, peg: PegSpec) -> float:
        return peg.side_m + 2.0 * self.clearance_m


@dataclass(frozen=True)
class NeedleSpec:
    """Vertical needle fixed to the table; its eye is a square ring (four boxes) at the top.

    Needle frame: origin on the table under the shaft, z up, the eye's axis along x.
    """

    shaft_width_m: float = 0.014       # along y
    thickness_m: float = 0.004         # along x, the eye's axis
    shaft_height_m: float = 0.160      # from the table to the bottom of the eye opening
    eye_opening_m: float = 0.010       # inner side of the square eye (y and z)
    eye_bar_m: float = 0.004           # width of the ring's bars
    rgba: Rgba = (0.75, 0.75, 0.78, 1.0)

    @property
    def eye_centre_height_m(self) -> float:
        return self.shaft_height_m + 0.5 * self.eye_opening_m


@dataclass(frozen=True)
class ThreadSpec:
    """Thread: a chain of capsules joined by stiff revolute joints (axes alternate y and z).

    Link 0 (the base of the multibody) is the grasped segment; `tip_links` segments continue
    towards the free tip along +x of the grasped segment and `tail_links` segments towards -x.
    The joints are position-controlled at randomised bend angles with a small maximum torque,
    which makes the thread keep a random shape yet bend on contact.
    """

    segment_length_m: float = 0.010
    radius_m: float = 0.0015
    tip_links: int = 3
    tail_links: int = 7
    segment_mass_kg: float = 0.002
    joint_max_torque_nm: float = 0.05
    lateral_friction: float = 0.2
    rgba: Rgba = (0.95, 0.80, 0.10, 1.0)


@dataclass(frozen=True)
class SpatulaSpec:
    """Turner held by the Panda: a handle along the gripper's z axis and a flat blade.

    Spatula frame: origin where the handle meets the blade, handle along +z (towards the
    gripper), blade along +x centred on the plane z = 0.
    """

    handle_length_m: float = 0.160
    handle_width_m: float = 0.020
    handle_thickness_m: float = 0.010
    blade_length_m: float = 0.110
    blade_width_m: float = 0.100
    blade_thickness_m: float = 0.003
    grasp_depth_m: float = 0.030    # length of handle above the tool centre point
    mass_kg: float = 0.12
    lateral_friction: float = 0.05   # a greased steel turner: x 1.5 pancake = 0.075
    rgba: Rgba = (0.25, 0.25, 0.25, 1.0)


@dataclass(frozen=True)
class PancakeSpec:
    """Pancake: a thin cylinder whose rim is bevelled top and bottom (a convex hull).

    The bevel (30 degrees from the horizontal) is the soft rounded rim of a real pancake; with
    the low-friction blade it makes the pancake's edge ride up onto the blade instead of being
    pushed away (pushing a free body on a table slides it unless the contact's upward force per
    unit push exceeds 1 / table friction). Vertices come from `hull_vertices` so both simulators
    build the same shape.
    """

    radius_m: float = 0.045
    thickness_m: float = 0.012
    bevel_height_m: float = 0.005
    bevel_width_m: float = 0.009
    rim_segments: int = 24
    mass_kg: float = 0.04
    lateral_friction: float = 1.5      # x 0.7 table = 1.05 with the table
    rgba: Rgba = (0.90, 0.70, 0.35, 1.0)
    visual_segments: int = 32          # sides of the drawn cylinder (0.2 mm inside the circle at mid-side)

    @property
    def visual_radius_m(self) -> float:
        """The pancake is drawn (seen by a camera) as a plain cylinder through the bevel's middle:
        `visual_segments` sides at this radius, `thickness_m` high; it collides with the hull."""
        return self.radius_m - 0.5 * self.bevel_width_m

    def hull_vertices(self) -> np.ndarray:
        """(4 * rim_segments, 3) vertices in the pancake frame (origin at its centre, z = normal)."""
        angles = np.linspace(0.0, 2.0 * np.pi, self.rim_segments, endpoint=False)
        half = 0.5 * self.thickness_m
        inner = self.radius_m - self.bevel_width_m
        rings = [(inner, -half), (self.radius_m, -half + self.bevel_height_m),
                 (self.radius_m, half - self.bevel_height_m), (inner, half)]
        return np.array([[r * np.cos(a), r * np.sin(a), z] for r, z in rings for a in angles])


@dataclass(frozen=True)
class SceneObjects:
    """All object specs in one place (the differentiable model reads this)."""

    table: TableSpec = field(default_factory=TableSpec)
    peg: PegSpec = field(default_factory=PegSpec)
    hole_block: HoleBlockSpec = field(default_factory=HoleBlockSpec)
    needle: NeedleSpec = field(default_factory=NeedleSpec)
    thread: ThreadSpec = field(default_factory=ThreadSpec)
    spatula: SpatulaSpec = field(default_factory=SpatulaSpec)
    pancake: PancakeSpec = field(default_factory=PancakeSpec)


# The task objects a segmentation model tells apart; label i + 1 in a label image is
# OBJECT_CLASSES[i] and 0 is the background (table, arms, everything else).
OBJECT_CLASSES = ('thread', 'needle', 'peg', 'hole_block', 'spatula', 'pancake')


# --- box layouts of the compound bodies (both simulators build these) ---------------------------

def table_part(spec: TableSpec) -> tuple[BoxPart, tuple[float, float, float]]:
    """The table's box in its own frame (centred) and that frame's position in the world (m)."""
    half = tuple(0.5 * s for s in spec.size_m)
    return BoxPart(half, (0.0, 0.0, 0.0)), (*spec.centre_xy_m, -half[2])


def peg_parts(spec: PegSpec) -> list[BoxPart]:
    """The peg as one box, frame at its centre, long axis along z."""
    return [BoxPart((0.5 * spec.side_m, 0.5 * spec.side_m, 0.5 * spec.length_m), (0.0, 0.0, 0.0))]


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


def spatula_parts(spec: SpatulaSpec) -> list[BoxPart]:
    """Handle along z above the origin and blade along +x in the plane z = 0 (an L-shaped turner)."""
    handle = BoxPart((0.5 * spec.handle_thickness_m, 0.5 * spec.handle_width_m, 0.5 * spec.handle_length_m),
                     (0.0, 0.0, 0.5 * spec.handle_length_m))
    blade = BoxPart((0.5 * spec.blade_length_m, 0.5 * spec.blade_width_m, 0.5 * spec.blade_thickness_m),
                    (0.5 * spec.blade_length_m, 0.0, 0.0))
    return [handle, blade]


@dataclass(frozen=True)
class ThreadJoint:
    """One revolute joint of the thread and the segment it moves.

    parent: -1 for the grasped segment (the base), k for the segment moved by joint k;
    origin_x_m: the joint's position along x of the parent's frame (its end); the child's frame
    sits at the joint, its capsule centred capsule_x_m along x (half a segment outward).
    """

    parent: int
    origin_x_m: float
    axis: tuple[float, float, float]
    capsule_x_m: float


def thread_joints(spec: ThreadSpec) -> list[ThreadJoint]:
    """The thread's kinematic tree: joints 0..tip_links-1 continue towards the tip (+x), the rest
    towards the tail (-x); the axes alternate z and y so random bends are 3-D."""
    length = spec.segment_length_m
    joints = []
    for i in range(spec.tip_links + spec.tail_links):
        first_of_side = i in (0, spec.tip_links)
        direction = 1.0 if i < spec.tip_links else -1.0
        joints.append(ThreadJoint(parent=-1 if first_of_side else i - 1,
                                  origin_x_m=direction * (0.5 * length if first_of_side else length),
                                  axis=(0.0, 0.0, 1.0) if i % 2 == 0 else (0.0, 1.0, 0.0),
                                  capsule_x_m=direction * 0.5 * length))
    return joints
