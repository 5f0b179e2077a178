"""The view step (Eq. 10, Alg. 1 lines 5-13): bounded, always reachable, kept only when Q does not fall."""
import numpy as np
import pytest
import torch

from samrl_description.tasks import TASK_NAMES
from samrl_viewpoint.view_step import STEP_CLIPS, ViewStepBounds, bounded_step, view_step
from samrl_viewpoint.views import DTYPE, default_view_params, eye_position

BOUNDS = ViewStepBounds().as_tensor()
HUGE_GRADIENT = 1e12                    # Q units per rad or m: an adversarial Q that pushes without limit
STARTS_PER_TASK = 10
BOUND_SLACK = 1e-9


def _adversarial_q(direction: torch.Tensor):
    """Q rising steeply along a fixed direction in parameter space."""
    return lambda params: HUGE_GRADIENT * (direction * params).sum()


def _starts(views, rng: np.random.Generator) -> list[torch.Tensor]:
    """Reachable views from the distribution, and wild ones far outside the box."""
    centre = 0.5 * (views.box.lower + views.box.upper)
    wild = [centre + torch.tensor(rng.normal(0.0, 2.0, 6), dtype=DTYPE) for _ in range(STARTS_PER_TASK // 2)]
    return [*views.sample(rng, STARTS_PER_TASK - len(wild)), *wild]


@pytest.mark.parametrize('clip', STEP_CLIPS)
@pytest.mark.parametrize('task', TASK_NAMES)
def test_the_view_step_never_proposes_an_unreachable_pose(task, clip, view_spaces):
    views = view_spaces[task]
    rng = np.random.default_rng(TASK_NAMES.index(task))
    for start in _starts(views, rng):
        direction = torch.tensor(rng.normal(size=6), dtype=DTYPE)
        result = view_step(_adversarial_q(direction), start, views, bounds=ViewStepBounds(clip=clip))
        for params in (result.proposed, result.params):
            assert views.box.contains(params) and views.is_reachable(params), (start.tolist(), params.tolist())
        if views.box.contains(start) and views.is_reachable(start):
            assert torch.all((result.proposed - start).abs() <= BOUNDS + BOUND_SLACK)


def test_a_step_up_a_smooth_q_is_accepted_and_bounded(view_spaces):
    views = view_spaces['needle_threading']
    start = default_view_params('needle_threading')
    goal_eye = eye_position(start + torch.tensor([0.4, 0.3, 0.1, 0.0, 0.0, 0.0], dtype=DTYPE))

    def q_of_view(params):                           # Q is higher the nearer the camera is to goal_eye
        return -((eye_position(params) - goal_eye) ** 2).sum()

    params = start
    for _ in range(3):
        result = view_step(q_of_view, params, views)
        assert result.accepted and result.q_after >= result.q_before
        assert torch.all((result.params - params).abs() <= BOUNDS + BOUND_SLACK)
        assert set(result.timings_s) == {'start', 'gradient', 'step', 'evaluate'}
        params = result.params
    assert float(q_of_view(params)) > float(q_of_view(start))


def test_a_step_that_lowers_q_is_refused(view_spaces):
    views = view_spaces['peg_insertion']
    start = default_view_params('peg_insertion')
    best_azimuth = float(start[0]) - 0.01            # a narrow peak beside the start: a full step overshoots it

    def q_of_view(params):
        return -1e4 * (params[0] - best_azimuth) ** 2

    result = view_step(q_of_view, start, views)
    assert result.gradient[0] < 0 and not result.accepted and result.q_after < result.q_before
    assert torch.equal(result.params, start)


def test_bounded_step_keeps_the_direction_and_the_bounds():
    gradient = torch.tensor([10.0, -1.0, 0.5, 0.0, 2.0, -3.0], dtype=DTYPE)
    step = bounded_step(gradient, 1.0, BOUNDS)
    assert torch.all(step.abs() <= BOUNDS + BOUND_SLACK)
    assert torch.allclose(step / step.norm(), gradient / gradient.norm())
    small = 1e-4 * gradient
    assert torch.equal(bounded_step(small, 1.0, BOUNDS), small)                  # within bounds: plain Eq. 10


def test_a_box_clipped_step_moves_each_parameter_up_to_its_own_bound():
    gradient = torch.tensor([10.0, -1.0, 0.5, 0.0, 2.0, -3.0], dtype=DTYPE)
    step = bounded_step(gradient, 1.0, BOUNDS, clip='box')
    assert torch.equal(step, torch.sign(gradient) * BOUNDS)          # every non-zero parameter at its bound
    assert torch.all(step.abs() >= bounded_step(gradient, 1.0, BOUNDS).abs())    # never shorter than 'direction'
    small = 1e-4 * gradient
    assert torch.equal(bounded_step(small, 1.0, BOUNDS, clip='box'), small)
    with pytest.raises(ValueError, match='direction, box'):
        ViewStepBounds(clip='sideways')


def test_pushing_out_from_the_edge_of_the_reachable_views_stays_reachable(view_spaces):
    views = view_spaces['needle_threading']
    far = torch.tensor([0.3, 0.2, 2.0, 0.5, 0.0, 0.19], dtype=DTYPE)        # beyond the arm's reach
    edge = views.project(far)                                                # on the reachable set's border
    for _ in range(3):
        result = view_step(_adversarial_q(far - edge), edge, views)
        assert views.is_reachable(result.proposed) and views.is_reachable(result.params)
        edge = result.params


def test_a_nan_gradient_leaves_the_camera_where_it_is(view_spaces):
    views = view_spaces['spatula_flipping']
    start = default_view_params('spatula_flipping')
    result = view_step(lambda params: params.sum() * float('nan'), start, views)
    assert not result.accepted and torch.equal(result.params, start) and views.is_reachable(result.proposed)


class _FailingBackward(torch.autograd.Function):
    """Q whose backward raises as Mitsuba's does when a view has no silhouette edge to sample."""

    @staticmethod
    def forward(ctx, params):
        return params.sum()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError('[distr_1d.h:221] DiscreteDistribution: empty distribution!')


def test_a_renderer_that_fails_to_differentiate_leaves_the_camera_where_it_is(view_spaces):
    views = view_spaces['needle_threading']
    start = default_view_params('needle_threading')
    result = view_step(_FailingBackward.apply, start, views)
    assert not result.accepted and torch.equal(result.params, start) and torch.equal(result.proposed, start)
    assert 'empty distribution' in result.failure and set(result.timings_s) == {'start', 'gradient'}
    assert view_step(lambda params: params.sum(), start, views).failure == ''


def test_viewpoint_node_names_a_bad_step_clip_at_start_up():
    from samrl_viewpoint.viewpoint_node import ViewpointParams
    assert ViewpointParams(step_clip='box').step_clip == 'box'
    with pytest.raises(ValueError, match="view-step clip 'sideways'"):
        ViewpointParams(step_clip='sideways')


def test_the_learning_and_model_nodes_name_a_bad_thread_count_at_start_up():
    from samrl_model.model_node import ModelParams
    from samrl_policy.policy_node import PolicyParams
    from samrl_viewpoint.viewpoint_node import ViewpointParams
    for params in (ModelParams, PolicyParams, ViewpointParams):
        assert params(threads=0).threads == 0 and params().threads == 1
        with pytest.raises(ValueError, match='threads must be >= 0'):
            params(threads=-1)
