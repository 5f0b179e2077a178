"""Spatula-Flipping (paper Sec. IV-A): lift a pancake with a spatula and flip it over.

Description
    The Panda holds an L-shaped turner (objects.SpatulaSpec: 160 mm handle along the gripper's
    approach axis, 110 x 100 x 3 mm blade at right angles; attached by a fixed constraint at build
    time). A pancake (objects.PancakeSpec: 90 mm diameter, 12 mm thick, bevelled rim, 40 g) lies
    on the table. The blade is slid flat under the pancake and the pancake is then lifted and
    turned over, e.g. by rotating the blade about its tip until the pancake tips past vertical.
    Working along +y keeps the Panda's hand beside the pancake, well inside its reach, while
    the blade turns by more than 90 degrees.

Randomisations (uniform, task RNG)
    - pancake centre x in [0.42, 0.52] m, y in [-0.12, 0.12] m, yaw in [-pi, pi] rad;
    - gripper start: tool centre point x in [0.40, 0.55] m, y in [-0.30, -0.20] m, z in
      [0.24, 0.30] m, pointing down, blade towards +y (BLADE_YAW_RAD) +- 0.3 rad.

Success
    The pancake has been lifted (its centre rose at least LIFT_HEIGHT_M above its resting height
    at some time in the episode) and is flipped: its normal points down, i.e. it has turned more
    than FLIP_ANGLE_RAD (150 deg) from its initial upward normal.

Reward (dense, max 5)
    reach: 1 - tanh(10 * distance from the blade tip to the scooping start point);
    lift: highest pancake lift so far / LIFT_HEIGHT_M (capped at 1);
    flip: 2 * turned angle / FLIP_ANGLE_RAD (capped at 2) once lifted;
    success: 5.

Step budget: 60 control steps.
"""
from __future__ import annotations

import numpy as np

from samrl_description.default_views import DEFAULT_VIEWS
from samrl_description.geometry import Pose, look_at, quat_multiply, yaw_quat
from samrl_description.scene import BLADE_YAW_RAD, GRIPPER_DOWN_QUAT
from samrl_description.task_goals import (
    FLIP_ANGLE_RAD,
    LIFT_HEIGHT_M,
    MAX_DENSE_REWARD,
    SCOOP_CLEARANCE_M,
    STEP_BUDGETS,
    blade_direction,
    spatula_flipping_reward,
    turn_angle_rad,
)
from samrl_sim.bodies import create_pancake, create_spatula
from samrl_sim.tasks.base import Scene, Task, place_body

PANCAKE_X_RANGE_M = (0.42, 0.52)
PANCAKE_Y_RANGE_M = (-0.12, 0.12)
START_X_RANGE_M = (0.40, 0.55)
START_Y_RANGE_M = (-0.30, -0.20)
START_Z_RANGE_M = (0.24, 0.30)
START_YAW_OFFSET_RAD = (-0.3, 0.3)


class SpatulaFlippingTask(Task):
    """Spatula-Flipping; the specification is the module docstring."""

    name = 'spatula_flipping'
    max_episode_steps = STEP_BUDGETS['spatula_flipping']
    max_dense_reward = MAX_DENSE_REWARD

    def build(self, scene: Scene) -> None:
        self.scene = scene
        self.spatula_spec, self.pancake_spec = scene.objects.spatula, scene.objects.pancake
        self.spatula = create_spatula(scene.client, self.spatula_spec)
        self.pancake = create_pancake(scene.client, self.pancake_spec)
        # Spatula frame: z up the handle, x along the blade; the gripper's z runs down the handle.
        self.spatula_in_tcp = self.grasp_pose()
        self.attach_to_gripper(self.spatula, self.spatula_in_tcp)
        self.rest_height_m = 0.5 * self.pancake_spec.thickness_m
        self.max_lift_m = 0.0

    def initialise_episode(self) -> None:
        uniform = self.rng.uniform
        pancake = Pose(np.array([uniform(*PANCAKE_X_RANGE_M), uniform(*PANCAKE_Y_RANGE_M), self.rest_height_m]),
                       yaw_quat(uniform(-np.pi, np.pi)))
        place_body(self.scene.client, self.pancake, pancake)
        yaw = BLADE_YAW_RAD + uniform(*START_YAW_OFFSET_RAD)
        start = Pose(np.array([uniform(*START_X_RANGE_M), uniform(*START_Y_RANGE_M), uniform(*START_Z_RANGE_M)]),
                     quat_multiply(yaw_quat(yaw), GRIPPER_DOWN_QUAT))
        self.place_with_gripper(start, self.spatula, self.spatula_in_tcp)
        self.max_lift_m = 0.0

    def after_substep(self) -> None:
        lift = self.object_pose('pancake').position[2] - self.rest_height_m
        self.max_lift_m = max(self.max_lift_m, float(lift))

    def episode_memory(self) -> dict:
        return {'max_lift_m': self.max_lift_m}

    def restore_episode_memory(self, memory: dict) -> None:
        self.max_lift_m = memory['max_lift_m']

    # --- named geometry ------------------------------------------------------------------------

    def blade_tip_pose(self) -> Pose:
        """Middle of the blade's free edge, on its lower face; axes of the spatula frame."""
        spec = self.spatula_spec
        return self.object_pose('spatula').compose(
            Pose(np.array([spec.blade_length_m, 0.0, -0.5 * spec.blade_thickness_m]), np.array([0.0, 0.0, 0.0, 1.0])))

    def pancake_turn_angle(self) -> float:
        """Angle (rad) between the pancake's normal and the world's up direction."""
        return turn_angle_rad(self.object_pose('pancake').rotation[:, 2])

    def scoop_start_position(self) -> np.ndarray:
        """Where the blade tip starts sliding: on the table before the pancake's rim (-y side)."""
        centre = self.object_pose('pancake').position
        offset = (self.pancake_spec.radius_m + SCOOP_CLEARANCE_M) * blade_direction()
        return np.array([centre[0], centre[1], 0.0]) - offset

    # --- evaluation and reward -------------------------------------------------------------------

    def evaluate(self) -> dict:
        turned = self.pancake_turn_angle()
        lifted = self.max_lift_m >= LIFT_HEIGHT_M
        return {'success': lifted and turned >= FLIP_ANGLE_RAD,
                'lifted': lifted,
                'max_lift_m': self.max_lift_m,
                'turn_angle_rad': turned,
                'tip_to_scoop_start_m': float(np.linalg.norm(self.blade_tip_pose().position
                                                             - self.scoop_start_position()))}

    def compute_dense_reward(self, info: dict) -> float:
        return spatula_flipping_reward(info)     # stages in samrl_description.task_goals, shared with M

    def default_camera_pose(self) -> Pose:
        return look_at(*DEFAULT_VIEWS[self.name])

    def object_bodies(self) -> dict[str, int]:
        return {'spatula': self.spatula, 'pancake': self.pancake}
