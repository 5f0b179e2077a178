"""The full-resolution mask refiner: crop geometry, identity at start, checkpoints, training at toy size,
its use by the segmenter and the node's parameter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from samrl_description.tasks import TASK_NAMES
from samrl_perception.segmentation.dataset import sample_keys, write_dataset
from samrl_perception.segmentation.model import MaskRCNNConfig, build_mask_rcnn
from samrl_perception.segmentation.refine import (
    DEFAULT_REFINER,
    MaskRefiner,
    RefinerConfig,
    RefinerError,
    crop_inputs,
    crop_targets,
    crop_windows,
    image_tensor,
    load_refiner,
    paste_logits,
    refine_masks,
    representable_by_refiner,
    save_refiner,
)
from samrl_perception.segmentation.segmenter import (
    MaskRCNNSegmenter,
    calibrated_threshold,
    save_checkpoint,
    weights_fingerprint,
)
from samrl_perception.segmentation.targets import mask_iou
from samrl_perception.segmentation.train import TrainConfig, train
from samrl_perception.segmentation.train_refiner import (
    RefinerTrainConfig,
    crop_iou,
    degraded_crop,
    refiner_loss,
    train_refiner,
)
from samrl_perception.segmentation_node import SegmentationParams

SMALL = RefinerConfig(crop_px=32, channels=(4, 8))
SHAPE = (120, 160)


def _rectangle(y0=40, y1=70, x0=50, x1=110) -> torch.Tensor:
    mask = torch.zeros(SHAPE)
    mask[y0:y1, x0:x1] = 1.0
    return mask


def test_windows_hold_the_box_with_context_and_stay_inside_the_image():
    boxes = torch.tensor([[50.0, 40.0, 110.0, 70.0], [0.0, 0.0, 3.0, 2.0], [150.0, 100.0, 160.0, 120.0]])
    windows = crop_windows(boxes, SHAPE)
    assert torch.all(windows[:, :2] <= boxes[:, :2]) and torch.all(windows[:, 2:] >= boxes[:, 2:])
    assert torch.all(windows[:, :2] >= 0)
    assert torch.all(windows[:, 2] <= SHAPE[1]) and torch.all(windows[:, 3] <= SHAPE[0])
    assert torch.all(windows[:, 2:] > windows[:, :2])
    assert windows[0, 0] < 50 - 4 and windows[0, 2] > 110 + 4           # context beyond the margin


def test_crops_average_the_window_and_paste_puts_it_back():
    mask = _rectangle()[None]
    windows = crop_windows(torch.tensor([[50.0, 40.0, 110.0, 70.0]]), SHAPE)
    target = crop_targets(mask, windows, 32)
    x0, y0, x1, y1 = windows[0].long().tolist()
    assert target.shape == (1, 1, 32, 32)
    assert float(target.mean()) == pytest.approx(float(mask[0, y0:y1, x0:x1].mean()), abs=0.02)
    pasted = paste_logits(torch.full((1, 1, 32, 32), 10.0), windows, SHAPE)
    assert torch.all(pasted[0, y0:y1, x0:x1] > 0.99)
    assert pasted[0].sum() == pytest.approx((y1 - y0) * (x1 - x0), rel=1e-3)
    inputs = crop_inputs(image_tensor(np.zeros((*SHAPE, 3), np.uint8)), mask, windows, 32)
    assert inputs.shape == (1, 4, 32, 32) and torch.allclose(inputs[:, 3:], target)


def test_an_untrained_refiner_returns_the_coarse_mask():
    coarse = _rectangle()[None] * 0.9
    rgb = np.random.default_rng(0).integers(0, 255, (*SHAPE, 3), dtype=np.uint8)
    refined = refine_masks(MaskRefiner(SMALL).eval(), rgb, coarse, torch.tensor([[50.0, 40.0, 110.0, 70.0]]))
    changed = ((refined >= 0.5) != (coarse >= 0.5)).sum()
    assert changed <= 0.02 * (coarse >= 0.5).sum()         # resampling may move an edge pixel, nothing more


def test_no_boxes_no_change():
    coarse = torch.zeros((0, *SHAPE))
    rgb = np.zeros((*SHAPE, 3), np.uint8)
    assert refine_masks(MaskRefiner(SMALL).eval(), rgb, coarse, torch.zeros((0, 4))) is coarse


def test_checkpoint_round_trip_is_weights_only_and_checked(tmp_path):
    refiner = MaskRefiner(SMALL)
    torch.nn.init.normal_(refiner.head.weight)
    save_refiner(tmp_path / 'r.pt', refiner, {'command': 'test'})
    loaded, record = load_refiner(tmp_path / 'r.pt')
    assert record == {'command': 'test'} and loaded.config == SMALL and not loaded.training
    assert torch.equal(loaded.head.weight, refiner.head.weight)
    torch.save({'format': 1, 'kind': 'something else'}, tmp_path / 'other.pt')
    with pytest.raises(RefinerError, match='not a mask refiner'):
        load_refiner(tmp_path / 'other.pt')
    with pytest.raises(RefinerError, match='train-refiner'):
        load_refiner(tmp_path / 'missing.pt')


def test_degraded_crops_are_coarse_versions_of_the_truth_and_seeded():
    truth = _rectangle() > 0
    rgb = np.zeros((*SHAPE, 3), np.uint8)
    first = degraded_crop(rgb, truth, 32, np.random.default_rng(3))
    again = degraded_crop(rgb, truth, 32, np.random.default_rng(3))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    inputs, target = first
    assert inputs[:, 3].min() >= 0 and inputs[:, 3].max() <= 1
    assert float(crop_iou(inputs[:, 3:], target)) > 0.5          # coarse, not unrelated


def test_loss_prefers_the_true_mask():
    target = (torch.rand(2, 1, 16, 16) > 0.5).float()
    right, wrong = 8 * (2 * target - 1), -8 * (2 * target - 1)
    assert refiner_loss(right, target, 1.0) < 0.01 < refiner_loss(wrong, target, 1.0)
    assert torch.all(crop_iou(torch.sigmoid(right), target) == 1)


def test_training_writes_refiner_card_and_plot(tmp_path):
    data = tmp_path / 'train'
    write_dataset(data, sample_keys(TASK_NAMES, 6, 0), 160, 120, workers=1, progress=False)
    detector = tmp_path / 'm.pt'
    train(data, detector, TrainConfig(iterations=2, batch_size=2, warmup_iterations=1, val_fraction=0.34, threads=1),
          'detector (test)', progress=False)
    out = tmp_path / 'refiner.pt'
    record = train_refiner(data, detector, out, RefinerTrainConfig(iterations=3, batch_size=4, warmup_iterations=1,
                                                                    threads=1), SMALL, 'refiner (test)', progress=False)
    assert record['command'] == 'refiner (test)' and record['detector'] == str(detector)
    assert record['validation_curve'][-1]['iteration'] == 3
    card = json.loads((tmp_path / 'refiner_card.json').read_text())
    assert card['train_config']['seed'] == 0 and (tmp_path / 'refiner_losses.png').stat().st_size > 0
    assert load_refiner(out)[0].config == SMALL
    # Thresholds calibrated for the refined masks live in the refiner's card, and win with it.
    assert record['score_threshold_scene_objects'] in record['calibration_scene_objects']['objective']
    assert card['validation_scene_objects']['images'] == 2
    torch_record = torch.load(out, weights_only=True)['record']
    assert torch_record['score_threshold'] == record['score_threshold']
    refined = MaskRCNNSegmenter(detector, objects=['thread'], refiner=out)
    assert refined.score_threshold == record['score_threshold_scene_objects']
    with pytest.raises(ValueError, match='not the data set'):
        train_refiner(_other_data(tmp_path), detector, out, RefinerTrainConfig(iterations=1), SMALL, progress=False)


def _other_data(tmp_path):
    other = tmp_path / 'other'
    write_dataset(other, sample_keys(TASK_NAMES, 6, 100), 160, 120, workers=1, progress=False)
    return other


def _one_detection() -> dict:
    return {'boxes': torch.tensor([[50.0, 40.0, 110.0, 70.0]]), 'labels': torch.tensor([1]),
            'scores': torch.tensor([0.9]), 'masks': (_rectangle() * 0.9)[None, None]}


def test_segmenter_redraws_kept_masks_with_its_refiner(tmp_path):
    detector = tmp_path / 'm.pt'
    config = MaskRCNNConfig(fpn_channels=16, box_head_dim=32, mask_head_channels=16, mask_head_layers=1)
    save_checkpoint(detector, build_mask_rcnn(config), config, {})
    identity, erase = MaskRefiner(SMALL), MaskRefiner(SMALL)
    torch.nn.init.constant_(erase.head.bias, -20.0)          # a refiner that says "background" everywhere
    save_refiner(tmp_path / 'identity.pt', identity, {})
    save_refiner(tmp_path / 'erase.pt', erase, {})
    rgb = np.zeros((*SHAPE, 3), np.uint8)
    masks = {}
    for name in ('identity', 'erase', None):
        segmenter = MaskRCNNSegmenter(detector, refiner=tmp_path / f'{name}.pt' if name else None)
        segmenter.detect = lambda image: _one_detection()
        masks[name] = segmenter(rgb).mask('thread')
    assert masks[None].sum() == 30 * 60 and not masks['erase'].any()
    assert (masks['identity'] != masks[None]).sum() <= 0.02 * masks[None].sum()


def test_a_threshold_calibrated_for_the_refiner_comes_first():
    detector = {'score_threshold': 0.6, 'score_threshold_scene_objects': 0.3}
    assert calibrated_threshold(detector, True, {'score_threshold_scene_objects': 0.1}) == 0.1
    assert calibrated_threshold(detector, False, {'score_threshold': 0.2}) == 0.2
    assert calibrated_threshold(detector, True, {}) == 0.3 and calibrated_threshold(detector, False, None) == 0.6


def test_refiner_thresholds_count_only_for_the_detector_they_were_calibrated_with(tmp_path):
    config = MaskRCNNConfig(fpn_channels=16, box_head_dim=32, mask_head_channels=16, mask_head_layers=1)
    torch.manual_seed(0)
    detector, other = build_mask_rcnn(config), build_mask_rcnn(config)
    save_checkpoint(tmp_path / 'm.pt', detector, config, {'score_threshold': 0.6})
    record = {'score_threshold': 0.1, 'detector_fingerprint': weights_fingerprint(detector.state_dict())}
    save_refiner(tmp_path / 'r.pt', MaskRefiner(SMALL), record)
    assert MaskRCNNSegmenter(tmp_path / 'm.pt', refiner=tmp_path / 'r.pt').score_threshold == 0.1
    record['detector_fingerprint'] = weights_fingerprint(other.state_dict())
    save_refiner(tmp_path / 'r.pt', MaskRefiner(SMALL), record)
    assert MaskRCNNSegmenter(tmp_path / 'm.pt', refiner=tmp_path / 'r.pt').score_threshold == 0.6


def test_node_refiner_parameter():
    assert SegmentationParams().refiner_path() == DEFAULT_REFINER
    assert SegmentationParams(refiner='none').refiner_path() is None
    with pytest.raises(ValueError, match="refiner '/nowhere.pt' does not exist"):
        SegmentationParams(refiner='/nowhere.pt')


def test_refiner_resolution_ceiling_of_a_box_and_a_thin_diagonal():
    box = np.zeros((480, 640), bool)
    box[100:200, 150:400] = True
    assert mask_iou(representable_by_refiner(box, 112), box) > 0.97
    line = np.zeros((480, 640), bool)
    for x in range(100, 500):                   # a 4 px wide diagonal, like the thread
        line[x // 2 + 50:x // 2 + 54, x] = True
    assert 0.8 < mask_iou(representable_by_refiner(line, 112), line) < 1.0
    assert not representable_by_refiner(np.zeros((48, 64), bool), 112).any()
