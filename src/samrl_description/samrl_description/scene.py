"""Constants of the scene that every part of the system shares: rates, gravity and the fixed layout.

The PyBullet world (samrl_sim) and the model M (samrl_model) run at these rates; a real robot's
controllers are configured to match them.
"""
from __future__ import annotations

import numpy as np

PHYSICS_RATE_HZ = 240           # physics steps per second (both simulators)
CONTROL_RATE_HZ = 10            # end-effector commands per second (paper: one action per 0.1 s)
GRAVITY_M_S2 = 9.81
# Tool z axis pointing down, x along world x: the gripper's reference orientation. Tool yaws are
# about world z on top of it.
GRIPPER_DOWN_QUAT = np.array([1.0, 0.0, 0.0, 0.0])
NEEDLE_POSITION_M = (0.55, 0.0, 0.0)         # the needle stands here on the table, eye axis along x
BLADE_YAW_RAD = np.pi / 2                    # nominal spatula blade direction (handle to edge): world +y
# The camera arm (Rizon 4) stands beside the table, its base facing +y towards the workspace.
CAMERA_ARM_BASE_XY_M = (0.55, -0.65)
CAMERA_ARM_BASE_YAW_RAD = np.pi / 2
