"""The Real2Sim loss of SAM-RL, Eqs. (2)-(4).

    L1 = || G_real * I_real - G_sim * I_sim ||_1          masked RGB images        (2)
    L2 = EMD(X_sim, X_real)                                segmented point clouds   (3)
    L  = lambda1 * L1 + lambda2 * L2                                                (4)

L1 is averaged over pixels and channels (so it does not scale with the image size); the
EMD is the exact earth mover's distance with Euclidean ground cost in metres between
uniformly weighted clouds, from POT (its torch backend gives the gradient through the
optimal plan). Clouds are subsampled to a fixed size first: the exact EMD costs O(n^3).
"""

from __future__ import annotations

from dataclasses import dataclass

import ot
import torch

# The paper gives no weights; one pixel-mean RGB unit (0..1) against one metre of EMD:
# a 1 cm point-cloud offset then weighs like a 0.01 mean colour error (the image term is the
# sharper one at the optimum; the EMD of a few hundred points has a floor of several mm).
DEFAULT_LAMBDA_IMAGE = 1.0
DEFAULT_LAMBDA_CLOUD = 1.0
DEFAULT_CLOUD_POINTS = 400
# The ray-cast loss (update.raycast_evaluator): mean depth residual (m) plus EMD (m), equal weights.
DEPTH_WEIGHT = 1.0
CLOUD_WEIGHT = 1.0
DEPTH_RESIDUAL_CAP_M = 0.02     # a pixel's depth residual counts at most this much (edges, mask errors)


@dataclass(frozen=True)
class LossWeights:
    image: float = DEFAULT_LAMBDA_IMAGE
    cloud: float = DEFAULT_LAMBDA_CLOUD


def masked_image_l1(rgb_real: torch.Tensor, mask_real: torch.Tensor,
                    rgb_sim: torch.Tensor, mask_sim: torch.Tensor) -> torch.Tensor:
    """Eq. (2): mean absolute difference of the masked RGB images (HxWx3 in [0, 1], masks HxW in [0, 1])."""
    if rgb_real.shape != rgb_sim.shape or mask_real.shape != mask_sim.shape:
        raise ValueError(f'image sizes differ: real {tuple(rgb_real.shape)}, sim {tuple(rgb_sim.shape)}')
    return (mask_real[..., None] * rgb_real - mask_sim[..., None] * rgb_sim).abs().mean()


def depth_to_points(depth_m: torch.Tensor, mask: torch.Tensor, fx: float, fy: float, cx: float, cy: float
                    ) -> torch.Tensor:
    """Back-project masked pixels with depth > 0 into the camera's optical frame (N x 3, metres)."""
    height, width = depth_m.shape
    v, u = torch.meshgrid(torch.arange(height, dtype=depth_m.dtype), torch.arange(width, dtype=depth_m.dtype),
                          indexing='ij')
    keep = (mask > 0.5) & (depth_m > 0)
    z = depth_m[keep]
    return torch.stack([(u[keep] - cx) * z / fx, (v[keep] - cy) * z / fy, z], dim=-1)


def subsample(points: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """At most `count` points drawn without replacement (all of them if fewer)."""
    if len(points) <= count:
        return points
    return points[torch.randperm(len(points), generator=generator)[:count]]


def emd(x_sim: torch.Tensor, x_real: torch.Tensor, weights_sim: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. (3): exact earth mover's distance (metres) between two clouds.

    The camera's cloud has one point per pixel, so uniform weights; `weights_sim` (summing to 1)
    lets a model cloud sampled otherwise carry the same per-pixel density.
    """
    if len(x_sim) == 0 or len(x_real) == 0:
        raise ValueError(f'EMD needs two non-empty clouds, got {len(x_sim)} and {len(x_real)} points')
    if weights_sim is None:
        weights_sim = torch.full((len(x_sim),), 1.0 / len(x_sim), dtype=x_sim.dtype)
    weights_real = torch.full((len(x_real),), 1.0 / len(x_real), dtype=x_real.dtype)
    cost = torch.cdist(x_sim, x_real, compute_mode='donot_use_mm_for_euclid_dist')  # exact at small distances
    return ot.emd2(weights_sim, weights_real, cost)


def depth_residual(depth_sim: torch.Tensor, depth_real: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Mean capped |model depth - camera depth| (m) over `where` with valid camera depth (0 if none)."""
    both = where & (depth_real > 0)
    if not both.any():
        return depth_sim.sum() * 0.0
    return (depth_sim.to(depth_real.dtype) - depth_real).abs().clamp(max=DEPTH_RESIDUAL_CAP_M)[both].mean()


def real2sim_loss(rgb_real, mask_real, cloud_real, rgb_sim, mask_sim, cloud_sim,
                  weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. (4); returns the loss and its terms for logging."""
    image = masked_image_l1(rgb_real, mask_real, rgb_sim, mask_sim)
    cloud = emd(cloud_sim, cloud_real)
    total = weights.image * image + weights.cloud * cloud
    return total, {'image_l1': image.item(), 'emd_m': cloud.item(), 'loss': total.item()}
