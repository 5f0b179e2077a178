"""What every task provides to the world, following ManiSkill3's split of a task into phases.

A task builds its bodies once (`build`), places them for a new episode from its own seeded RNG
(`initialise_episode`), reports `evaluate()` -> dict with 'success' and diagnostics, and turns
that dict into a dense reward (which reads info['success'] rather than recomputing it) and a
reward normalised to [0, 1].
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pybullet as pb

from samrl_description.geometry import Pose
from samrl_description.objects import SceneObjects
from samrl_description.tasks import GRIPPER_WIDTHS_M, grasp_pose
from samrl_sim.panda import TCP_LINK, PandaArm

ATTACHMENT_MAX_FORCE_N = 2000.0   # the fixed grasp constraint is effectively rigid


@dataclass(frozen=True)
class Scene:
    """What a task may touch while building: its PyBullet client, the Panda and the object specs."""

    client: int
    panda: PandaArm
    objects: SceneObjects


class Task(ABC):
    """One manipulation task in one PyBullet client. Subclasses document their spec in the docstring."""

    name: str = ''
    max_episode_steps: int = 100
    max_dense_reward: float = 1.0

    def __init__(self) -> None:
        self.scene: Scene | None = None
        self.rng = np.random.default_rng()

    @property
    def gripper_width_m(self) -> float:
        """Finger opening (m) held throughout the episode (samrl_description.tasks)."""
        return GRIPPER_WIDTHS_M[self.name]

    def grasp_pose(self) -> Pose:
        """The held object's pose in the tool centre point's frame (samrl_description.tasks)."""
        return grasp_pose(self.name, self.scene.objects)

    def seed(self, seed: int | None) -> None:
        """Re-seed the task's RNG (None keeps the current stream, as gymnasium does)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    @abstractmethod
    def build(self, scene: Scene) -> None:
        """Create the task's bodies and constraints (called once per world)."""

    @abstractmethod
    def initialise_episode(self) -> None:
        """Randomise object poses and the arm's start from `self.rng`."""

    @abstractmethod
    def evaluate(self) -> dict:
        """Diagnostics of the current state; must contain the bool 'success'."""

    @abstractmethod
    def compute_dense_reward(self, info: dict) -> float:
        """Shaped reward in [0, max_dense_reward] for the info returned by evaluate()."""

    def compute_normalized_dense_reward(self, info: dict) -> float:
        return self.compute_dense_reward(info) / self.max_dense_reward

    @abstractmethod
    def default_camera_pose(self) -> Pose:
        """camera_color_optical_frame pose in the world frame from which the task is watched."""

    @abstractmethod
    def object_bodies(self) -> dict[str, int]:
        """PyBullet body id of every task object by name (segmentation ids, ground-truth poses)."""

    def after_substep(self) -> None:
        """Hook called after every physics step (e.g. to track a maximum over the episode)."""

    def episode_memory(self) -> dict:
        """What after_substep has recorded this episode, so that a previewed step can be undone."""
        return {}

    def restore_episode_memory(self, memory: dict) -> None:
        """Undo after_substep's records back to `memory` (from episode_memory)."""

    def privileged_state(self) -> np.ndarray:
        """True object state as a flat float vector (for baselines and debugging)."""
        poses = [self.object_pose(name) for name in sorted(self.object_bodies())]
        return np.concatenate([np.concatenate([p.position, p.quaternion]) for p in poses]).astype(np.float32)

    # --- helpers shared by the tasks ---------------------------------------------------------

    def object_pose(self, name: str) -> Pose:
        position, quaternion = pb.getBasePositionAndOrientation(self.object_bodies()[name],
                                                                physicsClientId=self.scene.client)
        return Pose.from_xyz_quat(position, quaternion)

    def attach_to_gripper(self, body: int, object_in_tcp: Pose) -> int:
        """Rigidly attach `body` to the tool centre point (the grasp is not simulated by friction).

        Collisions between the object and the Panda are disabled so that the closed fingers and
        the object do not fight; returns the constraint id.
        """
        scene = self.scene
        for link in range(-1, pb.getNumJoints(scene.panda.body, physicsClientId=scene.client)):
            for object_link in range(-1, pb.getNumJoints(body, physicsClientId=scene.client)):
                pb.setCollisionFilterPair(scene.panda.body, body, link, object_link, 0,
                                          physicsClientId=scene.client)
        position, quaternion = object_in_tcp.as_tuple()
        constraint = pb.createConstraint(scene.panda.body, TCP_LINK, body, -1, pb.JOINT_FIXED, [0, 0, 0],
                                         parentFramePosition=position, childFramePosition=[0, 0, 0],
                                         parentFrameOrientation=quaternion, physicsClientId=scene.client)
        pb.changeConstraint(constraint, maxForce=ATTACHMENT_MAX_FORCE_N, physicsClientId=scene.client)
        return constraint

    def place_with_gripper(self, tcp_pose: Pose, body: int, object_in_tcp: Pose) -> None:
        """Teleport the arm to `tcp_pose` and the attached body to where its grasp puts it."""
        scene = self.scene
        scene.panda.reset_tcp(tcp_pose, self.gripper_width_m)
        place_body(scene.client, body, scene.panda.tcp_pose().compose(object_in_tcp))


def place_body(client: int, body: int, pose: Pose) -> None:
    """Teleport a body's base with zero velocity."""
    position, quaternion = pose.as_tuple()
    pb.resetBasePositionAndOrientation(body, position, quaternion, physicsClientId=client)
    pb.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=client)
