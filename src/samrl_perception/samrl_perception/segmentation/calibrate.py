"""Choose the detection score threshold on a checkpoint's validation images.

A from-scratch network on a CPU budget is often right with a modest score: a fixed 0.5 drops true
objects (a missed object scores IoU 0), a very low threshold adds objects that are not there. The
threshold is chosen to maximise the mean over (image, class) pairs of

* the mask IoU where the class is in the image (at least MIN_INSTANCE_PIXELS pixels), and
* 0 where the class is predicted but absent (a false positive is as bad as a miss),

on the validation split of the training data (seeds the network never trained on, and never the
held-out test seeds). Ties go to the higher threshold. The result is stored in the checkpoint's
card and used by MaskRCNNSegmenter unless a threshold is given.

With `scene_objects` each image keeps only the classes of its task (TASK_OBJECTS), as a segmenter
told the scene's objects does; that restriction drops wrong-class detections, so it favours a
lower threshold, and the two are calibrated (and stored) separately.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from samrl_description.objects import OBJECT_CLASSES
from samrl_description.tasks import TASK_OBJECTS
from samrl_perception.segmentation.segmenter import best_per_class
from samrl_perception.segmentation.targets import MIN_INSTANCE_PIXELS, mask_iou

SCORE_THRESHOLD_CANDIDATES = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def calibrate_score_threshold(segmenter, data: dict[str, np.ndarray], indices,
                              candidates=SCORE_THRESHOLD_CANDIDATES, progress: bool = True,
                              scene_objects: bool = False) -> dict:
    """{'score_threshold': best, 'objective': {threshold: mean score}, 'images': n, 'scene_objects': bool};
    the network runs once per image."""
    detections = detect_all(segmenter, data, indices, progress)
    classes = scene_classes(data, indices) if scene_objects else None
    return choose_threshold(detections, [data['labels'][i] for i in indices], candidates, classes)


def detect_all(segmenter, data: dict[str, np.ndarray], indices, progress: bool = True) -> list[dict]:
    """The network's raw detections of every image, to score any number of thresholds without running it again."""
    from tqdm import tqdm

    return [segmenter.detect(data['rgb'][i]) for i in tqdm(indices, desc='calibrating', unit='image',
                                                           disable=not progress)]


def refine_all(segmenter, data: dict[str, np.ndarray], indices, detections: list[dict]) -> list[dict]:
    """The detections with every mask redrawn by the segmenter's refiner (whichever a threshold keeps)."""
    from samrl_perception.segmentation.refine import refine_masks

    refined = []
    for i, output in zip(indices, detections, strict=True):
        masks = refine_masks(segmenter.refiner, data['rgb'][i], output['masks'][:, 0], output['boxes'])
        refined.append({**output, 'masks': masks[:, None]})
    return refined


def scene_classes(data: dict[str, np.ndarray], indices) -> list[tuple[str, ...]]:
    """The object classes of each image's task."""
    return [TASK_OBJECTS[str(data['tasks'][i])] for i in indices]


def choose_threshold(detections: list[dict], truths: list[np.ndarray], candidates=SCORE_THRESHOLD_CANDIDATES,
                     classes_per_image: Sequence[Sequence[str]] | None = None) -> dict:
    """The candidate with the best objective (ties: the higher one), and the objective of every candidate."""
    objective = {float(t): threshold_objective(detections, truths, t, classes_per_image) for t in candidates}
    best = max(objective, key=lambda t: (objective[t], t))
    return {'score_threshold': best, 'objective': objective, 'images': len(truths),
            'scene_objects': classes_per_image is not None}


def threshold_objective(detections: list[dict], truths: list[np.ndarray], threshold: float,
                        classes_per_image: Sequence[Sequence[str]] | None = None) -> float:
    """Mean of IoU (class present) and 0 (class predicted but absent) over all images and classes;
    classes_per_image: the classes each image's segmentation may keep (None: any)."""
    scores = []
    classes_per_image = [None] * len(truths) if classes_per_image is None else classes_per_image
    for output, truth, classes in zip(detections, truths, classes_per_image, strict=True):
        predicted = best_per_class(output, truth.shape, threshold, classes).labels
        for c in range(1, len(OBJECT_CLASSES) + 1):
            true_mask, predicted_mask = truth == c, predicted == c
            if np.count_nonzero(true_mask) >= MIN_INSTANCE_PIXELS:
                scores.append(mask_iou(predicted_mask, true_mask))
            elif predicted_mask.any():
                scores.append(0.0)
    return float(np.mean(scores)) if scores else 0.0
