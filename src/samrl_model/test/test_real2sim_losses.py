"""Real2Sim loss terms (Eqs. 2-4) on small synthetic inputs."""

import pytest
import torch

from samrl_model.real2sim.losses import LossWeights, depth_to_points, emd, masked_image_l1, real2sim_loss, subsample


def _cloud(n=200, seed=0):
    return torch.rand(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_emd_of_a_translated_cloud_is_the_translation():
    x = _cloud()
    shift = torch.tensor([0.01, -0.02, 0.005], dtype=torch.float64)
    assert float(emd(x + shift, x)) == pytest.approx(float(shift.norm()), rel=1e-6)
    assert float(emd(x, x)) == pytest.approx(0.0, abs=1e-12)


def test_emd_gradient_moves_the_cloud_towards_the_other():
    x = _cloud()
    shift = torch.tensor([0.02, 0.0, 0.0], dtype=torch.float64)
    moved = (x + shift).requires_grad_(True)
    emd(moved, x).backward()
    mean_gradient = moved.grad.sum(dim=0)  # d EMD / d (common translation)
    assert mean_gradient[0] > 0.9 and abs(float(mean_gradient[1])) < 0.1


def test_emd_rejects_empty_clouds():
    with pytest.raises(ValueError, match='non-empty'):
        emd(torch.zeros(0, 3), _cloud())


def test_masked_l1_ignores_pixels_outside_both_masks():
    real, sim = torch.zeros(4, 4, 3), torch.ones(4, 4, 3)
    mask = torch.zeros(4, 4)
    assert float(masked_image_l1(real, mask, sim, mask)) == 0.0
    mask[0, 0] = 1.0
    assert float(masked_image_l1(real, mask, sim, mask)) == pytest.approx(1.0 / 16)
    with pytest.raises(ValueError, match='image sizes differ'):
        masked_image_l1(real, mask, torch.ones(2, 2, 3), torch.zeros(2, 2))


def test_back_projection_follows_the_pinhole_model():
    depth = torch.full((3, 4), 2.0)
    mask = torch.zeros(3, 4)
    mask[1, 3] = 1.0
    points = depth_to_points(depth, mask, fx=100.0, fy=50.0, cx=1.0, cy=1.0)
    assert torch.allclose(points, torch.tensor([[(3 - 1) * 2.0 / 100.0, 0.0, 2.0]]))


def test_total_loss_weights_its_terms():
    x = _cloud(50)
    rgb, mask = torch.rand(8, 8, 3), torch.ones(8, 8)
    total, terms = real2sim_loss(rgb, mask, x, rgb * 0.5, mask, x + 0.01, LossWeights(image=2.0, cloud=10.0))
    assert terms['loss'] == pytest.approx(2.0 * terms['image_l1'] + 10.0 * terms['emd_m'])
    assert float(total) == pytest.approx(terms['loss'])


def test_subsample_is_seeded_and_bounded():
    x = _cloud(100)
    a = subsample(x, 10, torch.Generator().manual_seed(3))
    b = subsample(x, 10, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and len(a) == 10 and len(subsample(x, 500, torch.Generator())) == 100
