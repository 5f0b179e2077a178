"""A Mask R-CNN small enough to train from scratch and run on two CPU cores.

The paper segments its images with Mask R-CNN (Sec. III-B.2). torchvision's ResNet-50 FPN model
needs ImageNet weights we cannot download and runs at about 1.5 s per 640x480 frame here, so the
network is assembled from torchvision's own parts, scaled down:

* backbone: ResNet-18 (random init, trainable BatchNorm) with an FPN of 64 channels on its
  stride-4/8/16 stages plus the max-pool level;
* input resized so the short side is 240 px (640x480 -> 320x240): the task objects are large
  enough at that scale except the thread, whose width drops to 1-2 px (the IoU limit, see README);
* anchors from 8 to 256 px with aspect ratios 1:5 to 5:1 (the needle and thread are long and thin);
* light heads: a 256-d box head, four 64-channel mask convolutions, 50 proposals at test time;
* optionally (`mask_stride2`) a stride-2 FPN level from the ResNet stem that only the mask head
  pools from: at stride 4 (8 px in a 640x480 image) the 4-5 px thread is blurred. The RPN and
  the box head keep their levels, so the extra cost is one FPN level.

Everything the network needs to be rebuilt is in MaskRCNNConfig, which the checkpoint stores.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import asdict, dataclass

from torch import nn
from torchvision.models import resnet18
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from samrl_description.objects import OBJECT_CLASSES

BACKBONE_STAGES = {'layer1': '0', 'layer2': '1', 'layer3': '2'}   # strides 4, 8, 16
BACKBONE_CHANNELS = [64, 128, 256]                                  # ResNet-18 channels of those stages
STEM_STAGE, STEM_CHANNELS = {'relu': 's2'}, [64]                    # the stem's stride-2 output
RPN_EXTRA_LEVEL = 'pool'                                            # FPN's max-pool level (RPN only)
ANCHOR_SIZES_PX = ((8, 16), (24, 40), (64, 96), (160, 256))          # one pair per FPN level (incl. pool)
ANCHOR_ASPECT_RATIOS = (0.2, 0.5, 1.0, 2.0, 5.0)
BOX_POOL_PX, MASK_POOL_PX, POOL_SAMPLING = 7, 14, 2


@dataclass(frozen=True)
class MaskRCNNConfig:
    """Shape of the network; stored in every checkpoint."""

    num_classes: int = len(OBJECT_CLASSES) + 1      # + background
    fpn_channels: int = 64
    min_size_px: int = 240                          # short side after the model's own resize
    max_size_px: int = 320
    box_head_dim: int = 256
    mask_head_channels: int = 64
    mask_head_layers: int = 4
    rpn_pre_nms_train: int = 600
    rpn_post_nms_train: int = 300
    rpn_pre_nms_test: int = 300
    rpn_post_nms_test: int = 50
    box_batch_per_image: int = 128
    detections_per_image: int = 10
    mask_stride2: bool = False                      # mask RoIs may pool from a stride-2 level

    def to_dict(self) -> dict:
        return asdict(self)


def build_mask_rcnn(config: MaskRCNNConfig = MaskRCNNConfig()) -> MaskRCNN:
    """A randomly initialised Mask R-CNN of this shape (no downloaded weights anywhere)."""
    body = resnet18(weights=None, norm_layer=nn.BatchNorm2d)
    stages, channels = dict(BACKBONE_STAGES), list(BACKBONE_CHANNELS)
    if config.mask_stride2:
        stages, channels = {**STEM_STAGE, **stages}, STEM_CHANNELS + channels
    backbone = BackboneWithFPN(body, stages, channels, config.fpn_channels)
    levels = list(BACKBONE_STAGES.values())
    mask_levels = list(stages.values())
    anchors = AnchorGenerator(ANCHOR_SIZES_PX, (ANCHOR_ASPECT_RATIOS,) * len(ANCHOR_SIZES_PX))
    mask_channels = (config.mask_head_channels,) * config.mask_head_layers
    model = MaskRCNN(
        backbone, num_classes=None, min_size=config.min_size_px, max_size=config.max_size_px,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=config.rpn_pre_nms_train, rpn_post_nms_top_n_train=config.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=config.rpn_pre_nms_test, rpn_post_nms_top_n_test=config.rpn_post_nms_test,
        box_roi_pool=MultiScaleRoIAlign(levels, BOX_POOL_PX, POOL_SAMPLING),
        box_head=TwoMLPHead(config.fpn_channels * BOX_POOL_PX ** 2, config.box_head_dim),
        box_predictor=FastRCNNPredictor(config.box_head_dim, config.num_classes),
        box_batch_size_per_image=config.box_batch_per_image, box_detections_per_img=config.detections_per_image,
        mask_roi_pool=MultiScaleRoIAlign(mask_levels, MASK_POOL_PX, POOL_SAMPLING),
        mask_head=MaskRCNNHeads(config.fpn_channels, mask_channels, 1),
        mask_predictor=MaskRCNNPredictor(config.mask_head_channels, config.mask_head_channels, config.num_classes))
    if config.mask_stride2:
        model.rpn = LevelSubsetRPN(model.rpn, [*levels, RPN_EXTRA_LEVEL])
    return model


class LevelSubsetRPN(nn.Module):
    """The region proposal network on some FPN levels only (the stride-2 level is for masks)."""

    def __init__(self, rpn: nn.Module, levels: list[str]):
        super().__init__()
        self.rpn, self.levels = rpn, levels

    def forward(self, images, features, targets=None):
        return self.rpn(images, OrderedDict((name, features[name]) for name in self.levels), targets)


def transfer_weights(model: nn.Module, state_dict: dict, fpn_level_offset: int = 0) -> list[str]:
    """Copy the tensors of `state_dict` into `model` where the name and shape match.

    fpn_level_offset: FPN levels the model has below the source's finest (1 from a network
    without the stride-2 level to one with it), so the source's FPN block i fills block
    i + offset. An RPN wrapped in LevelSubsetRPN matches the plain one. Returns the names of
    `model` left at their initial values (the new parts).
    """
    source = {_plain_name(name): tensor for name, tensor in state_dict.items()}
    target = model.state_dict()
    new = []
    for name, tensor in target.items():
        match = source.get(_plain_name(name, -fpn_level_offset))
        if match is not None and match.shape == tensor.shape:
            target[name] = match
        else:
            new.append(name)
    model.load_state_dict(target)
    return new


def _plain_name(name: str, fpn_shift: int = 0) -> str:
    """The parameter's name in a network without the RPN wrapper, its FPN block index shifted."""
    name = name.replace('rpn.rpn.', 'rpn.')
    match = re.match(r'(backbone\.fpn\.(?:inner|layer)_blocks\.)(\d+)(\..*)', name)
    if match and fpn_shift:
        index = int(match.group(2)) + fpn_shift
        return f'{match.group(1)}{index}{match.group(3)}' if index >= 0 else f'(new) {name}'
    return name
