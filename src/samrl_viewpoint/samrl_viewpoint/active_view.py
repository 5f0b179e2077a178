"""The sensing-aware camera of Alg. 1 (lines 5-13): Q(I(P), pi(I(P))) as a function of the view P, and
one bounded, reachable view step per control step.

    q_of_view(P) = Q(I(P), pi(I(P)))         I(P): M's render of its current state from view P

The gradient of Eq. 10 flows through both arguments of Q: through the image Q sees and through
the action the actor takes from that image. The paper differentiates Q(I(P), pi(I(P))), the value of
acting from view P; a view is better when it shows the state more clearly *and* when the actor acts
better from it, and stopping the gradient at the action would drop the second half.

The networks and the model are duck-typed (samrl_policy's Actor and QNetwork, its ModelEnv), so the
viewpoint core imports neither.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from samrl_viewpoint.view_step import DEFAULT_STEP_SIZE, ViewStepBounds, ViewStepResult, view_step
from samrl_viewpoint.views import ViewSpace


def sensing_q(observe: Callable, actor: torch.nn.Module, q_network: torch.nn.Module, views: ViewSpace
              ) -> Callable[[torch.Tensor], torch.Tensor]:
    """q_of_view(params) -> Q(I(P), pi(I(P))), a scalar tensor, differentiable w.r.t. params.

    observe(camera_pose_world, requires_grad) -> an observation with .image (C, H, W) and .proprio (P,)
    (samrl_policy.model_env.ModelEnv.observe); it must render both views of one step with the same
    Monte Carlo seed, so that Q at P and at P' are compared on equal terms.
    """
    def q_of_view(params: torch.Tensor) -> torch.Tensor:
        observation = observe(views.camera_pose(params), requires_grad=params.requires_grad)
        image, proprio = observation.image[None], observation.proprio[None]
        return q_network(image, proprio, actor(image, proprio))[0]

    return q_of_view


@dataclass
class ActiveCamera:
    """The view P the camera holds through an episode, moved by one view step per control step."""

    views: ViewSpace
    params: torch.Tensor
    step_size: float = DEFAULT_STEP_SIZE
    bounds: ViewStepBounds = ViewStepBounds()

    @classmethod
    def random_start(cls, views: ViewSpace, rng: np.random.Generator, **kwargs) -> ActiveCamera:
        """An episode's first view, drawn from the view distribution."""
        return cls(views, views.sample(rng, 1)[0], **kwargs)

    def pose(self) -> torch.Tensor:
        """The current camera-to-world pose (4, 4)."""
        return self.views.camera_pose(self.params.detach())

    def step(self, q_of_view: Callable[[torch.Tensor], torch.Tensor]) -> ViewStepResult:
        """Eq. 10 once: the camera moves to P' if Q did not fall there; the result says what happened."""
        clock = time.perf_counter()
        result = view_step(q_of_view, self.params, self.views, self.step_size, self.bounds)
        self.params = result.params.detach()
        result.timings_s['total'] = time.perf_counter() - clock
        return result

