"""Episodes inside the differentiable model M: where the actor, the Q function and the expert learn
(paper Sec. III-D, Alg. 1 lines 4-14).

`ModelEnv(task)` steps M's physics (samrl_model.physics.control_step) with the gymnasium
environments' actions (7 numbers in [-1, 1]: translation x MAX_TRANSLATION_PER_STEP_M, rotation
vector x MAX_ROTATION_PER_STEP_RAD, gripper; translations stopped at the tool's workspace box as
samrl_sim.envs does; M holds the gripper at the task's width, so the gripper number is ignored),
judges each state with the task in M (model_tasks.py) and renders it with M's renderer from any
camera pose, differentiably in that pose when asked (the view step differentiates Q(I(P))).

Episodes start from the task's own randomisation: an `episode_starts(model, seed)` callable gives
M's first state and the static bodies' poses. The default draws them from the PyBullet world
(model_env_init.py, the one sim-side module); this module imports no simulator.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose
from samrl_description.objects import SceneObjects
from samrl_description.task_goals import (
    MAX_DENSE_REWARD,
    MAX_ROTATION_PER_STEP_RAD,
    MAX_TRANSLATION_PER_STEP_M,
    TOOL_WALL_MARGIN_M,
    TOOL_WORKSPACE_M,
)
from samrl_description.tasks import GRIPPER_WIDTHS_M, HELD_OBJECTS, Placement, check_task
from samrl_model.physics.builder import set_static_pose, set_thread_rest
from samrl_model.physics.model import PhysicsModel, build_model
from samrl_model.physics.step import ACTION_SIZE, control_step
from samrl_model.physics.sync import STATIC_OBJECTS
from samrl_model.render import Renderer, objects_from_placements, render_threads
from samrl_model.robot import hand_objects
from samrl_policy.model_tasks import ModelTask, held_matrix, make_model_task, tcp_matrix, to_pose
from samrl_policy.training import torch_threads

DEFAULT_IMAGE_SIZE = (64, 64)        # (height, width) in pixels: the networks' input
ACTION_DIM = ACTION_SIZE + 1         # end-effector delta (6) and gripper (1), as samrl_sim.envs
RENDER_SEED = 0                      # Mitsuba's sample seed: one state and pose give one image
PROPRIO_SIZE = 19                    # PolicyObservation.proprio: tool pose 9, camera pose 9, progress 1
REPRODUCIBLE_THREADS = 1             # torch and Dr.Jit threads of reproducible episodes
STATIC_BODIES = STATIC_OBJECTS       # bodies whose poses M's world holds outside its state vector


@dataclass(frozen=True)
class EpisodeStart:
    """Where an episode starts in M: its state, the static bodies' world poses and (needle threading)
    the thread's spring rest angles (rad), which the world holds outside the state."""

    state: torch.Tensor
    statics: dict[str, Pose]
    thread_rest_rad: np.ndarray | None = None


@dataclass(frozen=True)
class StepOutcome:
    """One step's result: the task's dense reward, success, whether the episode is over, and
    evaluate()'s diagnostics with 'step' and 'normalized_reward'."""

    reward: float
    success: bool
    done: bool
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyObservation:
    """What the networks see: image (5, H, W) float32 = RGB in [0, 1], depth (m, 0 = nothing), the
    target's mask in [0, 1]; proprio float32 (PROPRIO_SIZE) = TCP position (m, 3), TCP rotation's first
    two columns (6), the camera's position (m, 3) and rotation's first two columns (6), all in the
    world frame, and episode progress (step / budget, 1)."""

    image: torch.Tensor
    proprio: torch.Tensor


@dataclass(frozen=True)
class EnvSnapshot:
    """Everything restore() needs: the state, the step count, the episode memory and its start."""

    state: torch.Tensor
    step: int
    memory: dict
    start: EpisodeStart


def command_from_action(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """M's end-effector delta (6: m, rad) of a normalised action's first six numbers, as the gym
    env maps them: clipped to [-1, 1], scaled to the per-step limits, and the translation stopped
    TOOL_WALL_MARGIN_M inside the workspace box (a tool outside is brought back one step limit at a
    time). Differentiable."""
    limit_m = MAX_TRANSLATION_PER_STEP_M
    scale = torch.tensor([limit_m] * 3 + [MAX_ROTATION_PER_STEP_RAD] * 3, dtype=state.dtype)
    delta = action[:ACTION_SIZE].to(state.dtype).clamp(-1.0, 1.0) * scale
    lower, upper = (torch.tensor(corner, dtype=state.dtype) for corner in TOOL_WORKSPACE_M)
    lower, upper = lower + TOOL_WALL_MARGIN_M, upper - TOOL_WALL_MARGIN_M
    tcp = state[:3]
    target = torch.clamp(tcp + delta[:3], lower, upper)
    return torch.cat([torch.clamp(target - tcp, -limit_m, limit_m), delta[3:]])


def checked_action(action) -> torch.Tensor:
    """A float64 (ACTION_DIM,) tensor of `action`; ValueError for any other shape or a non-finite value."""
    array = np.asarray(action, dtype=float)
    if array.shape != (ACTION_DIM,) or not np.all(np.isfinite(array)):
        raise ValueError(f'action must be {ACTION_DIM} finite numbers [translation 3, rotation 3, gripper 1], '
                         f'got {np.asarray(action).tolist()}')
    return torch.as_tensor(array, dtype=torch.float64)


def render_policy_image(renderer: Renderer, placements: dict[str, Placement], tcp: Pose, gripper_width_m: float,
                        target: str, camera_pose_world: torch.Tensor, objects: SceneObjects = SceneObjects(),
                        requires_grad: bool = False) -> torch.Tensor:
    """The networks' image (5, H, W) float32 (PolicyObservation.image) of objects at `placements` and the
    Panda's hand at `tcp`, seen from `camera_pose_world` ((4, 4) T_world_optical). Shared by ModelEnv and
    the nodes (samrl_policy.policy_core), so both render what the actor was trained on."""
    scene = {**objects_from_placements(placements, objects), **hand_objects(tcp, gripper_width_m)}
    pose = camera_pose_world.to(torch.float64)
    with torch.set_grad_enabled(requires_grad):
        out = renderer.render(scene, pose if requires_grad else pose.detach(), target, seed=RENDER_SEED)
        return torch.cat([out.rgb.permute(2, 0, 1), out.depth.unsqueeze(0).to(out.rgb.dtype),
                          out.mask.unsqueeze(0)]).float()


def pose_features(pose: torch.Tensor) -> torch.Tensor:
    """(9,) position and the rotation's first two columns of a (4, 4) pose (a continuous rotation code)."""
    return torch.cat([pose[:3, 3], pose[:3, 0], pose[:3, 1]])


def policy_proprio(tcp: torch.Tensor, progress: float, camera_pose_world: torch.Tensor) -> torch.Tensor:
    """PolicyObservation.proprio of the tool's and the camera's (4, 4) poses and the episode's progress.

    The actions are in the world frame and the views vary, so the networks are told where the image was
    taken from: without it one picture of the needle left of the thread asks for opposite moves from
    opposite sides. The pose enters detached: dQ/dP flows through the image only (Eq. 10's I(P)).
    """
    progress_column = torch.tensor([progress], dtype=tcp.dtype)
    camera = camera_pose_world.detach().to(tcp.dtype)
    return torch.cat([pose_features(tcp), pose_features(camera), progress_column]).float()


@contextmanager
def reproducible_threads() -> Iterator[None]:
    """One torch thread and one Dr.Jit thread inside the block, so that an episode repeats bit for bit
    from its seed.

    With more, their parallel sums (the view step's gradient through the renderer, the networks) add
    in a varying order: the same seed gives a view step differing in the last bits from run to run,
    and over an episode's contacts such bits can turn its outcome.
    """
    with torch_threads(REPRODUCIBLE_THREADS), render_threads(REPRODUCIBLE_THREADS):
        yield


def sim_episode_starts(task: str) -> Callable[[PhysicsModel, int], EpisodeStart]:
    """Episode starts from the PyBullet world's randomisation (imports the simulator on first use)."""
    from samrl_policy.model_env_init import SimEpisodeStarts
    return SimEpisodeStarts(task)


class ModelEnv:
    """One task's episodes in M, one at a time (samrl_policy.interfaces.Env)."""

    def __init__(self, task: str, image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE, seed: int | None = 0,
                 episode_starts: Callable[[PhysicsModel, int], EpisodeStart] | None = None,
                 objects: SceneObjects = SceneObjects(), zoom: float = 1.0):
        """image_size: (height, width) px of observe()'s images (D435 intrinsics scaled to it, at `zoom`);
        seed: the first episode's seed (None: call reset() before anything else)."""
        self.task_name = check_task(task)
        self.image_size, self.objects = image_size, objects
        self.model = build_model(task)
        self.episode_starts = episode_starts or sim_episode_starts(task)
        height, width = image_size
        self.renderer = Renderer(CameraIntrinsics.d435(width, height, zoom))
        self.task: ModelTask | None = None
        self._start: EpisodeStart | None = None
        self._state: torch.Tensor | None = None
        self.step_count, self.memory = 0, {}
        if seed is not None:
            self.reset(seed)

    # --- episode ------------------------------------------------------------------------------------

    def reset(self, seed: int) -> None:
        """Start the episode that the task's randomisation draws with `seed`."""
        self._begin(self.episode_starts(self.model, seed))

    def _begin(self, start: EpisodeStart) -> None:
        self._start = start
        self._apply_world(start)
        self.task = make_model_task(self.model, start.statics, self.objects)
        self._state = start.state.detach().clone()
        self.step_count, self.memory = 0, self.task.initial_memory(self._state)

    def _apply_world(self, start: EpisodeStart) -> None:
        """Put the static bodies and the thread's rest angles, which the state does not hold, into M's world."""
        for name, pose in start.statics.items():
            set_static_pose(self.model.world, name, pose)
        if start.thread_rest_rad is not None:
            set_thread_rest(self.model.world.getSkeleton('gripper'), start.thread_rest_rad)

    def step(self, action) -> StepOutcome:
        """Apply a 7-d action in [-1, 1] for one control step (0.1 s)."""
        command = command_from_action(self.state, checked_action(action))
        with torch.no_grad():
            self._state = control_step(self.model, self.state, command)
        self.step_count += 1
        self.memory = self.task.remember(self.memory, self._state)
        info = self.task.evaluate(self._state, self.memory)
        reward = self.task.reward(info)
        done = info['success'] or self.step_count >= self.max_episode_steps
        info = {**info, 'step': self.step_count, 'normalized_reward': reward / self.max_dense_reward}
        return StepOutcome(reward, bool(info['success']), bool(done), info)

    @property
    def state(self) -> torch.Tensor:
        """M's current state (float64, model.state_size)."""
        if self._state is None:
            raise RuntimeError('ModelEnv has no episode yet: call reset(seed)')
        return self._state

    @property
    def max_episode_steps(self) -> int:
        return self.task.max_episode_steps

    @property
    def max_dense_reward(self) -> float:
        return MAX_DENSE_REWARD

    def close(self) -> None:
        """Release what the episode starts hold (the PyBullet world of the default starts)."""
        close = getattr(self.episode_starts, 'close', None)
        if close is not None:
            close()

    def evaluate(self) -> dict:
        """The task's diagnostics of the current state (with the episode's memory)."""
        return self.task.evaluate(self.state, self.memory)

    def snapshot(self) -> EnvSnapshot:
        return EnvSnapshot(self.state.clone(), self.step_count, dict(self.memory), self._start)

    def restore(self, snap: EnvSnapshot) -> None:
        if snap.start is not self._start:
            self._start = snap.start
            self._apply_world(snap.start)
            self.task = make_model_task(self.model, snap.start.statics, self.objects)
        self._state, self.step_count, self.memory = snap.state.clone(), snap.step, dict(snap.memory)

    # --- what the policy sees ------------------------------------------------------------------------

    def placements(self) -> dict[str, Placement]:
        """Where M has every task object now (the held one from the gripper's dofs)."""
        state = self.state
        held = HELD_OBJECTS[self.task_name]
        with torch.no_grad():
            placements = {held: Placement(to_pose(held_matrix(self.model, state)), self._thread_angles())}
            if self.task_name == 'spatula_flipping':
                placements['pancake'] = Placement(to_pose(self.task.pancake(state)))
        placements.update({name: Placement(pose) for name, pose in self._start.statics.items()})
        return placements

    def _thread_angles(self) -> tuple[float, ...] | None:
        if self.task_name != 'needle_threading':
            return None
        return tuple(float(a) for a in self.state[self.model.dof_slice('thread')])

    def tcp_pose(self) -> Pose:
        with torch.no_grad():
            return to_pose(tcp_matrix(self.model, self.state))

    def observe(self, camera_pose_world: torch.Tensor, requires_grad: bool = False) -> PolicyObservation:
        """M's render of the current state (objects and the Panda's hand) from `camera_pose_world`
        ((4, 4) camera-to-world, optical frame). With requires_grad the image keeps the autograd
        graph to that pose (which must then require grad itself, e.g. computed from view parameters)."""
        tcp = self.tcp_pose()
        image = render_policy_image(self.renderer, self.placements(), tcp, GRIPPER_WIDTHS_M[self.task_name],
                                    self.task.target, camera_pose_world, self.objects, requires_grad)
        return PolicyObservation(image, self.proprio(camera_pose_world))

    def proprio(self, camera_pose_world: torch.Tensor) -> torch.Tensor:
        """PolicyObservation.proprio of the current state seen from `camera_pose_world`."""
        with torch.no_grad():
            tcp = tcp_matrix(self.model, self.state)
        return policy_proprio(tcp, self.step_count / self.max_episode_steps, camera_pose_world)
