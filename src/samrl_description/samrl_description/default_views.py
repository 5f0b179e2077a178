"""Each task's default camera view: where the camera stands and the point it looks at (world frame, m).

The default view is the one a person would choose to watch the task: the PyBullet world starts
every episode there (samrl_sim.tasks.*.default_camera_pose), the Fixed-View actor of Table I is
trained from it, and it is one point of the view distribution that the view step moves through
(samrl_viewpoint.views). The pose is `look_at(eye_m, target_m)`: image up is world up.
"""
from __future__ import annotations

from typing import NamedTuple

from samrl_description.geometry import Pose, look_at
from samrl_description.tasks import check_task


class DefaultView(NamedTuple):
    """Camera position and look-at point (m, world frame); `look_at(*view)` is the optical frame's pose."""

    eye_m: tuple[float, float, float]
    target_m: tuple[float, float, float]


DEFAULT_VIEWS: dict[str, DefaultView] = {
    # From the front right, slightly above the needle's eye, so the thread's tip and the eye both show.
    'needle_threading': DefaultView(eye_m=(0.82, -0.24, 0.32), target_m=(0.50, 0.0, 0.19)),
    # Higher and farther back: the peg above the hole and the block's top face in one image.
    'peg_insertion': DefaultView(eye_m=(0.95, -0.40, 0.50), target_m=(0.50, 0.0, 0.10)),
    # Looking down on the pancake from the front, the spatula's blade sliding in from the side.
    'spatula_flipping': DefaultView(eye_m=(0.95, -0.15, 0.45), target_m=(0.47, 0.0, 0.04)),
}


def default_camera_pose(task: str) -> Pose:
    """camera_color_optical_frame pose in the world frame of `task`'s default view."""
    return look_at(*DEFAULT_VIEWS[check_task(task)])
