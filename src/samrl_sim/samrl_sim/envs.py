"""Gymnasium environments over the PyBullet world (same World, tasks and command limits).

Observation: Dict(image = wrist-camera RGB uint8 HxWx3 (default 84x84), state = float32 vector
STATE_FIELDS). Action: Box([-1, 1]^7) scaled to the bounded EeDeltaCommand: translation (3) x
MAX_TRANSLATION_PER_STEP_M, rotation vector (3) x MAX_ROTATION_PER_STEP_RAD, gripper width
(1) mapped linearly onto [0, 0.08] m. Translations that would leave the workspace are shortened
to its boundary; a command the safety layer still rejects is replaced by holding still, and the
reason is reported in info['command_rejected']; info['command_shortened'] says why an accepted
command was scaled down (also when only part of it stayed within bounds in the world's preview),
info['command_stopped'] why the arm was held before the end of the period.
An action that is not 7 finite numbers raises ValueError (it is never truncated or padded).

Register with `register_envs()` (no side effects on import).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from samrl_description.task_goals import TOOL_WALL_MARGIN_M
from samrl_sim.commands import EeDeltaCommand
from samrl_sim.tasks import task_class
from samrl_sim.world import TaskState, World

ENV_IDS = {'samrl/NeedleThreading-v0': 'needle_threading',
           'samrl/PegInsertion-v0': 'peg_insertion',
           'samrl/SpatulaFlipping-v0': 'spatula_flipping'}
DEFAULT_IMAGE_SIZE = (84, 84)       # (height, width) in pixels
RENDER_SIZE = (480, 640)            # (height, width) of render_mode='rgb_array'
STATE_FIELDS = ('tcp_position_m[3]', 'tcp_quaternion_xyzw[4]', 'gripper_width_m[1]',
                'camera_position_m[3]', 'camera_quaternion_xyzw[4]', 'episode_progress[1]')
STATE_DIM = 16
STATE_BOUND = 2.0                   # every state entry is a position in the 2 m cell, a quaternion or a fraction
ACTION_DIM = 7
REWARD_MODES = ('normalized_dense', 'dense', 'sparse')


class SamrlEnv(gym.Env):
    """One task of the paper as a gymnasium environment (10 Hz control)."""

    metadata = {'render_modes': ['rgb_array'], 'render_fps': 10}

    def __init__(self, task: str = 'peg_insertion', image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
                 reward_mode: str = 'normalized_dense', render_mode: str | None = None):
        if reward_mode not in REWARD_MODES:
            raise ValueError(f'reward_mode must be one of {REWARD_MODES}')
        self.world = World(task)
        self.image_size, self.reward_mode, self.render_mode = image_size, reward_mode, render_mode
        limits = self.world.config.ee_limits
        self._scale = np.array([limits.max_translation_m] * 3 + [limits.max_rotation_rad] * 3)
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.observation_space = spaces.Dict({
            'image': spaces.Box(0, 255, (*image_size, 3), np.uint8),
            'state': spaces.Box(-STATE_BOUND, STATE_BOUND, (STATE_DIM,), np.float32)})

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        state = self.world.reset(seed=seed)
        return self._observation(), self._info(state)

    def step(self, action):
        result = self.world.step(self._command(_checked_action(action)))
        state = result.state if result.accepted else self.world.hold()
        reward = self._reward(state)
        info = self._info(state, result.reason, result.shortened, result.stopped)
        return self._observation(), reward, state.success, state.truncated, info

    def render(self):
        if self.render_mode == 'rgb_array':
            return self.world.render(RENDER_SIZE[1], RENDER_SIZE[0]).rgb
        return None

    def close(self):
        self.world.close()

    # --- conversions ----------------------------------------------------------------------------

    def _command(self, action: np.ndarray) -> EeDeltaCommand:
        """Scale [-1, 1] actions onto the command limits; stop translations TOOL_WALL_MARGIN_M inside
        the workspace wall.

        A tool outside the workspace (pushed there) is brought back towards it, one step limit at a time.
        """
        action = np.clip(action, -1.0, 1.0)
        limits = self.world.config.ee_limits
        delta = action[:6] * self._scale
        tcp = self.world.tcp_pose().position
        lower = np.asarray(limits.workspace.lower) + TOOL_WALL_MARGIN_M
        upper = np.asarray(limits.workspace.upper) - TOOL_WALL_MARGIN_M
        target = np.clip(tcp + delta[:3], lower, upper)
        translation = np.clip(target - tcp, -limits.max_translation_m, limits.max_translation_m)  # from outside
        gripper = limits.gripper_min_m + 0.5 * (action[6] + 1.0) * (limits.gripper_max_m - limits.gripper_min_m)
        return EeDeltaCommand(tuple(translation), tuple(delta[3:]), float(gripper))

    def _observation(self) -> dict:
        height, width = self.image_size
        tcp, camera = self.world.tcp_pose(), self.world.camera_pose()
        progress = self.world.task_state().step / self.world.task.max_episode_steps
        state = np.concatenate([tcp.position, tcp.quaternion, [self.world.panda.gripper_width()],
                                camera.position, camera.quaternion, [progress]]).astype(np.float32)
        return {'image': self.world.render(width, height).rgb, 'state': state}

    def _reward(self, state: TaskState) -> float:
        if self.reward_mode == 'sparse':
            return float(state.success)
        return state.normalized_reward if self.reward_mode == 'normalized_dense' else state.reward

    @staticmethod
    def _info(state: TaskState, rejected: str = '', shortened: str = '', stopped: str = '') -> dict:
        return {**state.info, 'step': state.step, 'command_rejected': rejected, 'command_shortened': shortened,
                'command_stopped': stopped}


def _checked_action(action) -> np.ndarray:
    """`action` as a float (ACTION_DIM,) array; a ValueError says what is wrong with any other input.

    A wrong-length action is a bug in the caller (e.g. a policy with the wrong head), so it is
    refused rather than truncated or padded into a command nobody meant.
    """
    array = np.asarray(action)
    if array.dtype.kind not in 'iuf':
        raise ValueError(f'action must be numeric (integer or float), got dtype {array.dtype}')
    if array.shape != (ACTION_DIM,):
        raise ValueError(f'action must have shape ({ACTION_DIM},) [translation 3, rotation 3, gripper 1], '
                         f'got shape {array.shape}')
    if not np.all(np.isfinite(array)):
        raise ValueError(f'action must be finite, got {array.tolist()}')
    return array.astype(float)


def register_envs() -> list[str]:
    """Register the three environments with gymnasium (idempotent); returns their ids."""
    for env_id, task in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point='samrl_sim.envs:SamrlEnv', kwargs={'task': task},
                         max_episode_steps=task_class(task).max_episode_steps)
    return list(ENV_IDS)
