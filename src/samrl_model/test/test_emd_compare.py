"""The EMD solver comparison (real2sim/emd_compare.py) on small clouds."""
import torch

from samrl_model.real2sim.emd_compare import CloudPair, compare, verdict


def _pair(seed: int) -> CloudPair:
    generator = torch.Generator().manual_seed(seed)
    camera = 0.02 * torch.rand(120, 3, generator=generator, dtype=torch.float64)
    model = camera[torch.randperm(120, generator=generator)[:80]] + torch.tensor([0.003, 0.0, 0.001],
                                                                                dtype=torch.float64)
    return CloudPair('peg_insertion', seed, model, camera)


def test_the_exact_row_is_its_own_reference_and_sinkhorn_approaches_it():
    results = compare([_pair(0), _pair(1)])
    exact = results['exact (POT)']
    assert exact['value_error_mean'] == 0.0 and abs(exact['gradient_cosine_min'] - 1.0) < 1e-12
    finest = results['sinkhorn blur 1 mm']
    coarsest = results['sinkhorn blur 10 mm']
    assert finest['value_error_mean'] < coarsest['value_error_mean']
    assert finest['gradient_cosine_mean'] > 0.9


def test_the_verdict_names_the_fastest_accurate_solver():
    row = {'value_error_mean': 0.0, 'gradient_cosine_min': 1.0, 'pairs': 1}
    results = {'exact (POT)': {**row, 'seconds_per_call': 0.004},
               'sinkhorn fast but off': {**row, 'seconds_per_call': 0.001, 'value_error_mean': 0.2},
               'sinkhorn accurate': {**row, 'seconds_per_call': 0.002}}
    assert verdict(results).endswith(': sinkhorn accurate')
