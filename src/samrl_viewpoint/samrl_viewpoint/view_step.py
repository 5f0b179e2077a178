"""The view step: move the camera up the gradient of the sensing-aware Q (paper Eqs. 7 and 10, Alg. 1 lines 5-13).

    P' = P + lambda * dQ(I(P), pi(I(P))) / dP

The caller composes Q as a function of the view, `q_of_view(params) -> scalar tensor`: views.camera_pose(P) ->
the model M's differentiable render I(P) (samrl_model.render.Renderer, whose camera-pose gradient
flows through the vertices, FACTS.md) -> the actor and the Q network. This module only differentiates
it, bounds and projects the step, and keeps P' only if Q did not fall. For a fair comparison of Q at
P and P', `q_of_view` should render both with the same Monte Carlo seed.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from samrl_viewpoint.views import DTYPE, ViewSpace

# How far the camera arm moves the view in one 0.1 s control step (CONTROL_RATE_HZ = 10): about 3 deg of
# azimuth or elevation (4.5 cm of camera travel at 0.9 m) and 3 cm of distance or look-at point, i.e.
# 0.3-0.5 m/s, well within a Rizon 4's joint speeds (2.1-4.9 rad/s) so the move completes within the step.
MAX_ANGLE_STEP_RAD = 0.05
MAX_DISTANCE_STEP_M = 0.03
MAX_LOOK_AT_STEP_M = 0.03
# lambda of Eq. 10 (parameter units squared per unit of Q): with Q a discounted return of order 1 and
# gradients of order 1 per rad or per m, the bound above, not lambda, usually sets the step length.
DEFAULT_STEP_SIZE = 0.1
# How a proposal longer than one control step's move is cut back: 'direction' shortens the whole step along
# the gradient (Eq. 10's direction kept; the parameter nearest its bound sets every parameter's pace),
# 'box' clips each parameter to its own bound (the projection onto the moves the arm can make in one step).
STEP_CLIPS = ('direction', 'box')


@dataclass(frozen=True)
class ViewStepBounds:
    """Largest change of each view parameter in one control step (rad for the angles, m otherwise)."""

    angle_rad: float = MAX_ANGLE_STEP_RAD
    distance_m: float = MAX_DISTANCE_STEP_M
    look_at_m: float = MAX_LOOK_AT_STEP_M
    clip: str = STEP_CLIPS[0]

    def __post_init__(self):
        if self.clip not in STEP_CLIPS:
            raise ValueError(f'view-step clip {self.clip!r}: expected one of {", ".join(STEP_CLIPS)}')

    def as_tensor(self) -> torch.Tensor:
        """Per-parameter bounds (6,) in views.PARAM_NAMES order."""
        return torch.tensor([self.angle_rad, self.angle_rad, self.distance_m, *(self.look_at_m,) * 3], dtype=DTYPE)


@dataclass(frozen=True)
class ViewStepResult:
    """One view step: the view to use (P' if accepted, else P), the proposal, Q at both and dQ/dP."""

    params: torch.Tensor
    proposed: torch.Tensor
    q_before: float
    q_after: float
    accepted: bool
    gradient: torch.Tensor
    timings_s: dict[str, float] = field(default_factory=dict)    # 'start', 'gradient', 'step', 'evaluate'
    failure: str = ''           # why no step was proposed (the renderer's gradient failed), else ''


def bounded_step(gradient: torch.Tensor, step_size: float | torch.Tensor, bounds: torch.Tensor,
                 clip: str = STEP_CLIPS[0]) -> torch.Tensor:
    """lambda * gradient within the per-parameter bounds: shortened along its own direction ('direction') or
    clipped parameter by parameter ('box'; STEP_CLIPS)."""
    step = torch.as_tensor(step_size, dtype=DTYPE) * gradient
    if clip == 'box':
        return torch.maximum(torch.minimum(step, bounds), -bounds)
    ratio = torch.max(step.abs() / bounds)
    return step / ratio if ratio > 1.0 else step


def view_step(q_of_view: Callable[[torch.Tensor], torch.Tensor], params: torch.Tensor, views: ViewSpace,
              step_size: float | torch.Tensor = DEFAULT_STEP_SIZE, bounds: ViewStepBounds = ViewStepBounds()
              ) -> ViewStepResult:
    """One step of Eq. 10 from the view `params` (6,); the view returned is always reachable.

    step_size: lambda, a scalar or one per parameter (units^2 per unit of Q); bounds: per control step.
    """
    # 1. Start from a reachable view (the current one, unless it is not).
    clock = time.perf_counter()
    start = views.project(params)
    timings = {'start': time.perf_counter() - clock}

    # 2. Q and dQ/dP there, through the networks and the renderer (Eq. 7).
    clock = time.perf_counter()
    leaf = start.clone().requires_grad_(True)
    q_before = q_of_view(leaf)
    try:
        gradient, = torch.autograd.grad(q_before, leaf)
    except RuntimeError as exc:     # e.g. Mitsuba's silhouette sampling finds no edge in some views
        timings['gradient'] = time.perf_counter() - clock
        return _no_step(start, float(q_before.detach()), timings, f'dQ/dP failed: {exc}')
    timings['gradient'] = time.perf_counter() - clock

    # 3. P' = P + lambda dQ/dP (Eq. 10), no longer than the camera arm moves in one step, projected
    #    onto the reachable views of the box.
    clock = time.perf_counter()
    proposed = views.project(start + bounded_step(gradient, step_size, bounds.as_tensor(), bounds.clip), anchor=start)
    timings['step'] = time.perf_counter() - clock

    # 4. Q at P'; keep P' only if Q did not fall (Alg. 1 lines 5-13).
    clock = time.perf_counter()
    with torch.no_grad():
        q_after = float(q_of_view(proposed))
    timings['evaluate'] = time.perf_counter() - clock
    q_before = float(q_before.detach())
    accepted = q_after >= q_before
    return ViewStepResult(proposed if accepted else start, proposed, q_before, q_after, accepted, gradient.detach(),
                          timings)


def _no_step(start: torch.Tensor, q: float, timings: dict[str, float], failure: str) -> ViewStepResult:
    """The camera stays where it is: no gradient, so no proposal."""
    return ViewStepResult(start, start, q, q, False, torch.zeros_like(start), timings, failure)
