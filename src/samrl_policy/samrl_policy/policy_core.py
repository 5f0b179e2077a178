"""The actor acting from M's state in a running graph: policy_node's work, ROS-free (paper Alg. 1 line 14,
a_real = a_sim without a residual).

Each control tick: M's current state (model_node's samrl_interfaces/ModelState: object names, world
poses, the thread's joint angles), the tool's pose and the camera's pose (both from tf) and the
episode's progress are rendered into the image the actor was trained on (model_env.render_policy_image,
shared with ModelEnv), the actor maps image and proprioception to a normalised action, and the action
becomes the bounded end-effector delta of the gym environments (model_env.command_from_action) with the
task's held gripper width (M holds the gripper, as in training).

Inputs that cannot be used raise InputError with the reason: the node logs it and skips the tick.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from samrl_common.conversions import pose_from_msg
from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose
from samrl_description.objects import SceneObjects
from samrl_description.tasks import GRIPPER_WIDTHS_M, TARGETS, TASK_OBJECTS, Placement, check_task
from samrl_model.render import Renderer
from samrl_model.scene_model import MAX_CAMERA_RANGE_M
from samrl_policy.model_env import PolicyObservation, command_from_action, policy_proprio, render_policy_image

STAGE_CONFIG = 'config.json'      # training.Run's configuration of a stage, with the render size it used
THREAD = 'thread'                 # the one object with joint angles (needle threading)
MAX_PROGRESS = 1.0                # step / budget of an episode's last step


class InputError(ValueError):
    """A tick's input that the actor cannot act on; the message says why."""


@dataclass(frozen=True)
class PolicyCommand:
    """One control step's end-effector delta (samrl_interfaces/EndEffectorCommand's fields)."""

    translation_m: tuple[float, float, float]
    rotation_rad: tuple[float, float, float]
    gripper_width_m: float
    action: tuple[float, ...]                       # the actor's normalised output, for logs
    timings_s: dict[str, float] = field(default_factory=dict)   # 'render', 'actor', 'command'


def image_size_of(run_dir: Path, actor: torch.nn.Module) -> tuple[int, int]:
    """(height, width) of the renders the actor was trained on: the actor stage's config.json when the run
    directory has it, else the network's square input (NetworkConfig.image_px)."""
    config = Path(run_dir) / 'actor' / STAGE_CONFIG
    if config.exists():
        height, width = json.loads(config.read_text())['image_size']
        return int(height), int(width)
    return actor.config.image_px, actor.config.image_px


def placements_from_state(task: str, state) -> dict[str, Placement]:
    """Where M has the task's objects, from a ModelState (duck-typed); InputError naming the problem."""
    if state.task != task:
        raise InputError(f'model state of task {state.task!r}, expected {task!r}')
    names, poses = list(state.object_names), list(state.object_poses)
    if len(names) != len(poses):
        raise InputError(f'model state has {len(names)} object names but {len(poses)} poses')
    unknown = sorted(set(names) - set(TASK_OBJECTS[task]))
    if unknown or len(set(names)) != len(names):
        raise InputError(f'model state objects {names} are not distinct objects of {task} {list(TASK_OBJECTS[task])}')
    if TARGETS[task] not in names:
        raise InputError(f'model state has no {TARGETS[task]!r}, the object the actor sees masked')
    placements = {}
    for name, pose_msg in zip(names, poses):
        pose = checked_pose(pose_from_msg(pose_msg), f'{name} pose')
        angles = _thread_angles(state.thread_joint_angles) if name == THREAD else None
        placements[name] = Placement(pose, angles)
    return placements


def _thread_angles(angles) -> tuple[float, ...]:
    values = np.asarray(list(angles), dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise InputError(f'thread_joint_angles must be finite and not empty, got {values.tolist()}')
    return tuple(float(a) for a in values)


def checked_pose(pose: Pose, what: str) -> Pose:
    """`pose` if its position is finite and within MAX_CAMERA_RANGE_M of the world origin and its quaternion a
    finite non-zero one (normalised); InputError otherwise (a scene a million metres wide fails inside Mitsuba)."""
    try:
        pose = Pose.checked(pose.position, pose.quaternion)
    except ValueError as exc:
        raise InputError(f'{what}: {exc}') from exc
    if float(np.linalg.norm(pose.position)) > MAX_CAMERA_RANGE_M:
        raise InputError(f'{what}: position {pose.position.tolist()} is more than {MAX_CAMERA_RANGE_M:g} m from the '
                         'world origin')
    return pose


def checked_progress(step: int, max_steps: int) -> float:
    """The episode's progress step / budget in [0, 1]; InputError without a budget."""
    if max_steps <= 0 or step < 0:
        raise InputError(f'episode step {step} of budget {max_steps} gives no progress')
    return min(step / max_steps, MAX_PROGRESS)


class ModelStateView:
    """Renders M's state as the networks see it (one task, one image size)."""

    def __init__(self, task: str, image_size: tuple[int, int], objects: SceneObjects = SceneObjects(),
                 zoom: float = 1.0):
        self.task = check_task(task)
        height, width = image_size
        self.renderer = Renderer(CameraIntrinsics.d435(width, height, zoom))
        self.objects = objects

    def observe(self, placements: dict[str, Placement], tcp: Pose, progress: float, camera_pose_world: torch.Tensor,
                requires_grad: bool = False) -> PolicyObservation:
        """What ModelEnv.observe gives for this state (differentiable in the camera pose with requires_grad)."""
        image = render_policy_image(self.renderer, placements, tcp, GRIPPER_WIDTHS_M[self.task], TARGETS[self.task],
                                    camera_pose_world, self.objects, requires_grad)
        tcp_matrix = torch.as_tensor(tcp.as_matrix(), dtype=torch.float64)
        return PolicyObservation(image, policy_proprio(tcp_matrix, progress, camera_pose_world))


class PolicyCore:
    """The actor on one task's model states."""

    def __init__(self, task: str, actor: torch.nn.Module, image_size: tuple[int, int]):
        self.task = check_task(task)
        self.actor = actor.eval()
        self.view = ModelStateView(task, image_size, zoom=actor.config.image_zoom)

    def act(self, state, tcp: Pose, camera_pose: Pose, progress: float) -> PolicyCommand:
        """The command for one control step from a ModelState, the tool's and the camera's world poses and
        the episode's progress (step / budget); InputError if any of them is unusable."""
        clock = time.perf_counter()
        placements = placements_from_state(self.task, state)
        tcp, camera_pose = checked_pose(tcp, 'tool pose'), checked_pose(camera_pose, 'camera pose')
        if not (math.isfinite(progress) and 0.0 <= progress <= MAX_PROGRESS):
            raise InputError(f'episode progress must be in [0, 1], got {progress}')
        camera = torch.as_tensor(camera_pose.as_matrix(), dtype=torch.float64)
        observation = self.view.observe(placements, tcp, progress, camera)
        timings = {'render': time.perf_counter() - clock}

        clock = time.perf_counter()
        with torch.no_grad():
            action = self.actor(observation.image[None], observation.proprio[None])[0].double()
        if not torch.all(torch.isfinite(action)):
            raise InputError(f'the actor gave a non-finite action {action.tolist()}')
        timings['actor'] = time.perf_counter() - clock

        clock = time.perf_counter()
        # command_from_action reads only the tool position (state[:3]) from M's state vector.
        delta = command_from_action(torch.tensor(tcp.position, dtype=torch.float64), action)
        timings['command'] = time.perf_counter() - clock
        return PolicyCommand(tuple(float(v) for v in delta[:3]), tuple(float(v) for v in delta[3:]),
                             GRIPPER_WIDTHS_M[self.task], tuple(float(a) for a in action), timings)
