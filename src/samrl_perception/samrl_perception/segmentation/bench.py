"""`samrl bench segmentation`: the shipped (or a given) Mask R-CNN on held-out generated images.

Held-out images have seeds >= TEST_FIRST_SEED, which training refuses, so no test scene was seen
in training. Inference runs on 2 torch threads (the target machine's 2 CPU cores), one 640x480
frame at a time, timing the whole call (resize, network, mask pasting, one mask per class).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from samrl_perception.segmentation.dataset import TEST_FIRST_SEED, read_shards, sample_keys, write_dataset
from samrl_perception.segmentation.evaluate import evaluate_segmenter
from samrl_perception.segmentation.segmenter import DEFAULT_CHECKPOINT, MaskRCNNSegmenter
from samrl_sim.tasks import TASK_NAMES

BENCH_THREADS = 2
BENCH_SIZE = (640, 480)


def held_out_data(directory: Path, count: int) -> dict[str, np.ndarray]:
    """The held-out images in `directory`, rendered there first if it holds none."""
    if not any(directory.rglob('shard_*.npz')):
        write_dataset(directory, sample_keys(TASK_NAMES, count, TEST_FIRST_SEED), *BENCH_SIZE, workers=BENCH_THREADS)
    data = read_shards(directory)
    if data['seeds'].min() < TEST_FIRST_SEED:
        raise ValueError(f'{directory} holds training seeds (< {TEST_FIRST_SEED}); it is not a held-out set')
    return data


def run_benchmark(directory: Path, checkpoint: Path | None, count: int) -> dict:
    torch.set_num_threads(BENCH_THREADS)
    data = held_out_data(directory, count)
    indices = np.arange(min(count, len(data['seeds'])))
    segmenter = MaskRCNNSegmenter(checkpoint or DEFAULT_CHECKPOINT)
    result = evaluate_segmenter(segmenter, data, indices)
    result.update({'checkpoint': str(checkpoint or DEFAULT_CHECKPOINT), 'threads': BENCH_THREADS,
                   'image_size': list(data['rgb'].shape[2:0:-1]),
                   'seeds': [int(data['seeds'][indices].min()), int(data['seeds'][indices].max())]})
    return result
