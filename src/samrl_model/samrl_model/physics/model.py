"""The physics half of the differentiable model M (paper Sec. III-A): one nimblephysics world per task.

Each world is built from samrl_description's object specs, box layouts and grasps, arranged as
the task files of samrl_sim arrange them. What the sim does with a fixed constraint (the grasped object
welded to the Panda's tool centre point, TCP) is here a skeleton: the gripper is a
TranslationalJoint + EulerJoint pair at the TCP, driven by velocity (step.py), with the grasped
object welded to it. The Panda's links are not modelled (the sim disables their collisions with
the held object; they touch nothing else in these tasks).

State layout (nimble's world state: all positions, then all velocities, skeletons in build order):
    gripper: 3 TCP position (m, world) + 3 XYZ Euler angles q (rad), TCP rotation
             R = R_down Rx(q0) Ry(q1) Rz(q2) with R_down = samrl_description.scene.GRIPPER_DOWN_QUAT (tool z
             down; the tasks stay far from the singularity |q1| = pi/2); velocities: world linear
             velocity (m/s) and Euler rates (rad/s);
    needle_threading: + 10 thread joint angles (rad), the sim's joint order (3 to the tip, 7 tail);
    spatula_flipping: + pancake FreeJoint: body-frame rotation vector (rad), world position (m);
                      velocities: body-frame angular (rad/s), world linear (m/s).
Static bodies (table, needle, hole block) are welded skeletons whose pose is configuration, not
state (set_static_pose).

Friction: PyBullet multiplies the two bodies' coefficients, nimble takes the smaller one; each
body's coefficient is chosen so that the pair that matters in the task gets PyBullet's product.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import nimblephysics as nimble
import numpy as np

from samrl_description.geometry import Pose, quat_to_matrix
from samrl_description.objects import (
    BoxPart,
    PancakeSpec,
    SceneObjects,
    hole_block_parts,
    needle_parts,
    peg_parts,
    spatula_parts,
    table_part,
)
from samrl_description.scene import CONTROL_RATE_HZ, GRAVITY_M_S2, GRIPPER_DOWN_QUAT, NEEDLE_POSITION_M, PHYSICS_RATE_HZ
from samrl_description.tasks import check_task, grasp_pose
from samrl_model.physics.builder import ThreadDynamics, add_free_boxes, add_gripper, add_static_boxes, add_thread_links

PYBULLET_DEFAULT_FRICTION = 0.5      # lateral friction of a body whose friction the sim never sets (needle)
GRIPPER_DOFS = 6                     # TCP translation (3) + rotation (3), always the first dofs
IDENTITY_QUAT = np.array([0.0, 0.0, 0.0, 1.0])


@dataclass(frozen=True)
class ModelConfig:
    """Rates (Hz) of samrl_description.scene, the thread's joint springs, and the object specs."""

    physics_rate_hz: int = PHYSICS_RATE_HZ
    control_rate_hz: int = CONTROL_RATE_HZ
    thread: ThreadDynamics = field(default_factory=ThreadDynamics)
    objects: SceneObjects = field(default_factory=SceneObjects)

    @property
    def substeps(self) -> int:
        return self.physics_rate_hz // self.control_rate_hz

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz


# Tasks whose held tool M lets pass into the table. M's blade slides in under the box pancake a few
# mm below the table's surface: a stand-in for a thin turner pressed flat on the table. With the
# blade stopped by the table (and the sim's bevelled rim modelled by tilted boxes), nimble's box-box
# contact pushed the pancake along the table instead of lifting its edge onto the blade (seeds 100,
# 101, blade 0.5 mm above the table at 0.05-0.2 m/s, with or without nimble's sequential position
# updates); the pancake is a free body, so the blade still cannot pass through it.
TOOLS_THROUGH_TABLE = ('spatula_flipping',)


@dataclass
class PhysicsModel:
    """A task's nimble world plus what maps the sim's state and commands onto it."""

    task: str
    world: nimble.simulation.World
    config: ModelConfig
    held_object: str                 # name of the object welded to the gripper
    object_in_tcp: Pose              # its pose in the TCP frame (as the task attaches it)
    gripper_reference: np.ndarray    # R_down, 3x3: TCP rotation at zero Euler angles
    dof_names: list[str]
    tool_stopped_by_contacts: bool = True   # physics.step: the held object stops where contacts stop it

    @property
    def num_dofs(self) -> int:
        return self.world.getNumDofs()

    @property
    def state_size(self) -> int:
        return 2 * self.num_dofs

    def dof_slice(self, prefix: str) -> slice:
        """Position indices of the dofs whose name starts with `prefix` (contiguous by construction)."""
        indices = [i for i, name in enumerate(self.dof_names) if name.startswith(prefix)]
        return slice(indices[0], indices[-1] + 1)


def pancake_box_part(spec: PancakeSpec) -> BoxPart:
    """The pancake as a square box of the same thickness and footprint area (pi r^2).

    nimble 0.10.52 collides boxes, spheres, capsules and meshes, but its mesh-box test found no
    contact for the pancake's convex hull resting on the table (it fell through), and cylinders
    and sphere hulls are unsupported; the bevelled rim is therefore not modelled.
    """
    half_side = 0.5 * np.sqrt(np.pi) * spec.radius_m
    return BoxPart((half_side, half_side, 0.5 * spec.thickness_m), (0.0, 0.0, 0.0))


def _new_world(config: ModelConfig) -> nimble.simulation.World:
    world = nimble.simulation.World()
    world.setGravity(np.array([0.0, 0.0, -GRAVITY_M_S2]))
    world.setTimeStep(1.0 / config.physics_rate_hz)
    return world


def _add_table(world: nimble.simulation.World, objects: SceneObjects, friction: float) -> None:
    part, centre = table_part(objects.table)
    add_static_boxes(world, 'table', [part], Pose(np.array(centre), IDENTITY_QUAT), friction)


def build_model(task: str, config: ModelConfig = ModelConfig()) -> PhysicsModel:
    """The nimble world of `task` with every object at a nominal pose; sync.py copies the sim's state in."""
    builders = {'needle_threading': _build_needle_threading, 'peg_insertion': _build_peg_insertion,
                'spatula_flipping': _build_spatula_flipping}
    world = _new_world(config)
    held, extra_dofs = builders[check_task(task)](world, config)
    names = [f'gripper/{axis}' for axis in ('x', 'y', 'z', 'rx', 'ry', 'rz')] + extra_dofs
    return PhysicsModel(task, world, config, held, grasp_pose(task, config.objects),
                        quat_to_matrix(GRIPPER_DOWN_QUAT), names,
                        tool_stopped_by_contacts=task not in TOOLS_THROUGH_TABLE)


def _gripper(config: ModelConfig, task: str, name: str, parts: list[BoxPart], mass_kg: float,
             friction: float) -> nimble.dynamics.Skeleton:
    return add_gripper(quat_to_matrix(GRIPPER_DOWN_QUAT), grasp_pose(task, config.objects),
                       name, parts, mass_kg, friction)


def _build_needle_threading(world: nimble.simulation.World, config: ModelConfig) -> tuple[str, list[str]]:
    objects = config.objects
    thread = objects.thread
    # Pair that matters: thread on needle = thread x PyBullet's default (the needle's friction is unset).
    thread_friction = thread.lateral_friction * PYBULLET_DEFAULT_FRICTION
    gripper = _gripper(config, 'needle_threading', 'thread', [], thread.segment_mass_kg, thread_friction)
    n_joints = thread.tip_links + thread.tail_links
    add_thread_links(gripper, thread, config.thread, 1.0 / config.physics_rate_hz, np.zeros(n_joints),
                     thread_friction)
    world.addSkeleton(gripper)
    add_static_boxes(world, 'needle', needle_parts(objects.needle),
                     Pose(np.array(NEEDLE_POSITION_M), IDENTITY_QUAT), PYBULLET_DEFAULT_FRICTION)
    _add_table(world, objects, objects.table.lateral_friction)
    return 'thread', [f'thread/joint_{i}' for i in range(n_joints)]


def _build_peg_insertion(world: nimble.simulation.World, config: ModelConfig) -> tuple[str, list[str]]:
    objects = config.objects
    peg, block = objects.peg, objects.hole_block
    # Pair that matters: peg on the hole's walls = peg x block.
    peg_friction = peg.lateral_friction * block.lateral_friction
    world.addSkeleton(_gripper(config, 'peg_insertion', 'peg', peg_parts(peg), peg.mass_kg, peg_friction))
    add_static_boxes(world, 'hole_block', hole_block_parts(block, peg), Pose.identity(), block.lateral_friction)
    _add_table(world, objects, objects.table.lateral_friction)
    return 'peg', []


def _build_spatula_flipping(world: nimble.simulation.World, config: ModelConfig) -> tuple[str, list[str]]:
    objects = config.objects
    spatula, pancake = objects.spatula, objects.pancake
    # Pairs that matter: pancake on table (pancake x table) and blade under pancake (spatula x pancake).
    pancake_friction = pancake.lateral_friction * objects.table.lateral_friction
    spatula_friction = spatula.lateral_friction * pancake.lateral_friction
    world.addSkeleton(_gripper(config, 'spatula_flipping', 'spatula', spatula_parts(spatula),
                               spatula.mass_kg, spatula_friction))
    add_free_boxes(world, 'pancake', [pancake_box_part(pancake)], pancake.mass_kg, pancake_friction)
    _add_table(world, objects, pancake_friction)
    return 'spatula', [f'pancake/{axis}' for axis in ('rx', 'ry', 'rz', 'x', 'y', 'z')]
