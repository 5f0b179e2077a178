"""Train the Mask R-CNN from scratch on the generated data set (`samrl perception train`).

AdamW with a linear warm-up and a cosine decay; random horizontal flips. A fixed share of the
training images (the last seeds) is kept out for validation, so the checkpoint carries metrics of
images it never saw; the held-out test set (seeds >= TEST_FIRST_SEED) is for the benchmark only.
The checkpoint records the exact command line, seed, data set and metrics, and a loss curve is
plotted next to it. Training can go on from a checkpoint (`resume`): its weights are loaded, the
schedule (warm-up, cosine) starts again over the new iterations with fresh AdamW moments, and the
new card lists every earlier run in `history`, so the chain of commands stays reproducible.
`init_from` starts a network of another shape (the stride-2 mask level) from a checkpoint's
weights where they fit; the card lists the parameters that started new.
After training, the detection score thresholds (any class, and each image's scene objects) are
chosen on the validation images (calibrate.py) and stored in the card; `calibrate_checkpoint` does
the same for an existing checkpoint.
Every `save_every` iterations a snapshot `<checkpoint stem>_it<N>.pt` is written with
`completed_iterations` in its card, so a run that is cut off leaves its progress behind and the
learning curve can be scored afterwards (`samrl perception calibrate --checkpoint <snapshot>`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from samrl_perception.segmentation.model import MaskRCNNConfig, build_mask_rcnn, transfer_weights
from samrl_perception.segmentation.segmenter import load_checkpoint, save_checkpoint, weights_fingerprint
from samrl_perception.segmentation.shards import TEST_FIRST_SEED, read_shards
from samrl_perception.segmentation.targets import targets_from_labels

RGB_SCALE = 1.0 / 255.0
LOG_EVERY = 25              # iterations per logged loss point


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 3000
    batch_size: int = 4
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_iterations: int = 200
    grad_clip_norm: float = 10.0
    val_fraction: float = 0.05
    seed: int = 0
    threads: int = 2
    save_every: int = 250       # iterations between partial checkpoints (a long run cut off keeps its progress)


def learning_rate(config, iteration: int) -> float:
    """Linear warm-up to the base rate, then cosine decay to zero (any config with iterations,
    warmup_iterations and learning_rate: Mask R-CNN's and the refiner's)."""
    if iteration < config.warmup_iterations:
        return config.learning_rate * (iteration + 1) / config.warmup_iterations
    progress = (iteration - config.warmup_iterations) / max(1, config.iterations - config.warmup_iterations)
    return 0.5 * config.learning_rate * (1.0 + math.cos(math.pi * progress))


def split(data: dict[str, np.ndarray], val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation images: validation takes the highest seeds."""
    if data['seeds'].max() >= TEST_FIRST_SEED:
        raise ValueError(f'the training data holds held-out seeds (>= {TEST_FIRST_SEED}); use the train split')
    order = np.argsort(data['seeds'])
    n_val = int(round(val_fraction * len(order)))
    return np.sort(order[:len(order) - n_val]), np.sort(order[len(order) - n_val:])


def batch(data: dict[str, np.ndarray], indices: np.ndarray, rng: np.random.Generator):
    images, targets = [], []
    for i in indices:
        rgb, labels = data['rgb'][i], data['labels'][i]
        if rng.random() < 0.5:
            rgb, labels = rgb[:, ::-1], labels[:, ::-1]
        images.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() * RGB_SCALE)
        targets.append(targets_from_labels(np.ascontiguousarray(labels)))
    return images, targets


def train(data_dir: Path, checkpoint: Path, config: TrainConfig, command: str,
          model_config: MaskRCNNConfig | None = None, resume: Path | None = None, progress: bool = True,
          init_from: Path | None = None) -> dict:
    """Train (from scratch, on from `resume`, or from `init_from`'s weights where they fit), validate,
    calibrate, write the checkpoint, its loss log and plot."""
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    data = read_shards(data_dir)
    train_idx, val_idx = split(data, config.val_fraction)
    model, model_config, history = initial_model(model_config, resume, init_from)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    log, window, start = [], [], time.perf_counter()
    bar = tqdm(range(config.iterations), desc='training Mask R-CNN', unit='it', disable=not progress)
    model.train()
    for iteration in bar:
        # 1. A random batch of training images (flipped half the time) and their targets.
        images, targets = batch(data, rng.choice(train_idx, config.batch_size, replace=False), rng)
        # 2. Forward: the RPN, box and mask losses of Mask R-CNN.
        losses = model(images, targets)
        total = sum(losses.values())
        # 3. Backward, with the gradient norm clipped (from-scratch training spikes early).
        optimiser.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
        # 4. Step with the scheduled learning rate.
        for group in optimiser.param_groups:
            group['lr'] = learning_rate(config, iteration)
        optimiser.step()
        # 5. Log the running mean of every loss term.
        window.append({k: float(v) for k, v in losses.items()} | {'total': float(total)})
        if (iteration + 1) % LOG_EVERY == 0 or iteration + 1 == config.iterations:
            log.append({'iteration': iteration + 1, **{k: float(np.mean([w[k] for w in window])) for k in window[0]}})
            bar.set_postfix(loss=f'{log[-1]["total"]:.3f}')
            window = []
        if (iteration + 1) % config.save_every == 0 and iteration + 1 < config.iterations:
            partial = _record(command, config, data_dir, data, train_idx, val_idx, start, log, history)
            partial['completed_iterations'] = iteration + 1
            save_checkpoint(snapshot_path(checkpoint, iteration + 1), model, model_config, partial)
            write_training_log(checkpoint, log, partial)
    record = _record(command, config, data_dir, data, train_idx, val_idx, start, log, history)
    record['completed_iterations'] = config.iterations
    save_checkpoint(checkpoint, model, model_config, record)
    write_training_log(checkpoint, log, record)
    return calibrate_checkpoint(checkpoint, data_dir, data, progress)


def snapshot_path(checkpoint: Path, iteration: int) -> Path:
    """Where a run writing `checkpoint` keeps its snapshot after `iteration` iterations."""
    return checkpoint.with_name(f'{checkpoint.stem}_it{iteration:05d}{checkpoint.suffix}')


def calibrate_checkpoint(checkpoint: Path, data_dir: Path, data: dict | None = None, progress: bool = True,
                         refiner: Path | None = None) -> dict:
    """Choose the score thresholds (any class; each image's scene objects) on the checkpoint's validation
    split, score each there, store all in the card.

    With a refiner the thresholds are chosen for the refined masks (a detection with a modest score
    whose mask the refiner makes exact is worth keeping) and stored in the refiner's card, where a
    segmenter using that refiner finds them.
    """
    from samrl_perception.segmentation.calibrate import choose_threshold, detect_all, refine_all, scene_classes
    from samrl_perception.segmentation.evaluate import evaluate_segmenter
    from samrl_perception.segmentation.segmenter import MaskRCNNSegmenter

    data = read_shards(data_dir) if data is None else data
    _, val_idx = validation_split(checkpoint, data, data_dir)
    segmenter = MaskRCNNSegmenter(checkpoint, refiner=refiner)
    detections = detect_all(segmenter, data, val_idx, progress)         # the network runs once for both
    if refiner is not None:
        detections = refine_all(segmenter, data, val_idx, detections)
    truths = [data['labels'][i] for i in val_idx]
    results = {'calibration': choose_threshold(detections, truths),
               'calibration_scene_objects': choose_threshold(detections, truths,
                                                             classes_per_image=scene_classes(data, val_idx))}
    for suffix, scene_objects in (('', False), ('_scene_objects', True)):
        threshold = results[f'calibration{suffix}']['score_threshold']
        results[f'score_threshold{suffix}'] = segmenter.score_threshold = threshold
        results[f'validation{suffix}'] = evaluate_segmenter(segmenter, data, val_idx, progress=progress,
                                                            scene_objects=scene_objects)
    stored = refiner or checkpoint
    payload = torch.load(stored, map_location='cpu', weights_only=True)
    if refiner is not None:         # whose thresholds these are (see MaskRCNNSegmenter)
        results['detector_fingerprint'] = weights_fingerprint(segmenter.model.state_dict())
    payload['record'].update(results)
    torch.save(payload, stored)
    _write_card(stored, payload['record'])
    return payload['record']


def validation_split(checkpoint: Path, data: dict, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint's own training / validation split of `data` (refused if its validation seeds differ)."""
    record = load_checkpoint(checkpoint)['record']
    train_idx, val_idx = split(data, record['train_config']['val_fraction'])
    if sorted(int(s) for s in data['seeds'][val_idx]) != record['val_seeds']:
        raise ValueError(f'{data_dir} is not the data set {checkpoint} was trained on (validation seeds differ)')
    return train_idx, val_idx


def _record(command, config, data_dir, data, train_idx, val_idx, start, log, history) -> dict:
    return {'command': command, 'train_config': asdict(config), 'data_dir': str(data_dir),
            'train_images': len(train_idx), 'train_seeds': [int(data['seeds'].min()), int(data['seeds'].max())],
            'val_seeds': sorted(int(s) for s in data['seeds'][val_idx]),
            'train_time_s': time.perf_counter() - start, 'final_losses': log[-1] if log else {},
            'torch': str(torch.__version__), 'history': history}


def initial_model(model_config: MaskRCNNConfig | None, resume: Path | None, init_from: Path | None = None):
    """(model, its config, the earlier runs behind it): random weights, or those of a checkpoint.

    resume: the checkpoint's network, unchanged. init_from: a network of `model_config` (for
    instance with the stride-2 mask level) that takes the checkpoint's weights where they fit.
    """
    if resume is not None and init_from is not None:
        raise ValueError('resume and init_from exclude each other')
    source = resume or init_from
    if source is None:
        config = model_config or MaskRCNNConfig()
        return build_mask_rcnn(config), config, []
    payload = load_checkpoint(source)
    source_config = MaskRCNNConfig(**payload['config'])
    config = model_config or source_config
    if resume is not None and config != source_config:
        raise ValueError(f'{resume} holds a network of another shape than the one asked for (use init_from)')
    model = build_mask_rcnn(config)
    offset = int(config.mask_stride2) - int(source_config.mask_stride2)
    if offset < 0:
        raise ValueError(f'{init_from} has the stride-2 mask level; a network without it cannot start from it')
    earlier = payload['record']
    step = {key: earlier.get(key) for key in ('command', 'train_config', 'train_time_s', 'final_losses')}
    if init_from is not None:
        step['new_parameters'] = transfer_weights(model, payload['state_dict'], offset)
        step['config'] = source_config.to_dict()
    else:
        model.load_state_dict(payload['state_dict'])
    return model, config, [*earlier.get('history', []), step]


def _write_card(checkpoint: Path, record: dict) -> None:
    checkpoint.with_name(f'{checkpoint.stem}_card.json').write_text(json.dumps(record, indent=2) + '\n')


def write_training_log(checkpoint: Path, log: list[dict], record: dict, title: str = 'Mask R-CNN training') -> None:
    """<stem>_losses.json, <stem>_losses.png and the card beside a checkpoint."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    stem = checkpoint.with_suffix('')
    Path(f'{stem}_losses.json').write_text(json.dumps(log, indent=1) + '\n')
    _write_card(checkpoint, record)
    figure, axis = plt.subplots(figsize=(7, 4))
    for key in (log[0] if log else {}):
        if key != 'iteration':
            axis.plot([row['iteration'] for row in log], [row[key] for row in log], label=key,
                      linewidth=2.0 if key == 'total' else 1.0)
    axis.set(xlabel='iteration', ylabel='loss (running mean)', yscale='log', title=title)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(f'{stem}_losses.png', dpi=100)
    plt.close(figure)
