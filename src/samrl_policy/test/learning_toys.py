"""A tiny deterministic stand-in for M, the expert and the view distribution (samrl_policy.interfaces).

Task: move a point end effector to a goal point, both drawn in a cube by the episode's seed.
The camera sees both as blobs (goal: red and the mask; end effector: green) and two fixed world
markers (blue) that tell the view; depth is the blobs' distance over a far background. The
proprioception is the end effector's position and the episode's elapsed fraction, so the goal is
known only from the image: a view that misses it (the look-at point shifted far aside) leaves
the learner guessing, as the paper's "looking into the sky" example. Rendering is a few torch
operations on a small image, differentiable in the camera pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from samrl_policy.networks import NetworkConfig

CUBE_HALF_M = 0.2               # ee and goal start uniformly in [-CUBE_HALF_M, CUBE_HALF_M]^3
STEP_M = 0.05                   # an action of 1 moves the end effector this far along an axis
SUCCESS_RADIUS_M = 0.05
SUCCESS_REWARD = 1.0
HORIZON = 12                    # steps per episode
IMAGE_PX = 32
FOCAL_PX = 28.0                 # about 60 degrees field of view at 32 px
BLOB_SIGMA_PX = 1.8
BACKGROUND_DEPTH_M = 1.9
MARKERS_M = ((0.0, 0.0, -CUBE_HALF_M), (CUBE_HALF_M, 0.0, -CUBE_HALF_M))    # fixed world points (blue)
CAMERA_DISTANCE_M = 0.9
AZIMUTH_RANGE = (-math.pi, math.pi)
ELEVATION_RANGE = (0.35, 1.3)   # rad above the horizontal
OFFSET_RANGE_M = (0.0, 0.8)     # the look-at point's shift aside: large values look past the work
DEFAULT_VIEW = (0.0, 0.9, 0.0)
PROPRIO_DIM = 4


@dataclass
class Outcome:
    reward: float
    success: bool
    done: bool


@dataclass
class Obs:
    image: torch.Tensor
    proprio: torch.Tensor


class ToyEnv:
    """Point reaching; see the module docstring."""

    def __init__(self, image_px: int = IMAGE_PX):
        self.image_px = image_px
        self.ee = np.zeros(3)
        self.goal = np.zeros(3)
        self.t = 0

    def reset(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.ee, self.goal = rng.uniform(-CUBE_HALF_M, CUBE_HALF_M, (2, 3))
        self.t = 0

    def distance(self) -> float:
        return float(np.linalg.norm(self.goal - self.ee))

    def step(self, action: np.ndarray) -> Outcome:
        self.ee = self.ee + STEP_M * np.clip(np.asarray(action, dtype=np.float64)[:3], -1.0, 1.0)
        self.t += 1
        success = self.distance() < SUCCESS_RADIUS_M
        reward = -self.distance() + (SUCCESS_REWARD if success else 0.0)
        return Outcome(reward, success, success or self.t >= HORIZON)

    def snapshot(self) -> tuple:
        return self.ee.copy(), self.goal.copy(), self.t

    def restore(self, snap: tuple) -> None:
        self.ee, self.goal, self.t = snap[0].copy(), snap[1].copy(), snap[2]

    def observe(self, camera_pose_world: torch.Tensor, requires_grad: bool = False) -> Obs:
        pose = camera_pose_world if requires_grad else camera_pose_world.detach()
        points = torch.tensor(np.stack([self.goal, self.ee, *MARKERS_M]), dtype=torch.float64)
        blobs, depths = self._project(pose, points)
        goal, ee, markers = blobs[0], blobs[1], blobs[2] + 0.5 * blobs[3]
        weight = blobs.clamp(max=1.0)
        depth = BACKGROUND_DEPTH_M + (weight * (depths[:, None, None] - BACKGROUND_DEPTH_M)).sum(0)
        image = torch.stack([goal, ee, markers.clamp(max=1.0), depth, goal]).float()
        proprio = torch.tensor([*self.ee, self.t / HORIZON], dtype=torch.float32)
        return Obs(image, proprio)

    def _project(self, pose: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, H, W) Gaussian blobs of the points seen from the pose, and (N,) their depths."""
        rotation, eye = pose[:3, :3], pose[:3, 3]
        camera = (points - eye) @ rotation                  # world -> camera (x right, y down, z forward)
        depth = camera[:, 2]
        in_front = (depth > 0.05).double()
        u = FOCAL_PX * camera[:, 0] / depth.clamp(min=0.05) + self.image_px / 2
        v = FOCAL_PX * camera[:, 1] / depth.clamp(min=0.05) + self.image_px / 2
        pixels = torch.arange(self.image_px, dtype=torch.float64) + 0.5
        du = (pixels[None, None, :] - u[:, None, None]) ** 2
        dv = (pixels[None, :, None] - v[:, None, None]) ** 2
        blobs = torch.exp(-(du + dv) / (2 * BLOB_SIGMA_PX ** 2)) * in_front[:, None, None]
        return blobs, depth


class ToyExpert:
    """Heads straight for the goal at full speed: the label of any state."""

    def __init__(self) -> None:
        self.calls = 0

    def reset(self) -> None:
        pass

    def act(self, env: ToyEnv) -> np.ndarray:
        self.calls += 1
        action = np.zeros(7)
        action[:3] = np.clip((env.goal - env.ee) / STEP_M, -1.0, 1.0)
        return action


class ToyViews:
    """Look-at views: (azimuth rad, elevation rad, look-at offset m) around the cube's centre.

    The ranges are the distribution's; the default ones include views that miss the work.
    """

    def __init__(self, azimuth: tuple[float, float] = AZIMUTH_RANGE, elevation: tuple[float, float] = ELEVATION_RANGE,
                 offset_m: tuple[float, float] = OFFSET_RANGE_M):
        self.low, self.high = zip(azimuth, elevation, offset_m)

    def sample(self, rng: np.random.Generator, n: int) -> torch.Tensor:
        return torch.from_numpy(rng.uniform(self.low, self.high, size=(n, 3)))

    def default(self) -> torch.Tensor:
        return torch.tensor(DEFAULT_VIEW, dtype=torch.float64)

    def camera_pose(self, params: torch.Tensor) -> torch.Tensor:
        azimuth, elevation, offset = params[0], params[1], params[2]
        zero = torch.zeros((), dtype=torch.float64)
        target = torch.stack([-torch.sin(azimuth), torch.cos(azimuth), zero]) * offset
        eye = target + CAMERA_DISTANCE_M * torch.stack([torch.cos(elevation) * torch.cos(azimuth),
                                                        torch.cos(elevation) * torch.sin(azimuth),
                                                        torch.sin(elevation)])
        forward = (target - eye) / torch.linalg.norm(target - eye)
        up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        right = torch.linalg.cross(forward, up)
        right = right / torch.linalg.norm(right)
        down = torch.linalg.cross(forward, right)
        return torch.cat([torch.cat([torch.stack([right, down, forward], dim=1), eye[:, None]], dim=1),
                          torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)])


# -- what the tests share -------------------------------------------------------------------------
SMALL_NETWORK = NetworkConfig(proprio_dim=PROPRIO_DIM, encoder='pooled', channels=(8, 16, 16), feature_dim=32,
                              hidden=(64, 64))
NARROW_VIEWS = {'azimuth': (-0.3, 0.3), 'elevation': (0.8, 1.0), 'offset_m': (0.0, 0.05)}   # all see the work


class StoppingExpert(ToyExpert):
    """The toy expert, until its `stop_after`-th label: then it raises Interrupted (a run killed mid-round)."""

    def __init__(self, stop_after: int):
        super().__init__()
        self.stop_after = stop_after

    def act(self, env: ToyEnv) -> np.ndarray:
        if self.calls + 1 >= self.stop_after:
            raise Interrupted(f'stopped at label {self.calls + 1}')
        return super().act(env)


class Interrupted(RuntimeError):
    """Stands for a run killed part-way (Ctrl-C, a crash, a lost machine)."""
