"""The aggregated data sets of Learn@Sim: DAgger's labelled renders and Q's returns.

A data set is a list of shards, one .npz file each (a DAgger round, a chunk of Q rollouts),
written atomically (a temporary file renamed into place) so that a run stopped while writing
never leaves half a shard that a resumed run would count. Shards are read with
allow_pickle=False: a file can hold arrays only, never code.

Every sample is one render of one state from one camera pose plus its fields:

* DAgger (DEMO_FIELDS): proprio, the expert's label `action`, `episode`, `round`, `step` (time
  step in the episode), `view` (index of the pose among the state's renders), `view_params`;
* Q (RETURN_FIELDS): proprio, the actor's `action`, its discounted `return`, the step's
  `reward`, `success` of the episode, `episode` (the state's seed), `step` (control steps since
  the rollout's branch state, q_learning.py), `view_params`.

Memory. Images are held compressed: RGB and the mask as uint8 (1/255 steps), depth as float16
(about 1 mm at 2 m), BYTES_PER_PIXEL = 6 bytes a pixel, 24 KiB a 64x64 sample, so 100k samples
take about 2.4 GB. Everything is held in memory; adding a shard past `max_bytes` (default
DEFAULT_MAX_BYTES) raises DatasetError instead of swapping. Adding a shard copies the arrays
once (so up to twice the data set's size for a moment). Minibatches are decoded to float32 when
drawn (a 64-sample 64x64 batch: 5 MB).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from samrl_policy.interfaces import DEPTH_CHANNEL, IMAGE_CHANNELS

COLOUR_MASK_SCALE = 255.0       # RGB and mask in [0, 1] are stored as uint8 0..255
BYTES_PER_PIXEL = (IMAGE_CHANNELS - 1) + 2  # 4 uint8 planes (RGB, mask) + 1 float16 plane (depth)
DEFAULT_MAX_BYTES = 6 * 2 ** 30  # what the data set may hold in memory (of 24 GB here)
IMAGE_KEYS = ('colour_mask', 'depth')
DEMO_FIELDS = ('proprio', 'action', 'episode', 'round', 'step', 'view', 'view_params')
RETURN_FIELDS = ('proprio', 'action', 'return', 'reward', 'success', 'episode', 'step', 'view_params')


class DatasetError(ValueError):
    """A shard that cannot be read, or a data set that would not fit its memory bound."""


class DemoBatch(NamedTuple):
    """A DAgger minibatch (Eq. 8)."""

    images: torch.Tensor        # (B, 5, H, W) float32
    proprio: torch.Tensor       # (B, P) float32
    expert_actions: torch.Tensor  # (B, 7) float32: the labels


class ReturnBatch(NamedTuple):
    """A Q minibatch (Eq. 9)."""

    images: torch.Tensor        # (B, 5, H, W) float32
    proprio: torch.Tensor       # (B, P) float32
    actions: torch.Tensor       # (B, 7) float32: what the actor did
    returns: torch.Tensor       # (B,) float32: the discounted return R_t from there


# -- images ---------------------------------------------------------------------------------------
def encode_images(images: torch.Tensor) -> dict[str, np.ndarray]:
    """(N, 5, H, W) float images -> the stored form: colour_mask (N, 4, H, W) uint8, depth (N, 1, H, W) float16."""
    array = images.detach().cpu().numpy()
    others = np.concatenate([array[:, :DEPTH_CHANNEL], array[:, DEPTH_CHANNEL + 1:]], axis=1)
    colour_mask = np.rint(np.clip(others, 0.0, 1.0) * COLOUR_MASK_SCALE).astype(np.uint8)
    return {'colour_mask': colour_mask, 'depth': array[:, DEPTH_CHANNEL:DEPTH_CHANNEL + 1].astype(np.float16)}


def decode_images(colour_mask: np.ndarray, depth: np.ndarray) -> torch.Tensor:
    """The stored form -> (N, 5, H, W) float32 images."""
    colour_mask = torch.from_numpy(colour_mask).float() / COLOUR_MASK_SCALE
    depth = torch.from_numpy(depth.astype(np.float32))
    return torch.cat([colour_mask[:, :DEPTH_CHANNEL], depth, colour_mask[:, DEPTH_CHANNEL:]], dim=1)


# -- shards ---------------------------------------------------------------------------------------
class ShardBuilder:
    """Collects samples one render at a time; build() gives the shard's arrays."""

    def __init__(self) -> None:
        self._images: list[torch.Tensor] = []
        self._fields: dict[str, list] = {}

    def append(self, image: torch.Tensor, **fields) -> None:
        """One sample: a (5, H, W) image and its fields (numbers or arrays, the same names every time)."""
        if self._images and fields.keys() != self._fields.keys():
            raise ValueError(f'sample fields {sorted(fields)} differ from earlier ones {sorted(self._fields)}')
        self._images.append(image.detach().float().cpu())
        for name, value in fields.items():
            self._fields.setdefault(name, []).append(np.asarray(value.detach().cpu() if torch.is_tensor(value)
                                                                else value))

    def __len__(self) -> int:
        return len(self._images)

    def build(self) -> dict[str, np.ndarray]:
        if not self._images:
            raise ValueError('no samples to build a shard from')
        shard = encode_images(torch.stack(self._images))
        for name, values in self._fields.items():
            stacked = np.stack(values)
            shard[name] = stacked.astype(np.float32) if stacked.dtype == np.float64 else stacked
        return shard


def save_shard(path: Path, shard: dict[str, np.ndarray]) -> None:
    """Write a shard atomically: a reader sees the whole file or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + '.partial')
    with open(partial, 'wb') as file:
        np.savez(file, **shard)
    os.replace(partial, path)


def load_shard(path: Path, required: Sequence[str]) -> dict[str, np.ndarray]:
    """A shard's arrays; DatasetError names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'no data shard at {path}')
    try:
        with np.load(path, allow_pickle=False) as stored:
            shard = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f'{path} is not a readable data shard ({type(exc).__name__}: {exc})') from exc
    missing = [name for name in (*IMAGE_KEYS, *required) if name not in shard]
    if missing:
        raise DatasetError(f'{path} lacks the fields {missing}')
    lengths = {name: len(array) for name, array in shard.items()}
    if len(set(lengths.values())) != 1:
        raise DatasetError(f'{path}: fields of different lengths {lengths}')
    return shard


def shard_nbytes(shard: dict[str, np.ndarray]) -> int:
    return sum(array.nbytes for array in shard.values())


# -- the aggregated data set ----------------------------------------------------------------------
class AggregatedDataset:
    """All shards of one kind held in memory; minibatches decoded on demand."""

    def __init__(self, required: Sequence[str], max_bytes: int = DEFAULT_MAX_BYTES):
        self.required = tuple(required)
        self.max_bytes = max_bytes
        self.arrays: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.arrays['depth']) if self.arrays else 0

    @property
    def nbytes(self) -> int:
        return shard_nbytes(self.arrays)

    def add(self, shard: dict[str, np.ndarray]) -> None:
        """Append a shard's samples (DatasetError past max_bytes or with other fields)."""
        needed = self.nbytes + shard_nbytes(shard)
        if needed > self.max_bytes:
            raise DatasetError(f'the data set would hold {needed / 2 ** 20:.0f} MiB, over its bound of '
                               f'{self.max_bytes / 2 ** 20:.0f} MiB; raise max_bytes or collect fewer samples')
        if self.arrays and shard.keys() != self.arrays.keys():
            raise DatasetError(f'shard fields {sorted(shard)} differ from the data set\'s {sorted(self.arrays)}')
        self.arrays = {name: np.concatenate([self.arrays[name], array]) if self.arrays else array
                       for name, array in shard.items()}

    def load(self, paths: Sequence[Path]) -> None:
        for path in paths:
            self.add(load_shard(path, self.required))

    def field(self, name: str, indices: np.ndarray | None = None) -> torch.Tensor:
        array = self.arrays[name] if indices is None else self.arrays[name][indices]
        return torch.from_numpy(np.ascontiguousarray(array))

    def images(self, indices: np.ndarray) -> torch.Tensor:
        return decode_images(self.arrays['colour_mask'][indices], self.arrays['depth'][indices])

    def demo_batch(self, indices: np.ndarray) -> DemoBatch:
        return DemoBatch(self.images(indices), self.field('proprio', indices).float(),
                         self.field('action', indices).float())

    def return_batch(self, indices: np.ndarray) -> ReturnBatch:
        return ReturnBatch(self.images(indices), self.field('proprio', indices).float(),
                           self.field('action', indices).float(), self.field('return', indices).float())

    def minibatches(self, rng: np.random.Generator, batch_size: int,
                    indices: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """One epoch of shuffled index batches over `indices` (default: all samples)."""
        order = rng.permutation(np.arange(len(self)) if indices is None else indices)
        for start in range(0, len(order), batch_size):
            yield np.sort(order[start:start + batch_size])

    def split_by_episode(self, rng: np.random.Generator, heldout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(training, held-out) sample indices; whole episodes go to one side, so held-out states are unseen."""
        episodes = np.unique(self.arrays['episode'])
        count = int(round(heldout_fraction * len(episodes)))
        count = min(max(count, 1), len(episodes) - 1) if len(episodes) > 1 else 0
        heldout = rng.choice(episodes, size=count, replace=False)
        mask = np.isin(self.arrays['episode'], heldout)
        return np.flatnonzero(~mask), np.flatnonzero(mask)


def image_bytes(height_px: int, width_px: int) -> int:
    """Bytes one stored sample's image takes."""
    return BYTES_PER_PIXEL * height_px * width_px

