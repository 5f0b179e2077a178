"""The segmentation data set on disk: compressed .npz shards of labelled RGB-D images.

Reading needs no simulator (training and evaluation run from the files); dataset.py, the
sim-side generator, writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARD_SIZE = 50                     # samples per .npz file
# Held-out images use seeds from here on; training seeds start at 0 and must stay below it.
TEST_FIRST_SEED = 1_000_000


@dataclass(frozen=True)
class Sample:
    """rgb HxWx3 uint8, depth_mm HxW uint16 (0 = no return), labels HxW uint8 class labels."""

    rgb: np.ndarray
    depth_mm: np.ndarray
    labels: np.ndarray
    task: str
    seed: int


def write_shard(path: Path, samples: list[Sample]) -> Path:
    np.savez_compressed(path, rgb=np.stack([s.rgb for s in samples]), depth_mm=np.stack([s.depth_mm for s in samples]),
                        labels=np.stack([s.labels for s in samples]), tasks=np.array([s.task for s in samples]),
                        seeds=np.array([s.seed for s in samples]))
    return path


def read_shards(directory: Path) -> dict[str, np.ndarray]:
    """All shards of a directory concatenated: rgb, depth_mm, labels, tasks, seeds."""
    paths = sorted(Path(directory).rglob('shard_*.npz'))
    if not paths:
        raise FileNotFoundError(f'no shard_*.npz in {directory}; generate the data set first (samrl perception data)')
    parts = [np.load(path) for path in paths]
    keys = ('rgb', 'depth_mm', 'labels', 'tasks', 'seeds')
    return {key: np.concatenate([part[key] for part in parts]) for key in keys}
