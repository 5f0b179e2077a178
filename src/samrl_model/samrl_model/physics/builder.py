"""nimblephysics skeleton construction: static box bodies, the velocity-driven gripper, the thread chain.

nimblephysics 0.10.52 segfaults at interpreter exit when Python still holds a parent BodyNode or
Joint wrapper after its children's wrappers (seen here with a ShapeNode on a child body). Every
function below therefore drops the wrappers it created, children first, before returning, and
the rest of the package reaches bodies only through short-lived `skeleton.getBodyNode(i)` calls.
"""
from __future__ import annotations

from dataclasses import dataclass

import nimblephysics as nimble
import numpy as np

from samrl_description.geometry import Pose
from samrl_description.objects import BoxPart, ThreadSpec, thread_joints

GRIPPER_BODY_MASS_KG = 2.0           # each of the gripper's two bodies; heavy next to the 2-120 g objects
GRIPPER_BODY_INERTIA_KG_M2 = 0.2     # diagonal inertia of the gripper's rotating body: a stiff wrist
CAPSULE_TO_X = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # DART capsules lie along z


@dataclass(frozen=True)
class ThreadDynamics:
    """Joint springs standing in for the sim's position motors on the thread (objects.ThreadSpec).

    PyBullet's motors (max 0.05 N m, default gains) do not hold the bends rigidly: measured in
    the sim (seed 0), the first tail joint settles within 0.2 s at 0.36 rad below its target
    under the 7-link tail's weight (about 4.8e-3 N m), i.e. about 0.013 N m/rad; the default
    spring has that stiffness. (PyBullet's motor stiffness scales with each joint's effective
    inertia, so the tip-side joints sag more there than here.)

    nimble 0.10.52 integrates joint springs and damping explicitly (measured: a 1 N m/rad spring
    on the 2 g, 10 mm links diverges within 0.01 s even at 2.4 kHz), so each link's rotational
    inertia is raised to k (dt / spring_step_ratio)^2, putting a spring's period at
    2 pi / spring_step_ratio substeps. Mass, centre of mass and hence the static sag under
    gravity are unchanged; the thread answers gripper accelerations with a few ms lag. Damping
    is `damping_ratio` of critical for that inertia.
    """

    stiffness_nm_per_rad: float = 0.013
    spring_step_ratio: float = 0.5      # omega * dt of one joint's spring with the raised inertia
    damping_ratio: float = 0.5

    def link_inertia_kg_m2(self, spec: ThreadSpec, timestep_s: float) -> float:
        """Lower bound on each link's rotational inertia (kg m^2) about its centre of mass."""
        return self.stiffness_nm_per_rad * (timestep_s / self.spring_step_ratio) ** 2

    def damping_nms_per_rad(self, spec: ThreadSpec, timestep_s: float) -> float:
        inertia = self.link_inertia_kg_m2(spec, timestep_s)
        return 2.0 * self.damping_ratio * np.sqrt(self.stiffness_nm_per_rad * inertia)


def isometry(pose: Pose) -> nimble.math.Isometry3:
    """nimble transform of a samrl Pose (m, unit quaternion x y z w)."""
    return nimble.math.Isometry3(pose.rotation, np.asarray(pose.position, dtype=float))


def box_union_inertia(parts: list[BoxPart], mass_kg: float) -> np.ndarray:
    """3x3 inertia (kg m^2) about the body origin of boxes sharing `mass_kg` by volume.

    The origin is where PyBullet puts the inertial frame of every body here (no inertial offset
    is given to createMultiBody), so the model's bodies use the same centre of mass.
    """
    volumes = np.array([np.prod(2.0 * np.asarray(p.half_extents)) for p in parts])
    inertia = np.zeros((3, 3))
    for part, volume in zip(parts, volumes):
        m = mass_kg * volume / volumes.sum()
        size = 2.0 * np.asarray(part.half_extents)
        local = m / 12.0 * np.diag([size[1] ** 2 + size[2] ** 2, size[0] ** 2 + size[2] ** 2,
                                    size[0] ** 2 + size[1] ** 2])
        rotation = Pose(np.zeros(3), np.asarray(part.quaternion)).rotation
        r = np.asarray(part.position)
        inertia += rotation @ local @ rotation.T + m * (np.dot(r, r) * np.eye(3) - np.outer(r, r))
    return inertia


def _set_inertia(body, mass_kg: float, inertia: np.ndarray, com_m=(0.0, 0.0, 0.0)) -> None:
    body.setMass(mass_kg)
    body.setMomentOfInertia(inertia[0, 0], inertia[1, 1], inertia[2, 2], inertia[0, 1], inertia[0, 2], inertia[1, 2])
    body.setLocalCOM(np.asarray(com_m, dtype=float))


def _add_boxes(body, parts: list[BoxPart]) -> None:
    """Collision + visual box shapes on `body`, each at its pose in the body frame."""
    for part in parts:
        node = body.createShapeNode(nimble.dynamics.BoxShape(2.0 * np.asarray(part.half_extents)))
        node.setRelativeTransform(isometry(Pose(np.asarray(part.position), np.asarray(part.quaternion))))
        node.createCollisionAspect()
        node.createVisualAspect()
        del node


def add_static_boxes(world: nimble.simulation.World, name: str, parts: list[BoxPart], pose: Pose,
                     friction: float) -> None:
    """Skeleton `name`: boxes welded to the world at `pose` (move it later with set_static_pose)."""
    skeleton = nimble.dynamics.Skeleton()
    skeleton.setName(name)
    joint, body = skeleton.createWeldJointAndBodyNodePair()
    joint.setTransformFromParentBodyNode(isometry(pose))
    _add_boxes(body, parts)
    body.setFrictionCoeff(friction)
    world.addSkeleton(skeleton)
    del body, joint


def set_static_pose(world: nimble.simulation.World, name: str, pose: Pose) -> None:
    """Move a welded skeleton (table, needle, hole block) to `pose` in the world frame."""
    world.getSkeleton(name).getRootJoint().setTransformFromParentBodyNode(isometry(pose))


def add_free_boxes(world: nimble.simulation.World, name: str, parts: list[BoxPart], mass_kg: float,
                   friction: float) -> None:
    """Skeleton `name` with one FreeJoint body (6 dofs: body-frame rotation vector, world position)."""
    skeleton = nimble.dynamics.Skeleton()
    skeleton.setName(name)
    joint, body = skeleton.createFreeJointAndBodyNodePair()
    _add_boxes(body, parts)
    _set_inertia(body, mass_kg, box_union_inertia(parts, mass_kg))
    body.setFrictionCoeff(friction)
    world.addSkeleton(skeleton)
    del body, joint


def add_gripper(reference: np.ndarray, object_in_tcp: Pose, object_name: str,
                parts: list[BoxPart], mass_kg: float, friction: float) -> nimble.dynamics.Skeleton:
    """Skeleton 'gripper': TranslationalJoint (TCP position in the world, m) -> EulerJoint XYZ (TCP
    orientation R = reference @ Rx(q0) Ry(q1) Rz(q2)) -> WeldJoint -> the object at `object_in_tcp`.

    An EulerJoint rather than a BallJoint: with a BallJoint, nimble's d s'/d s and d s'/d a for
    the thread's joints through the gripper's rotation came out about half the finite differences
    (relative error 0.24-0.5); its revolute-joint gradients match to 1e-9.

    control_step drives the six gripper dofs by setting their velocities, as the sim's stiff arm
    controller does, and cancels gravity on them with joint forces. (Turning gravity off on these
    bodies instead, with BodyNode.setGravityMode(False), is respected by nimble's forward pass but
    not by its gradients: d(thread joints)/d(gripper rotation) came out half the finite
    differences.) The caller adds the skeleton to the world (after add_thread_links for the thread).
    """
    skeleton = nimble.dynamics.Skeleton()
    skeleton.setName('gripper')
    slide_joint, slide = skeleton.createTranslationalJointAndBodyNodePair()
    euler_joint, tcp = slide.createEulerJointAndBodyNodePair()
    euler_joint.setTransformFromParentBodyNode(nimble.math.Isometry3(reference, np.zeros(3)))
    weld, held = tcp.createWeldJointAndBodyNodePair()
    weld.setTransformFromParentBodyNode(isometry(object_in_tcp))
    held.setName(object_name)
    _add_boxes(held, parts)
    if parts:
        _set_inertia(held, mass_kg, box_union_inertia(parts, mass_kg))
    held.setFrictionCoeff(friction)
    for body in (slide, tcp):
        _set_inertia(body, GRIPPER_BODY_MASS_KG, GRIPPER_BODY_INERTIA_KG_M2 * np.eye(3))
    del body, held, weld, tcp, euler_joint, slide, slide_joint
    return skeleton


def add_thread_links(skeleton: nimble.dynamics.Skeleton, spec: ThreadSpec, dynamics: ThreadDynamics,
                     timestep_s: float, rest_rad: np.ndarray, friction: float) -> None:
    """The thread of samrl_description.objects.thread_joints on the grasped body (the skeleton's last).

    The grasped segment becomes a capsule on that body; each joint adds a revolute link whose frame
    is at the joint and whose capsule (and centre of mass) lies half a segment outward - the layout
    PyBullet's thread is built from too, so joint i here is the sim's joint i.
    """
    grasped = skeleton.getBodyNode(skeleton.getNumBodyNodes() - 1)
    min_inertia = dynamics.link_inertia_kg_m2(spec, timestep_s)
    _add_capsule(grasped, spec, 0.0)
    _set_capsule_inertia(grasped, spec, 0.0, min_inertia)
    grasped.setFrictionCoeff(friction)
    stiffness = dynamics.stiffness_nm_per_rad
    previous = grasped
    for i, thread_joint in enumerate(thread_joints(spec)):
        parent = grasped if thread_joint.parent < 0 else previous    # a chain: the parent is the last link
        joint, link = parent.createRevoluteJointAndBodyNodePair()
        joint.setTransformFromParentBodyNode(
            nimble.math.Isometry3(np.eye(3), np.array([thread_joint.origin_x_m, 0.0, 0.0])))
        joint.setAxis(np.array(thread_joint.axis))
        joint.setSpringStiffness(0, stiffness)
        joint.setRestPosition(0, float(rest_rad[i]))
        joint.setDampingCoefficient(0, dynamics.damping_nms_per_rad(spec, timestep_s))
        link.setName(f'thread_link_{i}')
        _add_capsule(link, spec, thread_joint.capsule_x_m)
        _set_capsule_inertia(link, spec, thread_joint.capsule_x_m, min_inertia)
        link.setFrictionCoeff(friction)
        del joint, parent
        previous = link
        del link
    del previous, grasped


def set_thread_rest(skeleton: nimble.dynamics.Skeleton, rest_rad: np.ndarray) -> None:
    """Spring rest angles (rad) of the thread joints (the sim's motor targets)."""
    first = skeleton.getNumBodyNodes() - len(rest_rad)
    for i, angle in enumerate(rest_rad):
        skeleton.getJoint(first + i).setRestPosition(0, float(angle))


def _add_capsule(body, spec: ThreadSpec, centre_x_m: float) -> None:
    node = body.createShapeNode(nimble.dynamics.CapsuleShape(spec.radius_m, spec.segment_length_m))
    node.setRelativeTransform(nimble.math.Isometry3(CAPSULE_TO_X, np.array([centre_x_m, 0.0, 0.0])))
    node.createCollisionAspect()
    node.createVisualAspect()
    del node


def _set_capsule_inertia(body, spec: ThreadSpec, centre_x_m: float, min_inertia_kg_m2: float) -> None:
    """Solid cylinder of the segment (length L, radius r) along x, centred at centre_x_m, each
    principal moment raised to at least min_inertia_kg_m2 (see ThreadDynamics)."""
    m, r, length = spec.segment_mass_kg, spec.radius_m, spec.segment_length_m
    transverse = m * (3.0 * r ** 2 + length ** 2) / 12.0
    moments = np.array([0.5 * m * r ** 2, transverse, transverse])
    _set_inertia(body, m, np.diag(np.maximum(moments, min_inertia_kg_m2)), (centre_x_m, 0.0, 0.0))
