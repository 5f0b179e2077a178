"""Every object of the three tasks: dimensions (m), masses (kg), friction coefficients and colours.

This module is the single source of truth for object geometry and physical parameters: the
PyBullet "real world" (bodies.py) and the differentiable model (samrl_model, nimblephysics) both
build their objects from these dataclasses. The paper gives no sizes (FACTS.md), so the numbers are
ours: household scale, enlarged where PyBullet needs it (the needle's eye is 10 mm wide so that a
3 mm thread can be threaded at a 240 Hz physics rate).

Friction values are PyBullet lateral friction coefficients; PyBullet multiplies the two bodies'
coefficients at a contact.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Rgba = tuple[float, float, float, float]


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


def label_image(seg: np.ndarray, object_bodies: dict[str, int]) -> np.ndarray:
    """PyBullet body-id segmentation -> uint8 class labels (0 background, i + 1 for OBJECT_CLASSES[i])."""
    labels = np.zeros(seg.shape, np.uint8)
    for name, body in object_bodies.items():
        labels[seg == body] = OBJECT_CLASSES.index(name) + 1
    return labels
