"""Inference: an RGB frame -> one mask per task object, from a checkpoint of our own training.

Checkpoints are plain dicts of tensors and numbers, written by train.py and read with
torch.load(weights_only=True), so loading one can never run code. Any unusable checkpoint
(missing, empty, no torch file, one that would run code, of another structure, or with weights
that do not fit its network) ends in a CheckpointError naming the file and the problem.

A checkpoint's card may carry the detection score thresholds chosen on its validation images
(calibrate.py): `score_threshold` for any class, `score_threshold_scene_objects` for a segmenter
told which objects can be in the scene; the matching one is used unless another threshold is given.

Knowing the scene's objects (each task scene holds one of each of its two objects) helps: a
detection of a class that cannot be there is dropped, and a right-class detection with a modest
score is kept because the threshold calibrated under that restriction is lower.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samrl_description.objects import OBJECT_CLASSES
from samrl_perception.segmentation.model import MaskRCNNConfig, build_mask_rcnn
from samrl_perception.segmentation.refine import (
    check_payload,
    load_refiner,
    load_weights,
    read_weights_file,
    refine_masks,
)

CHECKPOINT_FORMAT = 1
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / 'checkpoints' / 'maskrcnn_r18fpn.pt'
DEFAULT_SCORE_THRESHOLD = 0.5
MASK_PROBABILITY_THRESHOLD = 0.5
RGB_SCALE = 1.0 / 255.0

Detection = tuple[int, int, float]      # (index in the network's output, class label 1..6, score)


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
    """The checkpoint's payload, checked for format, classes and field types (CheckpointError if not)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f'no checkpoint at {path}; train one with `samrl perception train`')
    payload = read_weights_file(path, CheckpointError)
    if payload.get('format') != CHECKPOINT_FORMAT:
        raise CheckpointError(f'{path}: checkpoint format {payload.get("format")!r}, expected {CHECKPOINT_FORMAT}')
    classes = payload.get('classes')
    if not isinstance(classes, (list, tuple)) or tuple(classes) != OBJECT_CLASSES:
        raise CheckpointError(f'{path}: trained for classes {classes}, expected {list(OBJECT_CLASSES)}')
    check_payload(payload, path, CheckpointError)
    return payload


def build_from_checkpoint(payload: dict, path: Path) -> tuple[MaskRCNNConfig, torch.nn.Module]:
    """The network of a loaded checkpoint with its weights, in eval mode; CheckpointError if they do not fit."""
    try:
        config = MaskRCNNConfig(**payload['config'])
        model = build_mask_rcnn(config)
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError) as exc:
        raise CheckpointError(f'{path}: its config does not describe a Mask R-CNN ({type(exc).__name__}: {exc})') \
            from exc
    load_weights(model, payload['state_dict'], path, CheckpointError)
    return config, model.eval()


def weights_fingerprint(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a network's weights (names and values): which detector a refiner was calibrated
    with, unchanged when only a checkpoint's card is rewritten."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def class_names(classes: Iterable[str]) -> tuple[str, ...]:
    """The names (one name may come as a plain string), each checked to be in OBJECT_CLASSES (else ValueError)."""
    names = (classes,) if isinstance(classes, str) else tuple(classes)
    unknown = [name for name in names if name not in OBJECT_CLASSES]
    if unknown:
        raise ValueError(f'unknown object classes {", ".join(map(repr, unknown))}; '
                         f'expected some of {", ".join(OBJECT_CLASSES)}')
    return names


def class_labels(classes: Iterable[str] | None) -> frozenset[int]:
    """Labels (1..6) of the named classes; all of OBJECT_CLASSES for None."""
    if classes is None:
        return frozenset(range(1, len(OBJECT_CLASSES) + 1))
    return frozenset(OBJECT_CLASSES.index(name) + 1 for name in class_names(classes))


def calibrated_threshold(record: dict, scene_objects: bool, refiner_record: dict | None = None) -> float:
    """The card's threshold for a segmenter that does (or does not) know the scene's objects; one
    calibrated for the refined masks (in the refiner's card) comes first."""
    keys = ('score_threshold_scene_objects', 'score_threshold') if scene_objects else ('score_threshold',)
    found = (r[key] for r in (refiner_record or {}, record) for key in keys if key in r)
    return float(next(found, DEFAULT_SCORE_THRESHOLD))


class MaskRCNNSegmenter:
    """Keeps at most one instance per class (each task scene has one of each object).

    score_threshold: lowest detection score kept; None takes the checkpoint's calibrated one
    (DEFAULT_SCORE_THRESHOLD for a checkpoint without one). objects: the classes that can be in
    the scene (None: any); given (even all classes, for images of several tasks that name theirs
    per call), the threshold calibrated with that restriction is taken. refiner: a mask refiner
    checkpoint (refine.py) that redraws the kept masks at full resolution (None: Mask R-CNN's
    masks as they are). Thresholds calibrated for the refined masks are stored in the refiner's
    card and taken from there when the refiner was calibrated with this detector's weights.
    """

    def __init__(self, checkpoint: Path = DEFAULT_CHECKPOINT, score_threshold: float | None = None,
                 objects: Iterable[str] | None = None, refiner: Path | None = None):
        # Checked before the checkpoint is read: a misspelt class fails here, not at the first frame.
        self.objects = None if objects is None else class_names(objects)
        payload = load_checkpoint(checkpoint)
        self.record = payload['record']
        self.config, self.model = build_from_checkpoint(payload, Path(checkpoint))
        self.refiner, self.refiner_record = load_refiner(refiner) if refiner is not None else (None, None)
        self.refiner_calibrated_here = self._refiner_calibrated_here(payload['state_dict'])
        calibrated = calibrated_threshold(self.record, self.objects is not None,
                                          self.refiner_record if self.refiner_calibrated_here else None)
        self.score_threshold = float(calibrated if score_threshold is None else score_threshold)

    def _refiner_calibrated_here(self, state_dict: dict) -> bool | None:
        """Whether the refiner's thresholds were calibrated with this very detector (same weights);
        None without a refiner or when its card names no detector. Only then are they used."""
        fingerprint = (self.refiner_record or {}).get('detector_fingerprint')
        return None if fingerprint is None else fingerprint == weights_fingerprint(state_dict)

    @torch.no_grad()
    def detect(self, rgb: np.ndarray) -> dict[str, torch.Tensor]:
        """Raw detections (boxes, labels, scores, full-size mask probabilities) for an HxWx3 uint8 image."""
        pixels = np.array(rgb, copy=True)       # message buffers are read-only; torch wants writable memory
        image = torch.from_numpy(pixels).permute(2, 0, 1).float() * RGB_SCALE
        return self.model([image])[0]

    def __call__(self, rgb: np.ndarray, objects: Iterable[str] | None = None) -> Segmentation:
        """Segment one frame; `objects` (the classes in this image's scene) wins over the constructor's."""
        classes = self.objects if objects is None else objects
        output = self.detect(rgb)
        selected = select_detections(output, self.score_threshold, classes)
        return paint(self.mask_probabilities(rgb, output, selected).numpy(), selected, rgb.shape[:2])

    def mask_probabilities(self, rgb: np.ndarray, output: dict, selected: list[Detection]) -> torch.Tensor:
        """(K, H, W) mask probabilities of the selected detections: Mask R-CNN's, refined if there is a refiner."""
        indices = [index for index, _, _ in selected]
        probabilities = output['masks'][indices, 0]
        if self.refiner is None:
            return probabilities
        return refine_masks(self.refiner, rgb, probabilities, output['boxes'][indices])


def best_per_class(output: dict, shape: tuple[int, int], score_threshold: float,
                   classes: Iterable[str] | None = None) -> Segmentation:
    """The best-scored detection of each allowed class at or above the threshold, painted into one label image."""
    selected = select_detections(output, score_threshold, classes)
    probabilities = output['masks'][[index for index, _, _ in selected], 0].numpy()
    return paint(probabilities, selected, shape)


def select_detections(output: dict, score_threshold: float, classes: Iterable[str] | None = None) -> list[Detection]:
    """(index, label, score) of the best detection of each allowed class (None: all) at or above the threshold."""
    allowed = class_labels(classes)
    kept: dict[int, Detection] = {}
    # Detections come sorted by score: the first of each class is its best.
    for index, (label, score) in enumerate(zip(output['labels'].tolist(), output['scores'].tolist())):
        if score >= score_threshold and label in allowed and label not in kept:
            kept[label] = (index, label, float(score))
    return list(kept.values())


def paint(probabilities: np.ndarray, selected: list[Detection], shape: tuple[int, int]) -> Segmentation:
    """One label image from the selected detections' full-size mask probabilities (K x H x W, `selected` order).

    Where kept masks overlap (the pancake on the spatula), a pixel goes to the instance whose mask
    is most confident there, not to the one with the higher box score.
    """
    labels = np.zeros(shape, np.uint8)
    if not selected:
        return Segmentation([], labels)
    owner = probabilities.argmax(axis=0)
    instances = []
    for k, (_, label, score) in enumerate(selected):
        mask = (probabilities[k] >= MASK_PROBABILITY_THRESHOLD) & (owner == k)
        labels[mask] = label
        instances.append(Instance(OBJECT_CLASSES[label - 1], float(score), mask))
    return Segmentation(instances, labels)
