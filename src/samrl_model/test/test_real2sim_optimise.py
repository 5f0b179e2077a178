"""The Real2Sim loop's mechanics (stopping rules, per-latent steps) on a smooth analytic loss."""

import pytest
import torch

from samrl_model.real2sim.optimise import OptimiseConfig, optimise


def _quadratic(target):
    def evaluate(latents):
        error = latents['translation'] - target
        loss = (error ** 2).sum()
        return loss, {'error_m': float(error.detach().norm())}
    return evaluate


def test_converges_and_stops_on_a_settled_loss():
    target = torch.tensor([0.02, -0.01, 0.0])
    latents = {'translation': torch.zeros(3)}
    config = OptimiseConfig(max_iterations=2000, time_budget_s=30.0, tolerance=1e-4)
    result = optimise(latents, _quadratic(target), config)
    assert result.converged and result.iterations < 2000
    assert torch.allclose(result.latents['translation'], target, atol=1e-3)
    assert result.history[-1]['error_m'] < result.history[0]['error_m']


def test_stops_at_the_iteration_budget():
    result = optimise({'translation': torch.zeros(3)}, _quadratic(torch.ones(3)), OptimiseConfig(max_iterations=3))
    assert result.iterations == 3 and not result.converged


def test_a_stop_request_ends_the_loop_after_the_iteration_in_progress():
    calls = []
    result = optimise({'translation': torch.zeros(3)}, _quadratic(torch.ones(3)), OptimiseConfig(max_iterations=50),
                      should_stop=lambda: calls.append(1) or len(calls) >= 2)
    assert result.iterations == 2 and not result.converged and result.latents['translation'].abs().sum() > 0


def test_each_latent_kind_has_its_own_step_size():
    latents = {'translation': torch.zeros(1), 'rotation': torch.zeros(1)}

    def evaluate(values):
        return ((values['translation'] - 1) ** 2 + (values['rotation'] - 1) ** 2).sum(), {}

    result = optimise(latents, evaluate, OptimiseConfig(max_iterations=1))
    # Adam's first step has the size of the learning rate: 2 mm and 0.01 rad.
    assert float(result.latents['translation']) == pytest.approx(2e-3, rel=1e-3)
    assert float(result.latents['rotation']) == pytest.approx(1e-2, rel=1e-3)
