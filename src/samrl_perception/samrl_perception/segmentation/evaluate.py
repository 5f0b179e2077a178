"""Score a segmenter on labelled images: mean mask IoU per class and inference time per frame.

For every image and every class present in the ground truth (at least MIN_INSTANCE_PIXELS
pixels), the IoU of the predicted mask of that class with the true one; a class that is
predicted but absent counts as a false positive. `samrl bench segmentation` runs this on the
held-out images (seeds never used in training). With `ceiling` (a function: true mask -> the
best mask the design can represent, e.g. targets.representable_mask) it also reports per class
the IoU that resolution alone allows, to tell a limit of the design from a limit of the
training. Per class it lists the objects missed (IoU < MISSED_IOU) by their visible size in
pixels, to tell objects that are almost hidden from ones the network overlooks. With
`scene_objects` each image is segmented knowing its task's objects (TASK_OBJECTS), as
segmentation_node is told them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from samrl_description.objects import OBJECT_CLASSES
from samrl_description.tasks import TASK_OBJECTS
from samrl_perception.segmentation.targets import MIN_INSTANCE_PIXELS, mask_iou

MISSED_IOU = 0.1        # an object whose mask overlaps the truth less than this counts as missed


def evaluate_segmenter(segmenter, data: dict[str, np.ndarray], indices, progress: bool = True,
                       ceiling: Callable[[np.ndarray], np.ndarray] | None = None, scene_objects: bool = False) -> dict:
    from tqdm import tqdm

    ious = {name: [] for name in OBJECT_CLASSES}
    ceilings = {name: [] for name in OBJECT_CLASSES}
    missed_pixels = {name: [] for name in OBJECT_CLASSES}      # visible size of the objects missed
    false_positives = {name: 0 for name in OBJECT_CLASSES}
    times_ms = []
    for i in tqdm(indices, desc='segmenting', unit='image', disable=not progress):
        start = time.perf_counter()
        predicted = segment(segmenter, data, i, scene_objects).labels
        times_ms.append(1e3 * (time.perf_counter() - start))
        truth = data['labels'][i]
        for c, name in enumerate(OBJECT_CLASSES, start=1):
            true_mask, predicted_mask = truth == c, predicted == c
            if np.count_nonzero(true_mask) >= MIN_INSTANCE_PIXELS:
                ious[name].append(mask_iou(predicted_mask, true_mask))
                if ious[name][-1] < MISSED_IOU:
                    missed_pixels[name].append(int(np.count_nonzero(true_mask)))
                if ceiling is not None:
                    ceilings[name].append(mask_iou(ceiling(true_mask), true_mask))
            elif predicted_mask.any():
                false_positives[name] += 1
    summary = summarise(ious, false_positives, times_ms)
    for name, pixels in missed_pixels.items():
        summary['per_class'][name].update(missed=len(pixels), missed_visible_pixels=sorted(pixels))
    if ceiling is not None:
        for name, values in ceilings.items():
            summary['per_class'][name]['resolution_ceiling_iou'] = float(np.mean(values)) if values else float('nan')
    return summary


def segment(segmenter, data: dict[str, np.ndarray], i: int, scene_objects: bool):
    """Image i's segmentation, told its task's objects when scene_objects (else the segmenter's own call)."""
    if scene_objects:
        return segmenter(data['rgb'][i], objects=TASK_OBJECTS[str(data['tasks'][i])])
    return segmenter(data['rgb'][i])


def summarise(ious: dict[str, list[float]], false_positives: dict[str, int], times_ms: list[float]) -> dict:
    per_class = {name: {'mean_iou': float(np.mean(values)) if values else float('nan'),
                        'median_iou': float(np.median(values)) if values else float('nan'),
                        'instances': len(values), 'false_positives': false_positives[name]}
                 for name, values in ious.items()}
    return {'images': len(times_ms), 'per_class': per_class,
            'mean_iou': float(np.nanmean([c['mean_iou'] for c in per_class.values()])),
            'inference_ms_mean': float(np.mean(times_ms)) if times_ms else float('nan'),
            'inference_ms_p95': float(np.percentile(times_ms, 95)) if times_ms else float('nan')}
