"""`samrl perception train-refiner`: train the full-resolution mask refiner (refine.py).

The refiner learns to correct Mask R-CNN's masks, so its training crops come from two sources:

* the Mask R-CNN checkpoint's own detections on the training images (what it will see at run
  time; computed once before training), and
* the true masks made coarse the way Mask R-CNN makes them (jittered box, 28x28 grid, blurred,
  grown or shrunk by a cell, noised), drawn afresh every step, so the refiner cannot learn the
  detector's mistakes on particular training images by heart.

Both use the Mask R-CNN checkpoint's training / validation split (same data set, same seeds), so
validation images are unseen by both networks. The loss is binary cross-entropy against the
fraction of each crop cell inside the true mask plus a soft Dice term (thin objects are few
pixels; Dice weighs them by their own size). The record (card) holds the exact command, the
seed, the Mask R-CNN checkpoint and the validation IoU of its crops before and after refinement;
then the detection score thresholds are calibrated for the refined masks and stored there too.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from samrl_description.objects import OBJECT_CLASSES
from samrl_perception.segmentation.refine import (
    MaskRefiner,
    RefinerConfig,
    crop_inputs,
    crop_targets,
    crop_windows,
    image_tensor,
    save_refiner,
)
from samrl_perception.segmentation.shards import read_shards
from samrl_perception.segmentation.targets import box_of
from samrl_perception.segmentation.train import (
    LOG_EVERY,
    calibrate_checkpoint,
    learning_rate,
    validation_split,
    write_training_log,
)

COARSE_GRID_PX = 28             # Mask R-CNN's mask grid (MASK_POOL_PX x 2)
MIN_TRAIN_PIXELS = 16           # smaller instances teach the refiner nothing about edges
MIN_DETECTION_IOU = 0.1         # a detection overlapping its object less than this is not of it
BOX_JITTER = 0.06               # std of the box edges' shift, as a fraction of the box size
VALIDATE_EVERY = 250            # iterations


@dataclass(frozen=True)
class RefinerTrainConfig:
    iterations: int = 3000
    batch_size: int = 24
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_iterations: int = 100
    detection_fraction: float = 0.5     # share of each batch from Mask R-CNN's detections
    dice_weight: float = 1.0
    seed: int = 0
    threads: int = 2


def detection_crops(segmenter, data: dict, indices, crop_px: int, progress: bool = True) -> dict[str, torch.Tensor]:
    """Inputs (N, 4, S, S), targets (N, 1, S, S) and classes (N,) of the detector's best detection of
    every object in the images (at any score, as long as it overlaps the object)."""
    from tqdm import tqdm

    inputs, targets, classes = [], [], []
    for i in tqdm(indices, desc='detecting', unit='image', disable=not progress):
        output = segmenter.detect(data['rgb'][i])
        truth = torch.from_numpy(data['labels'][i])
        for c in range(1, len(OBJECT_CLASSES) + 1):
            true_mask = truth == c
            candidates = (output['labels'] == c).nonzero().flatten()
            if int(true_mask.sum()) < MIN_TRAIN_PIXELS or len(candidates) == 0:
                continue
            best = int(candidates[0])                           # detections come sorted by score
            predicted = output['masks'][best, 0] >= 0.5
            overlap = (predicted & true_mask).sum() / (predicted | true_mask).sum().clamp(min=1)
            if overlap < MIN_DETECTION_IOU:
                continue
            windows = crop_windows(output['boxes'][best:best + 1], truth.shape)
            inputs.append(crop_inputs(image_tensor(data['rgb'][i]), output['masks'][best:best + 1, 0], windows,
                                      crop_px).half())
            targets.append(crop_targets(true_mask[None], windows, crop_px).half())
            classes.append(c)
    if not classes:                 # an untrained detector may find nothing
        return {'inputs': torch.zeros((0, 4, crop_px, crop_px), dtype=torch.half),
                'targets': torch.zeros((0, 1, crop_px, crop_px), dtype=torch.half),
                'classes': torch.zeros(0, dtype=torch.long)}
    return {'inputs': torch.cat(inputs), 'targets': torch.cat(targets), 'classes': torch.tensor(classes)}


def degraded_crop(rgb: np.ndarray, true_mask: torch.Tensor, crop_px: int, rng: np.random.Generator):
    """(input (1, 4, S, S), target (1, 1, S, S)) for a true mask made coarse like Mask R-CNN's."""
    box = _jittered_box(true_mask, rng)
    x0, y0, x1, y1 = (int(v) for v in box.round().tolist())
    grid = F.interpolate(true_mask[None, None, y0:y1, x0:x1].float(), size=(COARSE_GRID_PX,) * 2,
                         mode='bilinear', antialias=True, align_corners=False)
    grid = _corrupt(grid, rng)
    coarse = torch.zeros(true_mask.shape)
    coarse[y0:y1, x0:x1] = F.interpolate(grid, size=(y1 - y0, x1 - x0), mode='bilinear', align_corners=False)[0, 0]
    windows = crop_windows(box[None], true_mask.shape)
    return (crop_inputs(image_tensor(rgb), coarse[None], windows, crop_px),
            crop_targets(true_mask[None], windows, crop_px))


def _jittered_box(true_mask: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    box = torch.tensor(box_of(true_mask.numpy()), dtype=torch.float32)
    size = (box[2:] - box[:2]).repeat(2)
    box = box + torch.from_numpy(rng.normal(0.0, BOX_JITTER, 4)).float() * size
    height, width = true_mask.shape
    box = box.clamp(min=0).minimum(torch.tensor([width - 1, height - 1, width, height], dtype=torch.float32))
    box[2:] = torch.maximum(box[2:], box[:2] + 2)
    return box


def _corrupt(grid: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Blur, grow or shrink by one cell, and noise: the kinds of error the mask head makes."""
    if rng.random() < 0.5:
        grid = F.avg_pool2d(grid, 3, 1, 1)
    morphology = rng.random()
    if morphology < 0.25:
        grid = F.max_pool2d(grid, 3, 1, 1)
    elif morphology < 0.5:
        grid = -F.max_pool2d(-grid, 3, 1, 1)
    noise = torch.from_numpy(rng.normal(0.0, rng.uniform(0.0, 0.3), grid.shape)).float()
    return (grid + noise).clamp(0.0, 1.0)


def refiner_loss(logits: torch.Tensor, targets: torch.Tensor, dice_weight: float) -> torch.Tensor:
    """Binary cross-entropy against the soft targets plus (1 - soft Dice), averaged over the crops."""
    bce = F.binary_cross_entropy_with_logits(logits, targets)
    probabilities = torch.sigmoid(logits)
    overlap = (probabilities * targets).sum(dim=(1, 2, 3))
    dice = (2 * overlap + 1.0) / (probabilities.sum(dim=(1, 2, 3)) + targets.sum(dim=(1, 2, 3)) + 1.0)
    return bce + dice_weight * (1.0 - dice.mean())


def crop_iou(probabilities: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N,) IoU per crop of probability >= 0.5 with target >= 0.5."""
    predicted, truth = probabilities >= 0.5, targets >= 0.5
    union = (predicted | truth).sum(dim=(1, 2, 3)).clamp(min=1)
    return (predicted & truth).sum(dim=(1, 2, 3)) / union


@torch.no_grad()
def validate(refiner: MaskRefiner, crops: dict[str, torch.Tensor]) -> dict:
    """Mean crop IoU per class of Mask R-CNN's masks and of the refined ones."""
    if len(crops['classes']) == 0:
        return {'coarse': float('nan'), 'refined': float('nan'), 'per_class': {}}
    refiner.eval()
    refined = torch.sigmoid(torch.cat([refiner(chunk.float()) for chunk in crops['inputs'].split(64)]))
    refiner.train()
    coarse_iou = crop_iou(crops['inputs'][:, 3:4].float(), crops['targets'].float())
    refined_iou = crop_iou(refined, crops['targets'].float())
    per_class = {}
    for c, name in enumerate(OBJECT_CLASSES, start=1):
        chosen = crops['classes'] == c
        if chosen.any():
            per_class[name] = {'coarse': float(coarse_iou[chosen].mean()), 'refined': float(refined_iou[chosen].mean()),
                               'crops': int(chosen.sum())}
    return {'coarse': float(coarse_iou.mean()), 'refined': float(refined_iou.mean()), 'per_class': per_class}


def train_refiner(data_dir: Path, detector: Path, out: Path, config: RefinerTrainConfig = RefinerTrainConfig(),
                  refiner_config: RefinerConfig = RefinerConfig(), command: str = '', progress: bool = True) -> dict:
    """Train a refiner for the masks of the Mask R-CNN checkpoint `detector`; write it to `out` with its card."""
    from tqdm import tqdm

    from samrl_perception.segmentation.segmenter import MaskRCNNSegmenter

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    data = read_shards(data_dir)
    train_idx, val_idx = validation_split(detector, data, data_dir)
    segmenter = MaskRCNNSegmenter(detector)
    crop_px = refiner_config.crop_px
    train_crops = detection_crops(segmenter, data, train_idx, crop_px, progress)
    val_crops = detection_crops(segmenter, data, val_idx, crop_px, progress)
    instances = [(i, c) for i in train_idx for c in np.unique(data['labels'][i])
                 if c > 0 and np.count_nonzero(data['labels'][i] == c) >= MIN_TRAIN_PIXELS]
    refiner = MaskRefiner(refiner_config).train()
    optimiser = torch.optim.AdamW(refiner.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    log, curve, window, start = [], [], [], time.perf_counter()
    bar = tqdm(range(config.iterations), desc='training mask refiner', unit='it', disable=not progress)
    for iteration in bar:
        # 1. A batch of crops: the detector's masks and freshly coarsened true masks, randomly flipped.
        inputs, targets = _batch(data, train_crops, instances, config, crop_px, rng)
        # 2. Forward: refined mask logits.
        logits = refiner(inputs)
        # 3. Loss: cross-entropy + Dice against the true masks.
        loss = refiner_loss(logits, targets, config.dice_weight)
        # 4. Step with the scheduled learning rate.
        optimiser.zero_grad()
        loss.backward()
        for group in optimiser.param_groups:
            group['lr'] = learning_rate(config, iteration)
        optimiser.step()
        # 5. Log the loss; score the validation crops now and then.
        window.append(loss.item())
        if (iteration + 1) % LOG_EVERY == 0 or iteration + 1 == config.iterations:
            log.append({'iteration': iteration + 1, 'total': float(np.mean(window))})
            window = []
            bar.set_postfix(loss=f'{log[-1]["total"]:.3f}')
        if (iteration + 1) % VALIDATE_EVERY == 0 or iteration + 1 == config.iterations:
            curve.append({'iteration': iteration + 1, **validate(refiner, val_crops)})
    record = {'command': command, 'train_config': asdict(config), 'detector': str(detector), 'data_dir': str(data_dir),
              'train_crops': len(train_crops['classes']), 'val_crops': len(val_crops['classes']),
              'train_time_s': time.perf_counter() - start, 'validation_crops': curve[-1] if curve else {},
              'validation_curve': curve, 'torch': str(torch.__version__)}
    save_refiner(out, refiner.eval(), record)
    write_training_log(out, log, record, 'mask refiner training')
    return calibrate_checkpoint(detector, data_dir, data, progress, refiner=out)


def _batch(data, crops, instances, config: RefinerTrainConfig, crop_px: int, rng: np.random.Generator):
    from_detector = min(len(crops['classes']), int(round(config.detection_fraction * config.batch_size)))
    chosen = rng.choice(len(crops['classes']), from_detector, replace=False)
    inputs, targets = [crops['inputs'][chosen].float()], [crops['targets'][chosen].float()]
    degraded = config.batch_size - from_detector
    for k in rng.choice(len(instances), degraded, replace=len(instances) < degraded):
        i, c = instances[k]
        x, y = degraded_crop(data['rgb'][i], torch.from_numpy(data['labels'][i] == c), crop_px, rng)
        inputs.append(x)
        targets.append(y)
    inputs, targets = torch.cat(inputs), torch.cat(targets)
    for dim, flip in ((3, rng.random(len(inputs)) < 0.5), (2, rng.random(len(inputs)) < 0.5)):
        flip = torch.from_numpy(flip)
        inputs[flip], targets[flip] = inputs[flip].flip(dim), targets[flip].flip(dim)
    return inputs, targets
