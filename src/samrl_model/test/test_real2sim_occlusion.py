"""Real2Sim leaves out pixels that an occluder missing from the model hides (update.unmodelled_occlusion)."""

import torch

from samrl_model.real2sim.update import OCCLUSION_MARGIN_M, unmodelled_occlusion


def test_only_off_target_pixels_with_a_nearer_real_surface_are_left_out():
    # Columns: the hand in front of the model's thread; the real target; the same table in both;
    # no real depth; nothing in the model; a real surface nearer by less than the margin.
    real_depth = torch.tensor([[0.20, 0.30, 0.50, 0.00, 0.40, 0.30 - 0.5 * OCCLUSION_MARGIN_M]], dtype=torch.float64)
    real_mask = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    model_depth = torch.tensor([[0.30, 0.35, 0.50, 0.30, 0.00, 0.30]])
    occluded = unmodelled_occlusion(real_mask, real_depth, model_depth)
    assert occluded.tolist() == [[True, False, False, False, False, False]]
