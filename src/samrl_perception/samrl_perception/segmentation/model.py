"""A Mask R-CNN small enough to train from scratch and run on two CPU cores.

The paper segments its images with Mask R-CNN (Sec. III-B.2). torchvision's ResNet-50 FPN model
needs ImageNet weights we cannot download and runs at about 1.5 s per 640x480 frame here, so the
network is assembled from torchvision's own parts, scaled down:

* backbone: ResNet-18 (random init, trainable BatchNorm) with an FPN of 64 channels on its
  stride-4/8/16 stages plus the max-pool level;
* input resized so the short side is 240 px (640x480 -> 320x240): the task objects are large
  enough at that scale except the thread, whose width drops to 1-2 px (the IoU limit, see README);
* anchors from 8 to 256 px with aspect ratios 1:5 to 5:1 (the needle and thread are long and thin);
* light heads: a 256-d box head, four 64-channel mask convolutions, 50 proposals at test time.

Everything the network needs to be rebuilt is in MaskRCNNConfig, which the checkpoint stores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn
from torchvision.models import resnet18
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from samrl_sim.objects import OBJECT_CLASSES

BACKBONE_STAGES = {'layer1': '0', 'layer2': '1', 'layer3': '2'}   # strides 4, 8, 16
BACKBONE_CHANNELS = [64, 128, 256]                                  # ResNet-18 channels of those stages
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

    def to_dict(self) -> dict:
        return asdict(self)


def build_mask_rcnn(config: MaskRCNNConfig = MaskRCNNConfig()) -> MaskRCNN:
    """A randomly initialised Mask R-CNN of this shape (no downloaded weights anywhere)."""
    body = resnet18(weights=None, norm_layer=nn.BatchNorm2d)
    backbone = BackboneWithFPN(body, BACKBONE_STAGES, BACKBONE_CHANNELS, config.fpn_channels)
    levels = list(BACKBONE_STAGES.values())
    anchors = AnchorGenerator(ANCHOR_SIZES_PX, (ANCHOR_ASPECT_RATIOS,) * len(ANCHOR_SIZES_PX))
    mask_channels = (config.mask_head_channels,) * config.mask_head_layers
    return MaskRCNN(
        backbone, num_classes=None, min_size=config.min_size_px, max_size=config.max_size_px,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=config.rpn_pre_nms_train, rpn_post_nms_top_n_train=config.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=config.rpn_pre_nms_test, rpn_post_nms_top_n_test=config.rpn_post_nms_test,
        box_roi_pool=MultiScaleRoIAlign(levels, BOX_POOL_PX, POOL_SAMPLING),
        box_head=TwoMLPHead(config.fpn_channels * BOX_POOL_PX ** 2, config.box_head_dim),
        box_predictor=FastRCNNPredictor(config.box_head_dim, config.num_classes),
        box_batch_size_per_image=config.box_batch_per_image, box_detections_per_img=config.detections_per_image,
        mask_roi_pool=MultiScaleRoIAlign(levels, MASK_POOL_PX, POOL_SAMPLING),
        mask_head=MaskRCNNHeads(config.fpn_channels, mask_channels, 1),
        mask_predictor=MaskRCNNPredictor(config.mask_head_channels, config.mask_head_channels, config.num_classes))
