"""`samrl bench segmentation`: the shipped (or a given) Mask R-CNN on held-out generated images.

Held-out images have seeds >= TEST_FIRST_SEED, which training refuses, so no test scene was seen
in training. Inference runs on 2 torch threads (the target machine's 2 CPU cores), one 640x480
frame at a time, timing the whole call (resize, network, mask pasting, one mask per class).
`plot_examples` draws some held-out images with their true and predicted masks, to see how it fails.
By default each image is segmented knowing its task's objects (and with the threshold calibrated
that way), as segmentation_node is in the task graphs; `scene_objects=False` lets any class in.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from samrl_description.objects import OBJECT_CLASSES
from samrl_description.tasks import TASK_NAMES
from samrl_perception.segmentation.dataset import sample_keys, write_dataset
from samrl_perception.segmentation.evaluate import evaluate_segmenter, segment
from samrl_perception.segmentation.model import MASK_POOL_PX
from samrl_perception.segmentation.refine import DEFAULT_REFINER, representable_by_refiner
from samrl_perception.segmentation.segmenter import DEFAULT_CHECKPOINT, MaskRCNNSegmenter
from samrl_perception.segmentation.shards import TEST_FIRST_SEED, read_shards
from samrl_perception.segmentation.targets import representable_mask

BENCH_THREADS = 2
BENCH_SIZE = (640, 480)
MASK_GRID_PX = 2 * MASK_POOL_PX     # torchvision's mask predictor upsamples the pooled RoI x2
EXAMPLES_PER_TASK = 2
STEAL_FIELD = 7                     # /proc/stat cpu columns: user nice system idle iowait irq softirq steal
OVERLAY_ALPHA = 0.55
CLASS_COLOURS = np.array([[0, 0, 0], [255, 60, 60], [60, 200, 255], [255, 200, 0], [80, 220, 80],
                          [220, 80, 255], [255, 140, 40]], np.uint8)     # background, then OBJECT_CLASSES


def held_out_data(directory: Path, count: int) -> dict[str, np.ndarray]:
    """The held-out images in `directory`, rendered there first if it holds none."""
    if not any(directory.rglob('shard_*.npz')):
        write_dataset(directory, sample_keys(TASK_NAMES, count, TEST_FIRST_SEED), *BENCH_SIZE, workers=BENCH_THREADS)
    data = read_shards(directory)
    if data['seeds'].min() < TEST_FIRST_SEED:
        raise ValueError(f'{directory} holds training seeds (< {TEST_FIRST_SEED}); it is not a held-out set')
    return data


def bench_segmenter(checkpoint: Path | None, scene_objects: bool, refiner: Path | None) -> MaskRCNNSegmenter:
    """The segmenter of the bench: with scene_objects, one that takes the threshold calibrated for scenes
    whose objects it is told (every class allowed here; each image names its task's objects per call)."""
    return MaskRCNNSegmenter(checkpoint or DEFAULT_CHECKPOINT, objects=OBJECT_CLASSES if scene_objects else None,
                             refiner=refiner)


def run_benchmark(directory: Path, checkpoint: Path | None, count: int, scene_objects: bool = True,
                  refiner: Path | None = DEFAULT_REFINER) -> dict:
    torch.set_num_threads(BENCH_THREADS)
    data = held_out_data(directory, count)
    indices = np.arange(min(count, len(data['seeds'])))
    segmenter = bench_segmenter(checkpoint, scene_objects, refiner)
    ceiling = resolution_ceiling(segmenter, data['rgb'].shape[1:3])
    before = cpu_times()
    result = evaluate_segmenter(segmenter, data, indices, ceiling=ceiling, scene_objects=scene_objects)
    result['cpu_steal_fraction'] = steal_fraction(before, cpu_times())
    result.update({'checkpoint': str(checkpoint or DEFAULT_CHECKPOINT), 'threads': BENCH_THREADS,
                   'scene_objects': scene_objects, 'score_threshold': segmenter.score_threshold,
                   'refiner': str(refiner) if refiner is not None else None,
                   'image_size': list(data['rgb'].shape[2:0:-1]),
                   'seeds': [int(data['seeds'][indices].min()), int(data['seeds'][indices].max())]})
    return result


def cpu_times() -> list[int] | None:
    """The machine's aggregate CPU times from /proc/stat (None where there is none)."""
    try:
        return [int(v) for v in Path('/proc/stat').read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None


def steal_fraction(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of CPU time the hypervisor gave to other guests between two cpu_times() readings: on a
    shared virtual machine, timings taken while it is high are slower than the code is."""
    if before is None or after is None or len(before) <= STEAL_FIELD:
        return None
    total = sum(after) - sum(before)
    return (after[STEAL_FIELD] - before[STEAL_FIELD]) / total if total > 0 else 0.0


def resolution_ceiling(segmenter: MaskRCNNSegmenter, image_hw: tuple[int, int]):
    """The best mask the segmenter's design can return for a true mask: that of the refiner's crop
    grid when it has one, else that of Mask R-CNN's input size and mask grid."""
    if segmenter.refiner is not None:
        return partial(representable_by_refiner, crop_px=segmenter.refiner.config.crop_px)
    scale = segmenter.config.min_size_px / min(image_hw)
    input_hw = (round(image_hw[0] * scale), round(image_hw[1] * scale))
    return partial(representable_mask, input_hw=input_hw, mask_px=MASK_GRID_PX)


def plot_examples(directory: Path, checkpoint: Path | None, path: Path, scene_objects: bool = True,
                  refiner: Path | None = DEFAULT_REFINER) -> Path:
    """A grid of held-out images (EXAMPLES_PER_TASK per task): the image, the truth, the prediction with IoUs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from samrl_perception.segmentation.targets import mask_iou

    data = read_shards(directory)
    segmenter = bench_segmenter(checkpoint, scene_objects, refiner)
    tasks = len(TASK_NAMES)     # the data set holds the tasks in turn
    rows = [i for t in range(tasks) for i in range(t, len(data['seeds']), tasks)[:EXAMPLES_PER_TASK]]
    figure, axes = plt.subplots(len(rows), 3, figsize=(10, 2.6 * len(rows)), squeeze=False)
    for row, i in zip(axes, rows):
        rgb, truth = data['rgb'][i], data['labels'][i]
        predicted = segment(segmenter, data, i, scene_objects).labels
        ious = [f'{name} {mask_iou(predicted == c, truth == c):.2f}' for c, name in enumerate(OBJECT_CLASSES, 1)
                if np.any(truth == c)]
        for axis, image, title in zip(row, (rgb, _overlay(rgb, truth), _overlay(rgb, predicted)),
                                      (f'seed {int(data["seeds"][i])}', 'truth', 'predicted: ' + ', '.join(ious))):
            axis.imshow(image)
            axis.set_title(title, fontsize=8)
            axis.axis('off')
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def _overlay(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    coloured = CLASS_COLOURS[labels].astype(np.float32)
    mixed = np.where(labels[..., None] > 0, (1 - OVERLAY_ALPHA) * rgb + OVERLAY_ALPHA * coloured, rgb)
    return mixed.astype(np.uint8)
