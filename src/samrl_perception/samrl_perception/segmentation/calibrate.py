"""Choose the detection score threshold on a checkpoint's validation images.

A from-scratch network on a CPU budget is often right with a modest score: a fixed 0.5 drops true
objects (a missed object scores IoU 0), a very low threshold adds objects that are not there. The
threshold is chosen to maximise the mean over (image, class) pairs of

* the mask IoU where the class is in the image (at least MIN_INSTANCE_PIXELS pixels), and
* 0 where the class is predicted but absent (a false positive is as bad as a miss),

on the validation split of the training data (seeds the network never trained on, and never the
held-out test seeds). Ties go to the higher threshold. The result is stored in the checkpoint's
card and used by MaskRCNNSegmenter unless a threshold is given.
"""

from __future__ import annotations

import numpy as np

from samrl_perception.segmentation.segmenter import best_per_class
from samrl_perception.segmentation.targets import MIN_INSTANCE_PIXELS, mask_iou
from samrl_sim.objects import OBJECT_CLASSES

SCORE_THRESHOLD_CANDIDATES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def calibrate_score_threshold(segmenter, data: dict[str, np.ndarray], indices,
                              candidates=SCORE_THRESHOLD_CANDIDATES, progress: bool = True) -> dict:
    """{'score_threshold': best, 'objective': {threshold: mean score}, 'images': n}; the network runs once per image."""
    from tqdm import tqdm

    detections = [segmenter.detect(data['rgb'][i]) for i in tqdm(indices, desc='calibrating', unit='image',
                                                                  disable=not progress)]
    truths = [data['labels'][i] for i in indices]
    objective = {float(t): threshold_objective(detections, truths, t) for t in candidates}
    best = max(objective, key=lambda t: (objective[t], t))
    return {'score_threshold': best, 'objective': objective, 'images': len(truths)}


def threshold_objective(detections: list[dict], truths: list[np.ndarray], threshold: float) -> float:
    """Mean of IoU (class present) and 0 (class predicted but absent) over all images and classes."""
    scores = []
    for output, truth in zip(detections, truths):
        predicted = best_per_class(output, truth.shape, threshold).labels
        for c in range(1, len(OBJECT_CLASSES) + 1):
            true_mask, predicted_mask = truth == c, predicted == c
            if np.count_nonzero(true_mask) >= MIN_INSTANCE_PIXELS:
                scores.append(mask_iou(predicted_mask, true_mask))
            elif predicted_mask.any():
                scores.append(0.0)
    return float(np.mean(scores)) if scores else 0.0
