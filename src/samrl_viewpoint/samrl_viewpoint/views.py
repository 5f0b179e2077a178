"""The view distribution: camera poses the camera arm can reach, looking at a task's workspace.

A view is six numbers P = (azimuth rad, elevation rad, distance m, look-at x, y, z m): the camera
stands `distance` from the look-at point, in the direction given by azimuth (about world z, from
world +x) and elevation (above the horizontal), and looks at the point with image up = world up
(samrl_description.geometry.look_at). These are the variables a person would name, and the ones
the view step moves along dQ/dP (paper Sec. III-D, Eq. 10): `camera_pose` maps them to
T_world_optical differentiably.

Each task has a ViewBox of ranges around its workspace, wide enough to hold poor views (far away,
grazing, from behind the hand, looking past the objects) besides its default view. A view is
*reachable* when the camera arm's IK reaches it within the world's tolerances and the camera stays
inside the world's camera workspace; `ViewSpace.sample` and `ViewSpace.project` only ever return
reachable views.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from samrl_description.camera_arm_kinematics import CameraArmKinematics, IkSolution
from samrl_description.default_views import DEFAULT_VIEWS
from samrl_description.geometry import Pose
from samrl_description.tasks import check_task

PARAM_NAMES = ('azimuth_rad', 'elevation_rad', 'distance_m', 'look_at_x_m', 'look_at_y_m', 'look_at_z_m')
NUM_PARAMS = len(PARAM_NAMES)
DTYPE = torch.float64
# The world accepts camera goals inside this box (samrl_sim.safety.CameraLimits; a test keeps them equal).
CAMERA_WORKSPACE_LOWER_M = (0.0, -0.9, 0.05)
CAMERA_WORKSPACE_UPPER_M = (1.2, 0.9, 1.0)
# Rejection sampling gives up, as an unreachable box, below this fraction of reachable draws.
MIN_REACHABLE_FRACTION = 0.05
EXTRA_DRAWS = 20
ANCHOR_SEED = 0              # draws the projection anchor of a box that does not hold the default view
# Halvings of the segment from a reachable view when projecting an unreachable one (1/256 of it).
PROJECTION_BISECTIONS = 8


@dataclass(frozen=True)
class ViewBox:
    """Ranges (low, high) of a task's view parameters; the look-at point in a box around a centre."""

    azimuth_rad: tuple[float, float]
    elevation_rad: tuple[float, float]
    distance_m: tuple[float, float]
    look_at_centre_m: tuple[float, float, float]
    look_at_half_extent_m: tuple[float, float, float]

    @property
    def lower(self) -> torch.Tensor:
        """Lowest value of each parameter (6,), in PARAM_NAMES order."""
        return self._bound(0, -1.0)

    @property
    def upper(self) -> torch.Tensor:
        """Highest value of each parameter (6,), in PARAM_NAMES order."""
        return self._bound(1, 1.0)

    def _bound(self, end: int, sign: float) -> torch.Tensor:
        look_at = np.asarray(self.look_at_centre_m) + sign * np.asarray(self.look_at_half_extent_m)
        angles_and_distance = (self.azimuth_rad[end], self.elevation_rad[end], self.distance_m[end])
        return torch.tensor([*angles_and_distance, *look_at], dtype=DTYPE)

    def contains(self, params: torch.Tensor) -> bool:
        p = torch.as_tensor(params, dtype=DTYPE)
        return bool(torch.all(p >= self.lower) and torch.all(p <= self.upper))

    def clamp(self, params: torch.Tensor) -> torch.Tensor:
        return torch.clamp(torch.as_tensor(params, dtype=DTYPE), self.lower, self.upper)

    def worst_off_axis_rad(self) -> float:
        """Largest angle between the optical axis and the ray to the look-at centre over the box.

        With the look-at point o from the centre and the camera d from the look-at point, the
        angle is at most asin(|o| / (d - |o|)): the workspace centre stays in the image while this
        is below half the camera's field of view.
        """
        offset = float(np.linalg.norm(self.look_at_half_extent_m))
        return math.asin(min(1.0, offset / (self.distance_m[0] - offset)))


# Shared by the three tasks: every azimuth from behind the Panda's hand (-170 deg: the camera between
# the Panda's base and the work, looking out along +x) round the camera arm's side to facing the
# Panda (+10 deg); elevations from grazing (8 deg, the camera 5 cm above the table at the nearest
# distance) to steeply down (70 deg); distances from close (0.38 m) to far (0.90 m, at the arm's reach).
# The camera arm stands at y = -0.65 m, so the views it cannot reach (beyond +10 deg, or far and
# behind, or below the world's 5 cm camera floor) are left to rejection: 78-85 % of each box is reachable.
_AZIMUTH_RAD = (math.radians(-170.0), math.radians(10.0))
_ELEVATION_RAD = (math.radians(8.0), math.radians(70.0))
_DISTANCE_M = (0.38, 0.90)
# The look-at point wanders +-6 cm across and +-4 cm up and down around the default view's target,
# so the camera can look past the objects while they stay in the image (worst_off_axis_rad).
_LOOK_AT_HALF_EXTENT_M = (0.06, 0.06, 0.04)

VIEW_BOXES: dict[str, ViewBox] = {
    task: ViewBox(_AZIMUTH_RAD, _ELEVATION_RAD, _DISTANCE_M, DEFAULT_VIEWS[task].target_m, _LOOK_AT_HALF_EXTENT_M)
    for task in DEFAULT_VIEWS
}


# --- parameters <-> poses ---------------------------------------------------------------------------

def _viewing_frame(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(unit vector from the look-at point to the eye, image right, image down), all (..., 3)."""
    azimuth, elevation = params[..., 0], params[..., 1]
    cos_az, sin_az, cos_el, sin_el = torch.cos(azimuth), torch.sin(azimuth), torch.cos(elevation), torch.sin(elevation)
    back = torch.stack([cos_el * cos_az, cos_el * sin_az, sin_el], dim=-1)
    right = torch.stack([-sin_az, cos_az, torch.zeros_like(azimuth)], dim=-1)   # horizontal: no roll
    down = torch.linalg.cross(-back, right)                                    # y = z x x (REP-103)
    return back, right, down


def eye_position(params: torch.Tensor) -> torch.Tensor:
    """Camera position (..., 3) in the world (m)."""
    back, _, _ = _viewing_frame(params)
    return params[..., 3:6] + params[..., 2:3] * back


def camera_pose(params: torch.Tensor) -> torch.Tensor:
    """T_world_optical (..., 4, 4) of views (..., 6), differentiable in the parameters.

    Equal to look_at(eye, look-at point) of samrl_description.geometry: optical z towards the
    look-at point, x horizontal (image right), y = z x x (image down).
    """
    params = torch.as_tensor(params, dtype=DTYPE)
    back, right, down = _viewing_frame(params)
    rotation = torch.stack([right, down, -back], dim=-1)                    # columns x, y, z
    top = torch.cat([rotation, eye_position(params).unsqueeze(-1)], dim=-1)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=DTYPE).expand(*top.shape[:-2], 1, 4)
    return torch.cat([top, bottom], dim=-2)


def params_of_look_at(eye_m, target_m) -> torch.Tensor:
    """The view (6,) whose camera stands at `eye_m` looking at `target_m` (inverse of eye_position)."""
    eye, target = np.asarray(eye_m, dtype=float), np.asarray(target_m, dtype=float)
    offset = eye - target
    distance = float(np.linalg.norm(offset))
    return torch.tensor([math.atan2(offset[1], offset[0]), math.asin(offset[2] / distance), distance, *target],
                        dtype=DTYPE)


def default_view_params(task: str) -> torch.Tensor:
    """The task's default view (samrl_description.default_views) as view parameters."""
    return params_of_look_at(*DEFAULT_VIEWS[check_task(task)])


def view_pose(params: torch.Tensor) -> Pose:
    """The optical frame's pose (numpy Pose) of one view."""
    return Pose.from_matrix(camera_pose(torch.as_tensor(params, dtype=DTYPE).detach()).numpy())


# --- reachable views ----------------------------------------------------------------------------------

class ViewSpace:
    """A task's view box with the camera arm that must reach its views.

    `sample` draws reachable views uniformly from the box (rejection through the arm's IK);
    `project` maps any parameters to a reachable view in the box, for the view step.
    """

    def __init__(self, task: str, box: ViewBox | None = None, kinematics: CameraArmKinematics | None = None):
        self.task = check_task(task)
        self.box = VIEW_BOXES[task] if box is None else box
        self.kinematics = CameraArmKinematics() if kinematics is None else kinematics
        # A known-reachable view of the box for `project`: the default view, else a seeded sample
        # (which raises if the box is unreachable).
        self.anchor = self.box.clamp(default_view_params(task))
        if not self.is_reachable(self.anchor):
            self.anchor = self.sample(np.random.default_rng(ANCHOR_SEED), 1)[0]
        self.anchor_joints_rad = self.solve(self.anchor).joints_rad

    def camera_pose(self, params: torch.Tensor) -> torch.Tensor:
        """(6,) view parameters -> (4, 4) camera-to-world pose, differentiable (the learning code's protocol)."""
        return camera_pose(params)

    def default(self) -> torch.Tensor:
        """The task's default view (Table I's Fixed View), as parameters."""
        return default_view_params(self.task)

    def solve(self, params: torch.Tensor, seed_rad: np.ndarray | None = None) -> IkSolution:
        """The camera arm's IK solution for one view (`seed_rad`: joints to start from besides the fixed ones)."""
        return self.kinematics.solve(view_pose(params), seed_rad)

    def is_reachable(self, params: torch.Tensor) -> bool:
        """Inside the world's camera workspace and reached by the camera arm within tolerance."""
        return self._reach(params) is not None

    def _reach(self, params: torch.Tensor, seed_rad: np.ndarray | None = None) -> np.ndarray | None:
        """The joints that reach a view inside the camera workspace, else None."""
        eye = eye_position(torch.as_tensor(params, dtype=DTYPE).detach()).numpy()
        if not (np.all(eye >= CAMERA_WORKSPACE_LOWER_M) and np.all(eye <= CAMERA_WORKSPACE_UPPER_M)):
            return None
        solution = self.solve(params, seed_rad)
        return solution.joints_rad if solution.reachable else None

    def sample(self, rng: np.random.Generator, n: int) -> torch.Tensor:
        """n reachable views (n, 6), uniform in the box; ValueError if the box is (nearly) unreachable."""
        lower, upper = self.box.lower.numpy(), self.box.upper.numpy()
        max_draws = math.ceil(n / MIN_REACHABLE_FRACTION) + EXTRA_DRAWS
        views, draws = [], 0
        while len(views) < n and draws < max_draws:
            candidate = torch.tensor(rng.uniform(lower, upper), dtype=DTYPE)
            draws += 1
            if self.is_reachable(candidate):
                views.append(candidate)
        if len(views) < n:
            raise ValueError(f'{self.task}: only {len(views)} of {draws} views drawn from the box {self.box} are '
                             f'reachable by the camera arm (need {n}); move or shrink the box')
        return torch.stack(views) if views else torch.empty(0, NUM_PARAMS, dtype=DTYPE)

    def project(self, params: torch.Tensor, anchor: torch.Tensor | None = None) -> torch.Tensor:
        """The reachable view nearest `params` on the segment from `anchor` to `params` clamped to the box.

        `anchor` is a reachable view (the view step passes the current one); the task's default
        view stands in when it is None or not reachable. The box is convex, so the segment lies in
        it; bisection keeps its near end reachable, so the result always is. Parameters that are
        not finite (a NaN gradient) give the anchor.
        """
        target = self.box.clamp(torch.as_tensor(params, dtype=DTYPE).detach())
        finite = bool(torch.all(torch.isfinite(target)))
        if finite and self.is_reachable(target):
            return target
        start, joints = self._reachable_anchor(anchor)
        if not finite:
            return start
        # Each IK starts from the nearest reachable point's joints as well: near the reach's edge the
        # fixed seeds alone take 30-40 ms a solve, a warm one converges in a few iterations.
        reachable_fraction, unreachable_fraction = 0.0, 1.0
        for _ in range(PROJECTION_BISECTIONS):
            middle = 0.5 * (reachable_fraction + unreachable_fraction)
            reached = self._reach(start + middle * (target - start), joints)
            if reached is not None:
                reachable_fraction, joints = middle, reached
            else:
                unreachable_fraction = middle
        return start + reachable_fraction * (target - start)

    def _reachable_anchor(self, anchor: torch.Tensor | None) -> tuple[torch.Tensor, np.ndarray]:
        """`anchor` clamped to the box if that is reachable, else the task's default view; with its joints."""
        if anchor is not None:
            clamped = self.box.clamp(torch.as_tensor(anchor, dtype=DTYPE).detach())
            joints = self._reach(clamped) if bool(torch.all(torch.isfinite(clamped))) else None
            if joints is not None:
                return clamped, joints
        return self.anchor, self.anchor_joints_rad
