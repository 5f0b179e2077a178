"""Inference: an RGB frame -> one mask per task object, from a checkpoint of our own training.

Checkpoints are plain dicts of tensors and numbers, written by train.py and read with
torch.load(weights_only=True), so loading one can never run code.
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
    """Keeps at most one instance per class (each task scene has one of each object)."""

    def __init__(self, checkpoint: Path = DEFAULT_CHECKPOINT, score_threshold: float = DEFAULT_SCORE_THRESHOLD):
        payload = load_checkpoint(checkpoint)
        self.config = MaskRCNNConfig(**payload['config'])
        self.record = payload['record']
        self.model = build_mask_rcnn(self.config)
        self.model.load_state_dict(payload['state_dict'])
        self.model.eval()
        self.score_threshold = score_threshold

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> Segmentation:
        """rgb: HxWx3 uint8."""
        image = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).float() * RGB_SCALE   # messages are read-only
        output = self.model([image])[0]
        return _best_per_class(output, rgb.shape[:2], self.score_threshold)


def _best_per_class(output: dict, shape: tuple[int, int], score_threshold: float) -> Segmentation:
    labels = np.zeros(shape, np.uint8)
    instances, seen = [], set()
    # Detections come sorted by score; paint the best of each class, lower-scored ones do not overwrite.
    for label, score, probability in zip(output['labels'].tolist(), output['scores'].tolist(), output['masks']):
        if score < score_threshold or label in seen or not 1 <= label <= len(OBJECT_CLASSES):
            continue
        seen.add(label)
        mask = (probability[0] >= MASK_PROBABILITY_THRESHOLD).numpy() & (labels == 0)
        labels[mask] = label
        instances.append(Instance(OBJECT_CLASSES[label - 1], float(score), mask))
    return Segmentation(instances, labels)
