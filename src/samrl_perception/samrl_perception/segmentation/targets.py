"""Label images -> Mask R-CNN targets, and the mask IoU used to score predictions.

Each task scene holds one instance of each of its objects, so a class label image is also an
instance map: one box and one mask per class present.
"""

from __future__ import annotations

import numpy as np
import torch

MIN_INSTANCE_PIXELS = 4     # fewer visible pixels than this: too little to detect, not a target


def targets_from_labels(labels: np.ndarray, min_pixels: int = MIN_INSTANCE_PIXELS) -> dict[str, torch.Tensor]:
    """boxes (N, 4) x0 y0 x1 y1 in pixels, labels (N,) class indices >= 1, masks (N, H, W) uint8."""
    classes = [int(c) for c in np.unique(labels) if c > 0 and np.count_nonzero(labels == c) >= min_pixels]
    masks = np.stack([labels == c for c in classes]) if classes else np.zeros((0, *labels.shape), bool)
    boxes = [box_of(mask) for mask in masks]
    return {'boxes': torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            'labels': torch.tensor(classes, dtype=torch.int64),
            'masks': torch.from_numpy(masks.astype(np.uint8))}


def box_of(mask: np.ndarray) -> list[float]:
    """x0 y0 x1 y1 in pixels (x1, y1 exclusive) of a non-empty boolean mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def mask_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.count_nonzero(predicted | truth)
    return 1.0 if union == 0 else np.count_nonzero(predicted & truth) / union


def representable_mask(truth: np.ndarray, input_hw: tuple[int, int], mask_px: int) -> np.ndarray:
    """About the best mask Mask R-CNN can return for `truth` at this input size and mask grid.

    The true mask goes down to the network's input size, then into the mask_px x mask_px grid of
    its box, and back, as a perfect network's output would (bilinear, probability >= 0.5). Its
    IoU with `truth` is the ceiling that resolution alone puts on the score.
    """
    import torch.nn.functional as F

    full = torch.from_numpy(truth.astype(np.float32))[None, None]
    small = F.interpolate(full, size=input_hw, mode='bilinear', antialias=True, align_corners=False)
    small = (F.interpolate(small, size=truth.shape, mode='bilinear', align_corners=False)[0, 0] >= 0.5).numpy()
    if not small.any():
        return small
    x0, y0, x1, y1 = (int(v) for v in box_of(small))
    crop = torch.from_numpy(small[y0:y1, x0:x1].astype(np.float32))[None, None]
    grid = F.interpolate(crop, size=(mask_px, mask_px), mode='bilinear', antialias=True, align_corners=False)
    pasted = F.interpolate(grid, size=(y1 - y0, x1 - x0), mode='bilinear', align_corners=False)[0, 0] >= 0.5
    out = np.zeros_like(truth, dtype=bool)
    out[y0:y1, x0:x1] = pasted.numpy()
    return out
