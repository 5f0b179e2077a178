"""Needle-Threading (paper Sec. IV-A, IV-C): pass the thread held by the Panda through a needle's eye.

Description
    A needle stands fixed on the table at NEEDLE_POSITION_M; its eye is a 10 x 10 mm square ring
    (four boxes, 4 mm thick along the eye axis = world x) whose centre is 165 mm above the table.
    The thread is a chain of 3 mm capsules (10 mm segments, objects.ThreadSpec) joined by stiff
    revolute joints held at random bend angles; the Panda holds it 35 mm from its tip (the grasped
    segment is attached to the gripper by a fixed constraint at build time, along the gripper's x
    axis). Because the bends are random, where the tip is and where it points must be seen, not
    assumed - the reason the paper uses this task to show active viewpoints.

Randomisations (uniform, task RNG)
    - thread shape: every bend angle in [-TIP_BEND_RAD, TIP_BEND_RAD] between the grasp and the
      tip, [-TAIL_BEND_RAD, TAIL_BEND_RAD] along the tail;
    - thread position: tool centre point x in [0.34, 0.42] m, y in [-0.08, 0.08] m, z in
      [0.24, 0.30] m, gripper pointing down with yaw in [-0.3, 0.3] rad.

Success
    The thread's tip is at least THROUGH_DEPTH_M beyond the eye's mid-plane and the thread
    crosses that plane inside the eye's opening (|y|, |z| < half the opening in the eye frame).

Reward (dense, max 5)
    reach: 1 - tanh(10 * distance from the tip to a point 30 mm in front of the eye);
    align: 1 - angle between the tip segment and the eye axis / pi;
    through: 2 * tip depth beyond the eye / THROUGH_DEPTH_M while the crossing is inside;
    success: 5.

Step budget: 60 control steps.
"""
from __future__ import annotations

import numpy as np
import pybullet as pb

from samrl_description.default_views import DEFAULT_VIEWS
from samrl_description.geometry import Pose, look_at, quat_multiply, yaw_quat
from samrl_description.scene import GRIPPER_DOWN_QUAT, NEEDLE_POSITION_M
from samrl_description.task_goals import (
    EYE_AXIS,
    MAX_DENSE_REWARD,
    PRE_THREAD_DISTANCE_M,
    STEP_BUDGETS,
    THROUGH_DEPTH_M,
    needle_threading_reward,
    plane_crossing,
)
from samrl_sim.bodies import create_needle, create_thread
from samrl_sim.tasks.base import Scene, Task, place_body

TIP_BEND_RAD = 0.3
TAIL_BEND_RAD = 0.3
START_X_RANGE_M = (0.34, 0.42)
START_Y_RANGE_M = (-0.08, 0.08)
START_Z_RANGE_M = (0.24, 0.30)
START_YAW_RANGE_RAD = (-0.3, 0.3)


class NeedleThreadingTask(Task):
    """Needle-Threading; the specification is the module docstring."""

    name = 'needle_threading'
    max_episode_steps = STEP_BUDGETS['needle_threading']
    max_dense_reward = MAX_DENSE_REWARD

    def build(self, scene: Scene) -> None:
        self.scene = scene
        self.needle_spec, self.thread_spec = scene.objects.needle, scene.objects.thread
        self.needle = create_needle(scene.client, self.needle_spec)
        place_body(scene.client, self.needle, Pose(np.array(NEEDLE_POSITION_M), np.array([0.0, 0.0, 0.0, 1.0])))
        self.thread = create_thread(scene.client, self.thread_spec)
        self.n_joints = self.thread_spec.tip_links + self.thread_spec.tail_links
        self.thread_in_tcp = self.grasp_pose()    # grasped segment centred between the fingertips
        self.attach_to_gripper(self.thread, self.thread_in_tcp)
        self.bends = np.zeros(self.n_joints)

    def initialise_episode(self) -> None:
        uniform = self.rng.uniform
        tip = self.thread_spec.tip_links
        self.bends = np.concatenate([uniform(-TIP_BEND_RAD, TIP_BEND_RAD, tip),
                                     uniform(-TAIL_BEND_RAD, TAIL_BEND_RAD, self.n_joints - tip)])
        start = Pose(np.array([uniform(*START_X_RANGE_M), uniform(*START_Y_RANGE_M), uniform(*START_Z_RANGE_M)]),
                     quat_multiply(yaw_quat(uniform(*START_YAW_RANGE_RAD)), GRIPPER_DOWN_QUAT))
        self.place_with_gripper(start, self.thread, self.thread_in_tcp)
        self._shape_thread()

    def _shape_thread(self) -> None:
        """Set the bend angles and hold them with weak motors (the thread yields on contact)."""
        client = self.scene.client
        for joint, angle in enumerate(self.bends):
            pb.resetJointState(self.thread, joint, float(angle), 0.0, physicsClientId=client)
        pb.setJointMotorControlArray(self.thread, list(range(self.n_joints)), pb.POSITION_CONTROL,
                                     targetPositions=self.bends.tolist(),
                                     forces=[self.thread_spec.joint_max_torque_nm] * self.n_joints,
                                     physicsClientId=client)

    # --- named geometry ------------------------------------------------------------------------

    def eye_pose(self) -> Pose:
        """Centre of the eye's opening; x is the eye axis (threading direction), z up."""
        needle = self.object_pose('needle')
        return needle.compose(Pose(np.array([0.0, 0.0, self.needle_spec.eye_centre_height_m]),
                                   np.array([0.0, 0.0, 0.0, 1.0])))

    def _link_pose(self, link: int) -> Pose:
        state = pb.getLinkState(self.thread, link, computeForwardKinematics=True, physicsClientId=self.scene.client)
        return Pose.from_xyz_quat(state[4], state[5])

    def tip_side_points(self) -> np.ndarray:
        """Polyline from the grasped segment's centre through the tip-side joints to the tip (world)."""
        length = self.thread_spec.segment_length_m
        base = self.object_pose('thread')
        joints = [self._link_pose(i) for i in range(self.thread_spec.tip_links)]
        tip = joints[-1].apply([length, 0.0, 0.0])
        return np.array([base.position, *[j.position for j in joints], tip])

    def tip_pose(self) -> Pose:
        """Tip point with the orientation of the tip segment (its x axis points out of the thread)."""
        last = self._link_pose(self.thread_spec.tip_links - 1)
        return Pose(last.apply([self.thread_spec.segment_length_m, 0.0, 0.0]), last.quaternion)

    def tip_direction(self) -> np.ndarray:
        return self.tip_pose().rotation[:, 0]

    def eye_crossing(self) -> np.ndarray | None:
        """(y, z) in the eye frame where the thread crosses the eye's mid-plane, or None."""
        points = self.eye_pose().inverse().apply
        return plane_crossing(np.array([points(p) for p in self.tip_side_points()]))

    # --- evaluation and reward -------------------------------------------------------------------

    def evaluate(self) -> dict:
        eye = self.eye_pose()
        tip_local = eye.inverse().apply(self.tip_pose().position)
        crossing = self.eye_crossing()
        half_opening = 0.5 * self.needle_spec.eye_opening_m
        inside = crossing is not None and bool(np.all(np.abs(crossing) < half_opening))
        cos_angle = float(np.clip(np.dot(self.tip_direction(), eye.rotation @ EYE_AXIS), -1.0, 1.0))
        pre_thread = np.array([-PRE_THREAD_DISTANCE_M, 0.0, 0.0])
        return {'success': inside and tip_local[0] >= THROUGH_DEPTH_M,
                'tip_depth_m': float(tip_local[0]),
                'tip_lateral_offset_m': float(np.linalg.norm(tip_local[1:])),
                'crossing_inside_eye': inside,
                'tip_angle_rad': float(np.arccos(cos_angle)),
                'distance_to_pre_thread_m': float(np.linalg.norm(tip_local - pre_thread))}

    def compute_dense_reward(self, info: dict) -> float:
        return needle_threading_reward(info)     # stages in samrl_description.task_goals, shared with M

    def default_camera_pose(self) -> Pose:
        return look_at(*DEFAULT_VIEWS[self.name])

    def object_bodies(self) -> dict[str, int]:
        return {'needle': self.needle, 'thread': self.thread}
