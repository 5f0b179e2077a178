"""Data set, targets, network, training, checkpoint and bench of the segmentation, at toy sizes;
the segmentation node's parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from samrl_description.objects import OBJECT_CLASSES
from samrl_description.tasks import TASK_NAMES, TASK_OBJECTS
from samrl_perception.segmentation.bench import plot_examples, run_benchmark, steal_fraction
from samrl_perception.segmentation.calibrate import choose_threshold, scene_classes, threshold_objective
from samrl_perception.segmentation.dataset import SceneRenderer, sample_keys, write_dataset
from samrl_perception.segmentation.evaluate import evaluate_segmenter
from samrl_perception.segmentation.model import MaskRCNNConfig, build_mask_rcnn
from samrl_perception.segmentation.segmenter import (
    CheckpointError,
    MaskRCNNSegmenter,
    Segmentation,
    best_per_class,
    load_checkpoint,
    paint,
    save_checkpoint,
    select_detections,
)
from samrl_perception.segmentation.shards import TEST_FIRST_SEED, read_shards
from samrl_perception.segmentation.targets import mask_iou, representable_mask, targets_from_labels
from samrl_perception.segmentation.train import (
    TrainConfig,
    calibrate_checkpoint,
    initial_model,
    learning_rate,
    snapshot_path,
    split,
    train,
)
from samrl_perception.segmentation_node import SegmentationParams

TINY = dict(fpn_channels=16, box_head_dim=32, mask_head_channels=16, mask_head_layers=1)   # a network for tests


@pytest.fixture(scope='module')
def renderer():
    r = SceneRenderer(160, 120)
    yield r
    r.close()


def test_a_sample_depends_only_on_task_and_seed(renderer):
    first = renderer.sample('peg_insertion', 3)
    renderer.sample('peg_insertion', 4)
    again = renderer.sample('peg_insertion', 3)
    assert np.array_equal(first.rgb, again.rgb) and np.array_equal(first.labels, again.labels)
    assert np.array_equal(first.depth_mm, again.depth_mm)
    assert not np.array_equal(first.rgb, renderer.sample('peg_insertion', 4).rgb)


@pytest.mark.parametrize('task', TASK_NAMES)
def test_labels_name_only_the_task_objects(renderer, task):
    seen = set()
    for seed in range(4):
        sample = renderer.sample(task, seed)
        assert sample.rgb.shape == (120, 160, 3) and sample.labels.shape == sample.depth_mm.shape == (120, 160)
        seen |= {OBJECT_CLASSES[c - 1] for c in np.unique(sample.labels) if c > 0}
        on_objects = sample.depth_mm[sample.labels > 0]
        assert np.median(on_objects[on_objects > 0]) > 100 if on_objects.size else True  # mm: 10 cm or more away
    assert seen == set(TASK_OBJECTS[task])


def test_targets_have_one_box_and_mask_per_visible_class():
    labels = np.zeros((20, 30), np.uint8)
    labels[2:5, 3:9] = 1
    labels[10:12, 20:22] = 4
    labels[0, 0] = 6                                        # one pixel: too small to be a target
    target = targets_from_labels(labels)
    assert target['labels'].tolist() == [1, 4]
    assert target['boxes'].tolist() == [[3, 2, 9, 5], [20, 10, 22, 12]]
    assert target['masks'].shape == (2, 20, 30) and int(target['masks'][0].sum()) == 18
    empty = targets_from_labels(np.zeros((4, 4), np.uint8))
    assert empty['boxes'].shape == (0, 4) and empty['masks'].shape == (0, 4, 4)


def test_mask_iou():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 1.0
    a[:2], b[1:3] = True, True
    assert mask_iou(a, b) == pytest.approx(1 / 3)


def test_best_detection_per_class_wins_and_low_scores_are_dropped():
    masks = torch.zeros(3, 1, 4, 4)
    masks[0, 0, :2], masks[1, 0, 2:], masks[2, 0] = 0.9, 0.9, 0.9
    output = {'labels': torch.tensor([2, 2, 5]), 'scores': torch.tensor([0.9, 0.8, 0.3]), 'masks': masks}
    result = best_per_class(output, (4, 4), score_threshold=0.5)
    assert [i.label for i in result.instances] == ['needle']
    assert np.array_equal(result.labels[:2], np.full((2, 4), 2)) and not result.labels[2:].any()
    assert best_per_class(output, (4, 4), score_threshold=0.95).instances == []


def test_overlapping_masks_go_to_the_more_confident_instance():
    # Spatula (5) scores higher as a box, but the pancake (6) mask is surer on the top rows.
    masks = torch.zeros(2, 1, 4, 4)
    masks[0, 0] = 0.7
    masks[1, 0, :2] = 0.95
    output = {'labels': torch.tensor([5, 6]), 'scores': torch.tensor([0.9, 0.8]), 'masks': masks}
    result = best_per_class(output, (4, 4), score_threshold=0.5)
    assert (result.labels[:2] == 6).all() and (result.labels[2:] == 5).all()
    assert [int(i.mask.sum()) for i in result.instances] == [8, 8]


def _detections(labels: list[int], scores: list[float], size: int = 4) -> dict:
    """A network output of full-image masks, one per detection, with the given labels and (sorted) scores."""
    masks = torch.zeros(len(labels), 1, size, size)
    for k in range(len(labels)):
        masks[k, 0, k % size] = 0.9                             # detection k owns row k
    return {'labels': torch.tensor(labels), 'scores': torch.tensor(scores), 'masks': masks}


def test_scene_classes_drop_other_classes_and_keep_low_scored_right_ones():
    # A confident spatula (5) in a needle-threading scene, and the thread (1) and needle (2) below 0.5.
    output = _detections([5, 1, 1, 2], [0.9, 0.3, 0.25, 0.2])
    assert [i.label for i in best_per_class(output, (4, 4), 0.5).instances] == ['spatula']
    assert select_detections(output, 0.1, ('thread', 'needle')) == [(1, 1, pytest.approx(0.3)),
                                                                    (3, 2, pytest.approx(0.2))]
    result = best_per_class(output, (4, 4), 0.1, TASK_OBJECTS['needle_threading'])
    assert [i.label for i in result.instances] == ['thread', 'needle']
    assert result.labels[1].tolist() == [1] * 4 and result.labels[3].tolist() == [2] * 4
    assert not (result.labels == 5).any()
    with pytest.raises(ValueError, match="'ribbon'"):
        select_detections(output, 0.1, ('thread', 'ribbon'))


def test_select_then_paint_is_best_per_class_and_no_classes_means_all():
    output = _detections([2, 6, 2, 5, 3], [0.95, 0.7, 0.6, 0.4, 0.2], size=5)
    for threshold in (0.0, 0.3, 0.65, 0.99):
        selected = select_detections(output, threshold)
        assert selected == select_detections(output, threshold, OBJECT_CLASSES)
        painted = paint(output['masks'][[index for index, _, _ in selected], 0].numpy(), selected, (5, 5))
        expected = best_per_class(output, (5, 5), threshold)
        assert np.array_equal(painted.labels, expected.labels)
        assert [(i.label, i.score) for i in painted.instances] == [(i.label, i.score) for i in expected.instances]
    assert [label for _, label, _ in select_detections(output, 0.3)] == [2, 6, 5]     # best of each class, by score


def test_threshold_objective_counts_misses_and_false_positives():
    truth = np.zeros((4, 4), np.uint8)
    truth[:2] = 1                                               # a thread, 8 pixels
    masks = torch.zeros(2, 1, 4, 4)
    masks[0, 0, :2], masks[1, 0, 2:] = 0.9, 0.9                 # the thread (right) and a needle (absent)
    output = {'labels': torch.tensor([1, 2]), 'scores': torch.tensor([0.3, 0.2]), 'masks': masks}
    assert threshold_objective([output], [truth], 0.1) == pytest.approx(0.5)    # IoU 1 and one false positive
    assert threshold_objective([output], [truth], 0.25) == pytest.approx(1.0)
    assert threshold_objective([output], [truth], 0.5) == pytest.approx(0.0)    # the thread missed


def test_threshold_objective_and_choice_with_the_scene_objects():
    truth = np.zeros((4, 4), np.uint8)
    truth[1] = 1                                                # a thread; the peg (3) cannot be in this scene
    output = _detections([3, 1], [0.6, 0.3])
    assert threshold_objective([output], [truth], 0.2) == pytest.approx(0.5)    # the peg is a false positive
    scene = [TASK_OBJECTS['needle_threading']]
    assert threshold_objective([output], [truth], 0.2, scene) == pytest.approx(1.0)
    assert threshold_objective([output], [truth], 0.4, scene) == pytest.approx(0.0)
    any_class, knowing = choose_threshold([output], [truth], (0.2, 0.4)), choose_threshold([output], [truth],
                                                                                          (0.2, 0.4), scene)
    assert any_class['objective'] == {0.2: 0.5, 0.4: 0.0} and knowing['objective'] == {0.2: 1.0, 0.4: 0.0}
    assert knowing['score_threshold'] == 0.2 and knowing['scene_objects'] and not any_class['scene_objects']
    data = {'tasks': np.array(['peg_insertion', 'spatula_flipping'])}
    assert scene_classes(data, [1, 0]) == [('spatula', 'pancake'), ('peg', 'hole_block')]


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(iterations=100, warmup_iterations=10, learning_rate=1e-3)
    rates = [learning_rate(config, i) for i in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:])) and rates[-1] < 1e-5


def test_validation_takes_the_highest_seeds_and_test_seeds_are_refused():
    data = {'seeds': np.array([5, 0, 3, 9, 1, 2, 4, 8, 7, 6])}
    train_idx, val_idx = split(data, 0.2)
    assert sorted(data['seeds'][val_idx]) == [8, 9] and len(train_idx) == 8
    with pytest.raises(ValueError, match='held-out'):
        split({'seeds': np.array([0, TEST_FIRST_SEED])}, 0.5)


def test_checkpoint_round_trip_is_weights_only_and_checked(tmp_path):
    config = MaskRCNNConfig(fpn_channels=16, box_head_dim=32, mask_head_channels=16, mask_head_layers=1)
    model = build_mask_rcnn(config)
    path = tmp_path / 'm.pt'
    save_checkpoint(path, model, config, {'command': 'test', 'seed': 0})
    payload = load_checkpoint(path)
    assert payload['config'] == config.to_dict() and payload['record']['command'] == 'test'
    segmenter = MaskRCNNSegmenter(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(segmenter.model.state_dict()[name], tensor), name
    payload['classes'] = ['thread']
    torch.save(payload, tmp_path / 'other.pt')
    with pytest.raises(CheckpointError, match='classes'):
        load_checkpoint(tmp_path / 'other.pt')
    with pytest.raises(CheckpointError, match='no checkpoint'):
        load_checkpoint(tmp_path / 'missing.pt')


def _tiny_checkpoint(path, record: dict):
    config = MaskRCNNConfig(**TINY)
    save_checkpoint(path, build_mask_rcnn(config), config, record)
    return path


def test_segmenter_takes_the_threshold_for_its_scene_and_checks_the_objects(tmp_path):
    both = _tiny_checkpoint(tmp_path / 'both.pt', {'score_threshold': 0.6, 'score_threshold_scene_objects': 0.2})
    assert MaskRCNNSegmenter(both).score_threshold == 0.6
    assert MaskRCNNSegmenter(both, objects=['thread', 'needle']).score_threshold == 0.2
    assert MaskRCNNSegmenter(both, score_threshold=0.9, objects=['thread']).score_threshold == 0.9
    plain = _tiny_checkpoint(tmp_path / 'plain.pt', {'score_threshold': 0.6})
    assert MaskRCNNSegmenter(plain, objects=['peg']).score_threshold == 0.6
    assert MaskRCNNSegmenter(_tiny_checkpoint(tmp_path / 'none.pt', {}), objects=['peg']).score_threshold == 0.5
    with pytest.raises(ValueError, match="'ribbon', 'knot'"):
        MaskRCNNSegmenter(both, objects=['thread', 'ribbon', 'knot'])


def test_objects_of_a_call_win_over_the_segmenters(tmp_path):
    segmenter = MaskRCNNSegmenter(_tiny_checkpoint(tmp_path / 'm.pt', {}), score_threshold=0.1,
                                  objects=TASK_OBJECTS['spatula_flipping'])
    segmenter.detect = lambda rgb: _detections([1, 5, 2], [0.8, 0.6, 0.4])
    rgb = np.zeros((4, 4, 3), np.uint8)
    assert [i.label for i in segmenter(rgb).instances] == ['spatula']
    assert [i.label for i in segmenter(rgb, objects=TASK_OBJECTS['needle_threading']).instances] == ['thread',
                                                                                                     'needle']


def test_node_scene_objects_are_checked():
    params = SegmentationParams(target_object='needle', scene_objects='thread, needle')
    assert params.scene_object_names() == ('thread', 'needle') and SegmentationParams().scene_object_names() == ()
    with pytest.raises(ValueError, match="'ribbon'"):
        SegmentationParams(scene_objects='thread,ribbon')
    with pytest.raises(ValueError, match="target_object 'thread' is not among"):
        SegmentationParams(target_object='thread', scene_objects='peg,hole_block')


def test_training_writes_checkpoint_card_and_plot_and_bench_reads_held_out(tmp_path):
    train_dir, test_dir = tmp_path / 'train', tmp_path / 'test'
    write_dataset(train_dir, sample_keys(TASK_NAMES, 6, 0), 160, 120, workers=1, progress=False)
    assert len(read_shards(train_dir)['seeds']) == 6
    checkpoint = tmp_path / 'm.pt'
    config = TrainConfig(iterations=3, batch_size=2, warmup_iterations=1, val_fraction=0.34, threads=1, save_every=2)
    record = train(train_dir, checkpoint, config, 'samrl perception train (test)', progress=False)
    assert record['train_images'] == 4 and record['val_seeds'] == [4, 5] and record['completed_iterations'] == 3
    assert set(record['validation']['per_class']) == set(OBJECT_CLASSES)
    assert record['score_threshold'] in record['calibration']['objective']
    assert record['score_threshold_scene_objects'] in record['calibration_scene_objects']['objective']
    assert record['calibration_scene_objects']['scene_objects'] and not record['calibration']['scene_objects']
    assert set(record['validation_scene_objects']['per_class']) == set(OBJECT_CLASSES)
    snapshot = load_checkpoint(snapshot_path(checkpoint, 2))['record']
    assert snapshot['completed_iterations'] == 2 and not snapshot_path(checkpoint, 3).exists()
    assert MaskRCNNSegmenter(checkpoint).score_threshold == record['score_threshold']
    assert MaskRCNNSegmenter(checkpoint, score_threshold=0.9).score_threshold == 0.9
    scene_threshold = MaskRCNNSegmenter(checkpoint, objects=TASK_OBJECTS['peg_insertion']).score_threshold
    assert scene_threshold == record['score_threshold_scene_objects']
    with pytest.raises(ValueError, match='not the data set'):
        calibrate_checkpoint(checkpoint, test_dir.parent / 'other', {'seeds': np.arange(10, 16)}, progress=False)
    card = json.loads((tmp_path / 'm_card.json').read_text())
    assert card['command'] == 'samrl perception train (test)' and card['train_config']['seed'] == 0
    assert (tmp_path / 'm_losses.png').stat().st_size > 0 and load_checkpoint(checkpoint)['record']['validation']
    resumed = train(train_dir, tmp_path / 'more.pt', TrainConfig(iterations=1, batch_size=2, warmup_iterations=1,
                                                                 val_fraction=0.34, threads=1, seed=1),
                    'samrl perception train --resume (test)', resume=checkpoint, progress=False)
    assert [run['command'] for run in resumed['history']] == ['samrl perception train (test)']
    assert card['history'] == [] and load_checkpoint(tmp_path / 'more.pt')['record']['history']
    # Renders the held-out images first. Without a refiner: the shipped one was calibrated for
    # another detector, and its thresholds would take precedence over this checkpoint's.
    result = run_benchmark(test_dir, checkpoint, 3, refiner=None)
    assert result['images'] == 3 and result['seeds'] == [TEST_FIRST_SEED, TEST_FIRST_SEED + 2]
    assert result['inference_ms_mean'] > 0 and result['scene_objects'] and result['refiner'] is None
    assert result['score_threshold'] == record['score_threshold_scene_objects']
    figure = plot_examples(test_dir, checkpoint, tmp_path / 'examples.png')
    assert figure.stat().st_size > 0
    with pytest.raises(ValueError, match='training seeds'):
        run_benchmark(train_dir, checkpoint, 3)


def test_resolution_ceiling_of_a_box_and_a_thin_diagonal():
    box, diagonal = np.zeros((480, 640), bool), np.zeros((480, 640), bool)
    box[100:300, 200:400] = True
    rows = np.arange(50, 450)
    for offset in range(3):                                     # 3 px wide across a 400 px box
        diagonal[rows, rows + 50 + offset] = True
    assert mask_iou(representable_mask(box, (240, 320), 28), box) > 0.97
    assert mask_iou(representable_mask(diagonal, (240, 320), 28), diagonal) < 0.5
    assert not representable_mask(np.zeros((48, 64), bool), (24, 32), 28).any()


def test_stride2_mask_level_starts_from_a_plain_checkpoint(tmp_path):
    small = dict(fpn_channels=16, box_head_dim=32, mask_head_channels=16, mask_head_layers=1)
    plain = build_mask_rcnn(MaskRCNNConfig(**small))
    path = tmp_path / 'plain.pt'
    save_checkpoint(path, plain, MaskRCNNConfig(**small), {'command': 'plain', 'history': []})
    stride2_config = MaskRCNNConfig(**small, mask_stride2=True)
    model, config, history = initial_model(stride2_config, None, init_from=path)
    assert config.mask_stride2 and history[-1]['command'] == 'plain'
    assert sorted(history[-1]['new_parameters']) == sorted(
        f'backbone.fpn.{block}_blocks.0.0.{kind}' for block in ('inner', 'layer') for kind in ('weight', 'bias'))
    # The plain network's FPN block i is the new network's block i + 1, its RPN the wrapped one.
    new_state, old_state = model.state_dict(), plain.state_dict()
    fpn = 'backbone.fpn.inner_blocks.{}.0.weight'
    assert torch.equal(new_state[fpn.format(2)], old_state[fpn.format(1)])
    assert torch.equal(new_state['rpn.rpn.head.conv.0.0.weight'], old_state['rpn.head.conv.0.0.weight'])
    assert model.roi_heads.mask_roi_pool.featmap_names[0] == 's2' and model.rpn.levels == ['0', '1', '2', 'pool']
    model.eval()
    with torch.no_grad():
        model([torch.rand(3, 120, 160)])
    with pytest.raises(ValueError, match='another shape'):
        initial_model(stride2_config, path, None)
    save_checkpoint(tmp_path / 's2.pt', model, config, {'command': 's2'})
    with pytest.raises(ValueError, match='stride-2'):
        initial_model(MaskRCNNConfig(**small), None, init_from=tmp_path / 's2.pt')
    assert MaskRCNNSegmenter(tmp_path / 's2.pt').config.mask_stride2


def test_cpu_steal_fraction_of_two_readings():
    before = [100, 0, 50, 800, 0, 0, 0, 50, 0, 0]
    after = [200, 0, 100, 900, 0, 0, 0, 100, 0, 0]
    assert steal_fraction(before, after) == pytest.approx(50 / 300)
    assert steal_fraction(None, after) is None and steal_fraction(before, before) == 0.0


def test_evaluation_lists_missed_objects_by_visible_size():
    labels = np.zeros((2, 20, 20), np.uint8)
    labels[:, 2:12, 2:6] = 1                        # a thread of 40 px in both images
    labels[1, 15:17, 15:17] = 2                     # a needle of 4 px in the second only

    class Segmenter:                                # finds the thread of the first image only
        def __call__(self, rgb):
            return Segmentation([], labels[0] if rgb[0, 0, 0] == 0 else np.zeros((20, 20), np.uint8))

    rgb = np.zeros((2, 20, 20, 3), np.uint8)
    rgb[1] = 1
    result = evaluate_segmenter(Segmenter(), {'rgb': rgb, 'labels': labels}, [0, 1], progress=False)
    thread, needle = result['per_class']['thread'], result['per_class']['needle']
    assert thread['mean_iou'] == 0.5 and thread['missed'] == 1 and thread['missed_visible_pixels'] == [40]
    assert needle['missed'] == 1 and needle['missed_visible_pixels'] == [4]
