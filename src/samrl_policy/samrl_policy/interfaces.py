"""What the learning code needs from the model M, the expert and the view distribution.

The learning code (dagger.py, q_learning.py, training.py) is written against these protocols
only, so it runs on the episode environment in M (model_env.py), on the trajectory-optimisation
expert (expert.py) and on samrl_viewpoint's view distribution, and in the tests on tiny toy
stand-ins, without importing any of them.

Conventions shared by every implementation:

* actions are the gymnasium environments' actions: ACTION_DIM numbers in [-1, 1] (a bounded
  end-effector delta and the gripper command);
* an image is IMAGE_CHANNELS planes: RGB in [0, 1], depth in metres, the target's mask in [0, 1]
  (paper Sec. III-D: the actor and Q see M's render of the state from a camera pose P);
* a camera pose is a (4, 4) float64 homogeneous transform, camera to world.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

ACTION_DIM = 7                  # end-effector delta (6) and gripper (1), each in [-1, 1]
IMAGE_CHANNELS = 5              # R, G, B, depth, target mask
RGB_CHANNELS = slice(0, 3)
DEPTH_CHANNEL = 3
MASK_CHANNEL = 4


@runtime_checkable
class StepOutcome(Protocol):
    """What one env step reports."""

    reward: float       # the task's reward for this step
    success: bool       # the task is done successfully (an episode ends on it)
    done: bool          # the episode is over (success, failure or time limit)


@runtime_checkable
class Observation(Protocol):
    """What the networks see of a state from one camera pose."""

    image: torch.Tensor     # (IMAGE_CHANNELS, H, W) float32
    proprio: torch.Tensor   # (P,) float32: the robot's own state


@runtime_checkable
class Env(Protocol):
    """One episode at a time in the model M."""

    def reset(self, seed: int) -> None:
        """Start an episode from the task's randomisation, drawn with `seed`."""

    def step(self, action: np.ndarray) -> StepOutcome:
        """Apply a (ACTION_DIM,) action in [-1, 1] for one control step."""

    def snapshot(self) -> Any:
        """The full state, for restore(); opaque to the caller."""

    def restore(self, snap: Any) -> None:
        """Go back to a state snapshot() returned."""

    def observe(self, camera_pose_world: torch.Tensor, requires_grad: bool = False) -> Observation:
        """Render the current state from a (4, 4) float64 camera-to-world pose.

        With requires_grad the image is differentiable with respect to the pose (the view step).
        """


@runtime_checkable
class Expert(Protocol):
    """The labeller of DAgger: the action an expert takes at the env's current state."""

    def reset(self) -> None:
        """Forget the previous episode (called at each episode start)."""

    def act(self, env: Env) -> np.ndarray:
        """(ACTION_DIM,) action in [-1, 1] at env's current state; may re-plan (seconds)."""


@runtime_checkable
class ViewDistribution(Protocol):
    """Camera poses the camera arm can reach and that look at the task's workspace."""

    def sample(self, rng: np.random.Generator, n: int) -> torch.Tensor:
        """(n, k) view parameters."""

    def camera_pose(self, params: torch.Tensor) -> torch.Tensor:
        """(k,) view parameters -> (4, 4) float64 camera-to-world pose, differentiable."""

    def default(self) -> torch.Tensor:
        """(k,) parameters of the task's default view (Table I's Fixed View)."""
