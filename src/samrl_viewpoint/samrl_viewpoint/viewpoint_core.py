"""The sensing-aware camera in a running graph: viewpoint_node's work, ROS-free (paper Alg. 1 lines 5-13).

It keeps the view P the camera arm holds (views.PARAM_NAMES), starting from the camera's pose when
one is known (the view looking along its optical axis at the point nearest the task's default look-at
point, projected onto the reachable views) or else the task's default view. Each tick it renders M's
state as the actor sees it (samrl_policy.policy_core.ModelStateView, the function policy_node renders
with), takes one view step up dQ(I(P), pi(I(P)))/dP (active_view.ActiveCamera) and, when the step is
accepted, gives the new view's optical-frame pose as the camera goal. Every view it gives is reachable.
"""
from __future__ import annotations

import numpy as np
import torch

from samrl_description.geometry import Pose
from samrl_policy.policy_core import ModelStateView, checked_pose, placements_from_state
from samrl_viewpoint.active_view import ActiveCamera, sensing_q
from samrl_viewpoint.view_step import DEFAULT_STEP_SIZE, ViewStepBounds, ViewStepResult
from samrl_viewpoint.views import ViewSpace, params_of_look_at, view_pose

MIN_LOOK_DISTANCE_M = 0.05      # a look-at point closer than this to the camera gives no viewing direction
OPTICAL_AXIS = 2                # optical z: the viewing direction (REP-103)


def view_of_camera(views: ViewSpace, camera: Pose) -> torch.Tensor:
    """The reachable view nearest the camera's pose: its eye, looking along its optical axis at the
    point of that axis nearest the default view's look-at point."""
    eye = np.asarray(camera.position, dtype=float)
    axis = camera.rotation[:, OPTICAL_AXIS]
    default_look_at = views.default()[3:].numpy()
    along = max(float(np.dot(default_look_at - eye, axis)), MIN_LOOK_DISTANCE_M)
    return views.project(params_of_look_at(eye, eye + along * axis))


class ViewpointCore:
    """One task's camera view, moved by one view step per tick."""

    def __init__(self, task: str, actor: torch.nn.Module, q_network: torch.nn.Module, image_size: tuple[int, int],
                 step_size: float = DEFAULT_STEP_SIZE, camera: Pose | None = None,
                 bounds: ViewStepBounds = ViewStepBounds()):
        self.task = task
        self.actor, self.q_network = actor.eval(), q_network.eval()
        self.views = ViewSpace(task)
        self.view = ModelStateView(task, image_size, zoom=actor.config.image_zoom)
        start = self.views.default() if camera is None else view_of_camera(self.views, checked_pose(camera, 'camera'))
        self.camera = ActiveCamera(self.views, start, step_size, bounds)

    def goal(self) -> Pose:
        """The optical frame's world pose of the current view."""
        return view_pose(self.camera.params)

    def step(self, state, tcp: Pose, progress: float) -> ViewStepResult:
        """One view step on a ModelState with the tool's pose and the episode's progress (policy_core's
        inputs); InputError if they are unusable (the view is then unchanged)."""
        placements = placements_from_state(self.task, state)
        tcp = checked_pose(tcp, 'tool pose')

        def observe(camera_pose_world: torch.Tensor, requires_grad: bool = False):
            return self.view.observe(placements, tcp, progress, camera_pose_world, requires_grad)

        return self.camera.step(sensing_q(observe, self.actor, self.q_network, self.views))
