"""Inference: an RGB frame -> one mask per task object, from a checkpoint of our own training.

Checkpoints are plain dicts of tensors and numbers, written by train.py and read with
torch.load(weights_only=True), so loading one can never run code. A checkpoint's card may carry
the detection score threshold chosen on its validation images (calibrate.py); it is used unless
another one is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samrl_perception.segmentation.model import MaskRCNNConfig, build_mask_rcnn
from samrl_sim.objects import OBJECT_CLASSES

CHECKPOINT_FORMAT = 1
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / 'checkpoints' / 'maskrcnn_r18fpn.pt'
DEFAULT_SCORE_THRESHOLD = 0.5
MASK_PROBABILITY_THRESHOLD = 0.5
RGB_SCALE = 1.0 / 255.0


class CheckpointError(ValueError):
    """A checkpoint that is missing, of another format, or for other classes."""


@dataclass(frozen=True)
class Instance:
    label: str
    score: float
    mask: np.ndarray        # HxW bool


@dataclass(frozen=True)
class Segmentation:
    instances: list[Instance]
    labels: np.ndarray      # HxW uint8: 0 background, i + 1 for OBJECT_CLASSES[i]

    def mask(self, label: str) -> np.ndarray:
        return self.labels == OBJECT_CLASSES.index(label) + 1


def save_checkpoint(path: Path, model: torch.nn.Module, config: MaskRCNNConfig, record: dict) -> None:
    payload = {'format': CHECKPOINT_FORMAT, 'classes': list(OBJECT_CLASSES), 'config': config.to_dict(),
               'state_dict': model.state_dict(), 'record': record}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def load_checkpoint(path: Path) -> dict:
    if not Path(path).is_file():
        raise CheckpointError(f'no checkpoint at {path}; train one with `samrl perception train`')
    payload = torch.load(path, map_location='cpu', weights_only=True)
    if payload.get('format') != CHECKPOINT_FORMAT:
        raise CheckpointError(f'{path}: checkpoint format {payload.get("format")!r}, expected {CHECKPOINT_FORMAT}')
    if tuple(payload['classes']) != OBJECT_CLASSES:
        raise CheckpointError(f'{path}: trained for classes {payload["classes"]}, expected {list(OBJECT_CLASSES)}')
    return payload


class MaskRCNNSegmenter:
    """Keeps at most one instance per class (each task scene has one of each object).

    score_threshold: lowest detection score kept; None takes the checkpoint's calibrated one
    (DEFAULT_SCORE_THRESHOLD for a checkpoint without one).
    """

    def __init__(self, checkpoint: Path = DEFAULT_CHECKPOINT, score_threshold: float | None = None):
        payload = load_checkpoint(checkpoint)
        self.config = MaskRCNNConfig(**payload['config'])
        self.record = payload['record']
        self.model = build_mask_rcnn(self.config)
        self.model.load_state_dict(payload['state_dict'])
        self.model.eval()
        calibrated = self.record.get('score_threshold', DEFAULT_SCORE_THRESHOLD)
        self.score_threshold = float(calibrated if score_threshold is None else score_threshold)

    @torch.no_grad()
    def detect(self, rgb: np.ndarray) -> dict[str, torch.Tensor]:
        """Raw detections (boxes, labels, scores, full-size mask probabilities) for an HxWx3 uint8 image."""
        pixels = np.array(rgb, copy=True)       # message buffers are read-only; torch wants writable memory
        image = torch.from_numpy(pixels).permute(2, 0, 1).float() * RGB_SCALE
        return self.model([image])[0]

    def __call__(self, rgb: np.ndarray) -> Segmentation:
        return best_per_class(self.detect(rgb), rgb.shape[:2], self.score_threshold)


def best_per_class(output: dict, shape: tuple[int, int], score_threshold: float) -> Segmentation:
    """The best-scored detection of each class at or above the threshold, painted into one label image.

    Where kept masks overlap (the pancake on the spatula), a pixel goes to the instance whose mask
    is most confident there, not to the one with the higher box score.
    """
    kept = {}
    # Detections come sorted by score: the first of each class is its best.
    for index, (label, score) in enumerate(zip(output['labels'].tolist(), output['scores'].tolist())):
        if score >= score_threshold and 1 <= label <= len(OBJECT_CLASSES) and label not in kept:
            kept[label] = (index, score)
    labels = np.zeros(shape, np.uint8)
    if not kept:
        return Segmentation([], labels)
    probabilities = output['masks'][[index for index, _ in kept.values()], 0].numpy()
    owner = probabilities.argmax(axis=0)
    instances = []
    for k, (label, (_, score)) in enumerate(kept.items()):
        mask = (probabilities[k] >= MASK_PROBABILITY_THRESHOLD) & (owner == k)
        labels[mask] = label
        instances.append(Instance(OBJECT_CLASSES[label - 1], float(score), mask))
    return Segmentation(instances, labels)
