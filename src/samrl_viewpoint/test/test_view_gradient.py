"""dQ/dP through Mitsuba agrees with central differences of Q(I(P)) (paper Eq. 7), and a view step runs on it.

Q is a smooth function of the rendered image: the mask of a 10 cm box, weighted by a Gaussian
about the image centre. The box sits off the look-at point, so every view parameter moves its
silhouette across the weight's slope; a chain that lost the camera-pose gradient (a detached
pose, or Mitsuba's own sensor-pose gradient without its silhouette term, FACTS.md) would fail.
"""
import math

import numpy as np
import pytest
import torch

from samrl_description.camera import CameraIntrinsics
from samrl_description.objects import BoxPart
from samrl_model.meshes import box_mesh
from samrl_model.render import ObjectParams, Renderer
from samrl_viewpoint.view_step import view_step
from samrl_viewpoint.views import DTYPE, PARAM_NAMES, camera_pose

CAMERA = CameraIntrinsics.d435(48, 36)
AD_SPP = 64                      # the gradient pass
FD_SPP = 1024                    # finite differences need less Monte Carlo noise than the step they divide by
FD_STEP = 0.01                   # rad or m: moves the silhouette about a pixel
FD_RELATIVE_TOLERANCE = 0.15     # measured: within 4 % at these sample counts
MIN_GRADIENT = 10.0              # Q per rad or m: each parameter visibly changes Q (Q itself is about 130)
WEIGHT_SIGMA_PX = 8.0
BOX_HALF_M = (0.05, 0.05, 0.05)
BOX_CENTRE_M = (0.53, 0.03, 0.12)          # 4.5 cm beside the look-at point
BOX_YAW_RAD = 0.3
VIEW = (math.radians(-40.0), math.radians(30.0), 0.45, 0.5, 0.0, 0.1)


def _box() -> dict[str, ObjectParams]:
    return {'box': ObjectParams(box_mesh(BoxPart(BOX_HALF_M, (0.0, 0.0, 0.0))), torch.tensor(BOX_CENTRE_M, dtype=DTYPE),
                                torch.tensor([0.0, 0.0, BOX_YAW_RAD], dtype=DTYPE),
                                torch.tensor([0.8, 0.3, 0.2], dtype=DTYPE))}


def _gaussian_weights() -> torch.Tensor:
    v, u = torch.meshgrid(torch.arange(CAMERA.height, dtype=DTYPE), torch.arange(CAMERA.width, dtype=DTYPE),
                          indexing='ij')
    return torch.exp(-((u - CAMERA.cx + 0.5) ** 2 + (v - CAMERA.cy + 0.5) ** 2) / (2.0 * WEIGHT_SIGMA_PX ** 2))


def _q_of_view(spp: int):
    """Q(I(P)): camera_pose -> Mitsuba render -> Gaussian-weighted mask sum, the same seed at every P."""
    renderer, objects, weights = Renderer(CAMERA, spp=spp), _box(), _gaussian_weights()
    return lambda params: (weights * renderer.render(objects, camera_pose(params), target='box', seed=0).mask).sum()


@pytest.fixture(scope='module')
def analytic_gradient() -> torch.Tensor:
    leaf = torch.tensor(VIEW, dtype=DTYPE, requires_grad=True)
    gradient, = torch.autograd.grad(_q_of_view(AD_SPP)(leaf), leaf)
    return gradient


def test_dq_dp_matches_central_differences_of_the_render(analytic_gradient):
    q_of_view, view = _q_of_view(FD_SPP), torch.tensor(VIEW, dtype=DTYPE)
    with torch.no_grad():
        for index, name in enumerate(PARAM_NAMES):
            shift = torch.zeros(6, dtype=DTYPE)
            shift[index] = FD_STEP
            numeric = float(q_of_view(view + shift) - q_of_view(view - shift)) / (2.0 * FD_STEP)
            analytic = float(analytic_gradient[index])
            assert abs(numeric) > MIN_GRADIENT, (name, numeric)
            assert abs(analytic - numeric) < FD_RELATIVE_TOLERANCE * abs(numeric), (name, analytic, numeric)


def test_a_view_step_through_the_renderer_stays_reachable(view_spaces):
    views = view_spaces['needle_threading']
    start = views.project(torch.tensor(VIEW, dtype=DTYPE))
    result = view_step(_q_of_view(AD_SPP), start, views)
    assert views.is_reachable(result.params) and np.isfinite(result.q_before) and np.isfinite(result.q_after)
    assert result.accepted == (result.q_after >= result.q_before)
    assert torch.count_nonzero(result.gradient) == 6
