"""Peg-Insertion (paper Sec. IV-A): insert the peg held by the Panda into the hole of a block.

Description
    A 20 mm square peg, 100 mm long, is attached to the Panda's gripper (fixed constraint created
    at build time, its long axis along the gripper's approach axis, 20 mm of it between the
    fingers). A 120 x 120 x 50 mm block with a square through-hole is fixed to the table; the hole
    is 24 mm wide (2 mm clearance per side). The peg must be aligned in position and yaw, then
    pushed down into the hole.

Randomisations (uniform, task RNG)
    - block centre x in [0.45, 0.60] m, y in [-0.12, 0.12] m (world frame), yaw in [-pi/4, pi/4]
      rad (the square hole repeats every pi/2, so this covers every relative yaw);
    - gripper start: tool centre point x in [0.38, 0.52] m, y in [-0.10, 0.10] m, z in
      [0.22, 0.28] m, pointing down, yaw in [-0.3, 0.3] rad.

Success
    The peg's tip is at least INSERTION_DEPTH_M below the top of the block and laterally inside
    the hole (|offset| < half the hole side along both hole axes).

Reward (dense, max 5)
    reach: 1 - tanh(5 * distance from the peg tip to a point 20 mm above the hole);
    align: 1 - |yaw error| / (pi / 4), counted once the tip is within 10 mm of the hole axis;
    insert: 2 * inserted depth / INSERTION_DEPTH_M while laterally inside the hole;
    success: 5.

Step budget: 40 control steps (4 s at 10 Hz).
"""
from __future__ import annotations

import numpy as np

from samrl_description.default_views import DEFAULT_VIEWS
from samrl_description.geometry import Pose, look_at, quat_multiply, yaw_of, yaw_quat
from samrl_description.scene import GRIPPER_DOWN_QUAT
from samrl_description.task_goals import (
    HOLE_SYMMETRY_RAD,
    INSERTION_DEPTH_M,
    MAX_DENSE_REWARD,
    PRE_INSERT_HEIGHT_M,
    STEP_BUDGETS,
    peg_insertion_reward,
    wrap_symmetric,
)
from samrl_sim.bodies import create_hole_block, create_peg
from samrl_sim.tasks.base import Scene, Task, place_body

BLOCK_X_RANGE_M = (0.45, 0.60)
BLOCK_Y_RANGE_M = (-0.12, 0.12)
BLOCK_YAW_RANGE_RAD = (-np.pi / 4, np.pi / 4)
START_X_RANGE_M = (0.38, 0.52)
START_Y_RANGE_M = (-0.10, 0.10)
START_Z_RANGE_M = (0.22, 0.28)
START_YAW_RANGE_RAD = (-0.3, 0.3)


class PegInsertionTask(Task):
    """Peg-Insertion; the specification is the module docstring."""

    name = 'peg_insertion'
    max_episode_steps = STEP_BUDGETS['peg_insertion']
    max_dense_reward = MAX_DENSE_REWARD

    def build(self, scene: Scene) -> None:
        self.scene = scene
        self.peg_spec, self.block_spec = scene.objects.peg, scene.objects.hole_block
        self.peg = create_peg(scene.client, self.peg_spec)
        self.block = create_hole_block(scene.client, self.block_spec, self.peg_spec)
        self.peg_in_tcp = self.grasp_pose()
        self.attach_to_gripper(self.peg, self.peg_in_tcp)

    def initialise_episode(self) -> None:
        uniform = self.rng.uniform
        block_pose = Pose(np.array([uniform(*BLOCK_X_RANGE_M), uniform(*BLOCK_Y_RANGE_M), 0.0]),
                          yaw_quat(uniform(*BLOCK_YAW_RANGE_RAD)))
        place_body(self.scene.client, self.block, block_pose)
        start = Pose(np.array([uniform(*START_X_RANGE_M), uniform(*START_Y_RANGE_M), uniform(*START_Z_RANGE_M)]),
                     quat_multiply(yaw_quat(uniform(*START_YAW_RANGE_RAD)), GRIPPER_DOWN_QUAT))
        self.place_with_gripper(start, self.peg, self.peg_in_tcp)

    # --- named geometry ------------------------------------------------------------------------

    def hole_top_pose(self) -> Pose:
        """Centre of the hole's opening, z up, x along one side of the square hole."""
        block = self.object_pose('hole_block')
        return block.compose(Pose(np.array([0.0, 0.0, self.block_spec.height_m]), np.array([0.0, 0.0, 0.0, 1.0])))

    def peg_tip_position(self) -> np.ndarray:
        peg = self.object_pose('peg')
        return peg.apply([0.0, 0.0, 0.5 * self.peg_spec.length_m])

    def peg_yaw_error(self) -> float:
        """Yaw of the peg relative to the hole, modulo the square's quarter-turn symmetry (rad)."""
        relative = yaw_of(self.object_pose('peg').rotation) - yaw_of(self.hole_top_pose().rotation)
        return wrap_symmetric(relative, HOLE_SYMMETRY_RAD)

    # --- evaluation and reward -------------------------------------------------------------------

    def evaluate(self) -> dict:
        hole = self.hole_top_pose()
        tip_in_hole = hole.inverse().apply(self.peg_tip_position())
        half_hole = 0.5 * self.block_spec.hole_side_m(self.peg_spec)
        inside = bool(np.all(np.abs(tip_in_hole[:2]) < half_hole))
        depth = float(-tip_in_hole[2])
        return {'success': inside and depth >= INSERTION_DEPTH_M,
                'insertion_depth_m': depth,
                'lateral_offset_m': float(np.linalg.norm(tip_in_hole[:2])),
                'laterally_inside': inside,
                'yaw_error_rad': self.peg_yaw_error(),
                'distance_to_pre_insert_m': float(np.linalg.norm(tip_in_hole - [0.0, 0.0, PRE_INSERT_HEIGHT_M]))}

    def compute_dense_reward(self, info: dict) -> float:
        return peg_insertion_reward(info)     # stages in samrl_description.task_goals, shared with M

    def default_camera_pose(self) -> Pose:
        return look_at(*DEFAULT_VIEWS[self.name])

    def object_bodies(self) -> dict[str, int]:
        return {'peg': self.peg, 'hole_block': self.block}
