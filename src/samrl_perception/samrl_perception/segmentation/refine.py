"""Mask refinement at full image resolution: sharp edges for thin objects.

Mask R-CNN (model.py) sees the image at 320x240 and predicts each mask on a 28x28 grid over its
box. For the 4-5 px thread that is the limit: a 1 px error on either side of a 5 px wide mask
costs 20-35 % IoU. The refiner looks again at each kept detection at full resolution, in the
spirit of PointRend and CascadePSP (a second, local look at the boundary):

* the crop window is the detection's box widened by CONTEXT_FRACTION of its size plus MARGIN_PX,
  resampled to crop_px x crop_px (antialiased, so shrinking averages);
* its input is the RGB crop and Mask R-CNN's mask probability over the same window;
* a small U-Net predicts a correction to the coarse mask's logit, so an untrained refiner
  returns the coarse mask and a trained one only has to learn where it is wrong;
* the refined logits are resampled back onto the window's pixels.

Checkpoints are plain dicts of tensors and numbers, read with torch.load(weights_only=True).
train_refiner.py trains it; MaskRCNNSegmenter applies it to the masks it keeps. The checks that
turn any unusable checkpoint file into one clear error (here and in segmenter.py) live at the end.
"""

from __future__ import annotations

import math
import pickle
import warnings
from dataclasses import asdict, dataclass
from numbers import Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from samrl_perception.segmentation.targets import box_of

REFINER_FORMAT = 1
DEFAULT_REFINER = Path(__file__).resolve().parent.parent / 'checkpoints' / 'mask_refiner.pt'
CONTEXT_FRACTION = 0.15         # of the box's width / height, added on each side
MARGIN_PX = 4                   # added on each side too, so tiny boxes still get some context
PROBABILITY_CLAMP = 0.02        # coarse probabilities are clamped before their logit (|logit| <= 3.9)
RGB_SCALE, RGB_CENTRE = 1.0 / 255.0, 0.5
THRESHOLD_KEYS = ('score_threshold', 'score_threshold_scene_objects')   # calibrated thresholds a card may hold
FINGERPRINT_HEX_DIGITS = 64     # SHA-256 (segmenter.weights_fingerprint)
MISMATCH_EXAMPLES = 3           # names quoted when a state dict does not fit its network


@dataclass(frozen=True)
class RefinerConfig:
    """Shape of the refiner; stored in its checkpoint."""

    crop_px: int = 112                          # side of the square crop the network sees
    channels: tuple[int, ...] = (8, 16, 32, 64)  # U-Net widths, one level per entry (+ a bottleneck)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RefinerConfig:
        return cls(**{**values, 'channels': tuple(values['channels'])})


class RefinerError(ValueError):
    """A refiner checkpoint that is missing or of another format."""


def _conv_block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs),
                         nn.ReLU(inplace=True), nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
                         nn.BatchNorm2d(outputs), nn.ReLU(inplace=True))


class MaskRefiner(nn.Module):
    """U-Net: (N, 4, S, S) RGB + coarse probability -> (N, 1, S, S) refined mask logits."""

    def __init__(self, config: RefinerConfig = RefinerConfig()):
        super().__init__()
        self.config = config
        widths = list(config.channels)
        self.down = nn.ModuleList(_conv_block(a, b) for a, b in zip([4] + widths[:-1], widths))
        self.bottleneck = _conv_block(widths[-1], widths[-1])
        # Decoder as in an FPN: the coarser level is projected to the skip's width and added, then
        # one 3x3 convolution (half the cost of a concatenating U-Net decoder at the same widths).
        self.lateral = nn.ModuleList(nn.Conv2d(w_in, w, 1) for w, w_in in zip(widths, widths[1:] + widths[-1:]))
        self.up = nn.ModuleList(nn.Sequential(nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                                              nn.ReLU(inplace=True)) for w in widths)
        self.head = nn.Conv2d(widths[0], 1, 1)
        nn.init.zeros_(self.head.weight)            # starts as the identity on the coarse mask
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = x[:, 3:4].clamp(PROBABILITY_CLAMP, 1 - PROBABILITY_CLAMP)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for lateral, block, skip in zip(reversed(self.lateral), reversed(self.up), reversed(skips)):
            x = F.interpolate(lateral(x), size=skip.shape[-2:], mode='bilinear', align_corners=False)
            x = block(x + skip)
        return torch.logit(coarse) + self.head(x)


def crop_windows(boxes: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(K, 4) x0 y0 x1 y1 boxes -> (K, 4) integer pixel windows around them, inside the image."""
    height, width = shape
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0)
    pad = CONTEXT_FRACTION * size + MARGIN_PX
    low = torch.floor(boxes[:, :2] - pad)
    high = torch.ceil(boxes[:, 2:] + pad)
    low = torch.stack([low[:, 0].clamp(0, width - 1), low[:, 1].clamp(0, height - 1)], dim=1)
    high = torch.stack([high[:, 0].clamp(1, width), high[:, 1].clamp(1, height)], dim=1)
    return torch.cat([low, torch.maximum(high, low + 1)], dim=1)


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> (3, H, W) float, centred."""
    return torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).float() * RGB_SCALE - RGB_CENTRE


def crop_inputs(image: torch.Tensor, probabilities: torch.Tensor, windows: torch.Tensor, crop_px: int) -> torch.Tensor:
    """(3, H, W) image and (K, H, W) coarse probabilities -> (K, 4, S, S): each mask's window of both."""
    return torch.cat([_resample(image, window, crop_px, probabilities[k:k + 1]) for k, window in enumerate(windows)])


def crop_targets(masks: torch.Tensor, windows: torch.Tensor, crop_px: int) -> torch.Tensor:
    """(K, H, W) true masks -> (K, 1, S, S): the fraction of each cell inside the mask."""
    return torch.cat([_resample(masks[k:k + 1].float(), window, crop_px) for k, window in enumerate(windows)])


def _resample(planes: torch.Tensor, window: torch.Tensor, crop_px: int, *more: torch.Tensor) -> torch.Tensor:
    """(C, H, W) planes (and more of them, stacked on) -> (1, C', S, S) over one window.

    Antialiased, so a cell of a shrunk window is the mean of its pixels.
    """
    x0, y0, x1, y1 = window.long().tolist()
    cut = torch.cat([p[:, y0:y1, x0:x1] for p in (planes, *more)])
    return F.interpolate(cut[None], size=(crop_px, crop_px), mode='bilinear', antialias=True, align_corners=False)


def paste_logits(logits: torch.Tensor, windows: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(K, 1, S, S) window logits -> (K, H, W) probabilities, 0 outside each window."""
    out = torch.zeros((len(windows), *shape))
    for k, (x0, y0, x1, y1) in enumerate(windows.long().tolist()):
        resized = F.interpolate(logits[k:k + 1], size=(y1 - y0, x1 - x0), mode='bilinear', align_corners=False)
        out[k, y0:y1, x0:x1] = torch.sigmoid(resized[0, 0])
    return out


@torch.no_grad()
def refine_masks(refiner: MaskRefiner, rgb: np.ndarray, probabilities: torch.Tensor,
                 boxes: torch.Tensor) -> torch.Tensor:
    """Mask R-CNN's (K, H, W) full-size mask probabilities and (K, 4) boxes -> refined (K, H, W) probabilities."""
    if len(boxes) == 0:
        return probabilities
    windows = crop_windows(boxes, probabilities.shape[-2:])
    inputs = crop_inputs(image_tensor(rgb), probabilities, windows, refiner.config.crop_px)
    return paste_logits(refiner(inputs), windows, probabilities.shape[-2:])


def representable_by_refiner(truth: np.ndarray, crop_px: int) -> np.ndarray:
    """About the best mask the refiner can return for `truth` (HxW bool): the true mask averaged into
    the crop grid of its box's window and resampled back, as a perfect refiner's output would be.
    Its IoU with `truth` is the ceiling that the crop size puts on the score."""
    if not truth.any():
        return np.zeros_like(truth, dtype=bool)
    mask = torch.from_numpy(truth)
    box = torch.tensor([box_of(truth)], dtype=torch.float32)
    windows = crop_windows(box, truth.shape)
    grid = crop_targets(mask[None], windows, crop_px).clamp(PROBABILITY_CLAMP, 1 - PROBABILITY_CLAMP)
    return (paste_logits(torch.logit(grid), windows, truth.shape)[0] >= 0.5).numpy()


def save_refiner(path: Path, refiner: MaskRefiner, record: dict) -> None:
    payload = {'format': REFINER_FORMAT, 'kind': 'mask_refiner', 'config': refiner.config.to_dict(),
               'state_dict': refiner.state_dict(), 'record': record}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def load_refiner(path: Path) -> tuple[MaskRefiner, dict]:
    """(the refiner in eval mode, its record); RefinerError names the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise RefinerError(f'no mask refiner at {path}; train one with `samrl perception train-refiner`')
    payload = read_weights_file(path, RefinerError)
    if payload.get('kind') != 'mask_refiner' or payload.get('format') != REFINER_FORMAT:
        raise RefinerError(f'{path} is not a mask refiner checkpoint of format {REFINER_FORMAT}')
    check_payload(payload, path, RefinerError)
    fingerprint = payload['record'].get('detector_fingerprint')
    if fingerprint is not None and not _is_fingerprint(fingerprint):
        raise RefinerError(f'{path}: detector_fingerprint {fingerprint!r} is no SHA-256 hex digest')
    try:
        refiner = MaskRefiner(RefinerConfig.from_dict(payload['config']))
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError) as exc:
        raise RefinerError(f'{path}: its config does not describe a mask refiner ({type(exc).__name__}: {exc})') \
            from exc
    load_weights(refiner, payload['state_dict'], path, RefinerError)
    return refiner.eval(), payload['record']


def _is_fingerprint(value) -> bool:
    return isinstance(value, str) and len(value) == FINGERPRINT_HEX_DIGITS and \
        all(c in '0123456789abcdef' for c in value)


# -- checkpoint files (shared with segmenter.py) --------------------------------------------------
def read_weights_file(path: Path, error: type[ValueError]) -> dict:
    """The dict stored in a checkpoint file, or `error` naming the file and what is wrong with it.

    Read with weights_only=True: a pickle that would run code is refused before any of it runs.
    torch raises a different exception for each kind of bad file (EOFError, KeyError,
    RuntimeError, UnpicklingError, OSError, ...); all become one `error`, so a node can report
    them as a bad parameter.
    """
    if path.is_dir():
        raise error(f'{path} is a directory, not a checkpoint file')
    if not path.is_file():
        raise error(f'{path} is not a regular file')
    if path.stat().st_size == 0:
        raise error(f'{path} is empty (0 bytes), not a checkpoint')
    try:
        with warnings.catch_warnings():             # protocol notes on foreign pickles are no news here
            warnings.filterwarnings('ignore', message='Detected pickle protocol')
            payload = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        raise error(f'{path} refused by the weights-only loader (a pickle that could run code, or no torch '
                    f'file at all): {_unpickler_reason(exc)}') from exc
    except Exception as exc:  # whatever torch raised, the file is unusable
        raise error(f'{path} is not a torch checkpoint file ({type(exc).__name__}: {_first_line(exc)})') from exc
    if not isinstance(payload, dict):
        raise error(f'{path} holds a {type(payload).__name__}, not a checkpoint dict')
    return payload


def _first_line(exc: Exception) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), repr(exc))


def _unpickler_reason(exc: pickle.UnpicklingError) -> str:
    """The line of torch's long weights-only message that says what was refused."""
    boilerplate = ('Weights only load failed', 'Please file an issue', 'Check the documentation')
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return next((line for line in lines if not line.startswith(boilerplate)), _first_line(exc))


def check_payload(payload: dict, path: Path, error: type[ValueError]) -> None:
    """The fields every checkpoint has: a config dict, a state dict of named tensors, a record (card) dict
    whose calibrated thresholds are numbers in [0, 1]."""
    for key in ('config', 'state_dict', 'record'):
        if not isinstance(payload.get(key), dict):
            raise error(f'{path}: {key!r} is {type(payload.get(key)).__name__}, expected a dict')
    bad = [name for name, value in payload['state_dict'].items()
           if not isinstance(name, str) or not isinstance(value, torch.Tensor)]
    if bad:
        raise error(f'{path}: state_dict entries that are no named tensors: {bad[:MISMATCH_EXAMPLES]}')
    for key in THRESHOLD_KEYS:
        value = payload['record'].get(key)
        if value is not None and not _is_probability(value):
            raise error(f'{path}: record {key} {value!r} is not a number in [0, 1]')


def _is_probability(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and 0.0 <= value <= 1.0


def load_weights(module: nn.Module, state_dict: dict, path: Path, error: type[ValueError]) -> None:
    """Load `state_dict` into `module`, or `error` saying which names and shapes do not fit."""
    problem = weights_mismatch(module.state_dict(), state_dict)
    if problem:
        raise error(f'{path}: the weights do not fit the network of its config: {problem}')
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as exc:                 # e.g. a dtype that cannot be copied
        raise error(f'{path}: the weights do not load: {_first_line(exc)}') from exc


def weights_mismatch(expected: dict, given: dict) -> str:
    """What differs between two state dicts' names and shapes ('' when they fit)."""
    def examples(names) -> str:
        return ', '.join(sorted(names)[:MISMATCH_EXAMPLES]) + (', ...' if len(names) > MISMATCH_EXAMPLES else '')

    missing, unexpected = expected.keys() - given.keys(), given.keys() - expected.keys()
    resized = {name: (tuple(given[name].shape), tuple(expected[name].shape))
               for name in expected.keys() & given.keys() if given[name].shape != expected[name].shape}
    problems = [f'{len(missing)} missing ({examples(missing)})' if missing else '',
                f'{len(unexpected)} unexpected ({examples(unexpected)})' if unexpected else '',
                f'{len(resized)} of other shapes (' + ', '.join(
                    f'{name} {resized[name][0]} instead of {resized[name][1]}'
                    for name in sorted(resized)[:MISMATCH_EXAMPLES]) + ')' if resized else '']
    return '; '.join(filter(None, problems))
