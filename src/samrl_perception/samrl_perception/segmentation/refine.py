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
train_refiner.py trains it; MaskRCNNSegmenter applies it to the masks it keeps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
    """(the refiner in eval mode, its record); RefinerError names what is wrong with the file."""
    if not Path(path).is_file():
        raise RefinerError(f'no mask refiner at {path}; train one with `samrl perception train-refiner`')
    payload = torch.load(path, map_location='cpu', weights_only=True)
    if payload.get('kind') != 'mask_refiner' or payload.get('format') != REFINER_FORMAT:
        raise RefinerError(f'{path} is not a mask refiner checkpoint of format {REFINER_FORMAT}')
    refiner = MaskRefiner(RefinerConfig.from_dict(payload['config']))
    refiner.load_state_dict(payload['state_dict'])
    return refiner.eval(), payload['record']
