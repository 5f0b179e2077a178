"""segmentation_node as a process: live masks behind the sim bridge and capture node, and bad frames."""

from __future__ import annotations

import numpy as np
import pytest

from samrl_common import msgs
from samrl_common.conversions import camera_info_msg
from samrl_common.images import array_to_image, image_to_array
from samrl_common.runtime import QOS_FRAMES, QOS_SENSOR_DATA
from samrl_description.camera import CameraIntrinsics
from samrl_description.names import GROUND_TRUTH_LABELS_TOPIC, OPTICAL_FRAME
from samrl_description.objects import OBJECT_CLASSES
from samrl_description.tasks import TASK_OBJECTS
from samrl_perception.capture_node import RGBD_TOPIC, stamp_msg
from samrl_perception.pointcloud import points_from_pointcloud2
from samrl_perception.segmentation.model import MaskRCNNConfig, build_mask_rcnn
from samrl_perception.segmentation.segmenter import DEFAULT_CHECKPOINT, save_checkpoint
from samrl_perception.segmentation.targets import MIN_INSTANCE_PIXELS, mask_iou
from samrl_perception.segmentation_node import MASKS_TOPIC, TARGET_POINTS_TOPIC

pytestmark = pytest.mark.processes
BRIDGE, CAPTURE, SEGMENTATION = 'samrl_sim.bridge_node', 'samrl_perception.capture_node', \
    'samrl_perception.segmentation_node'
ORACLE = 'samrl_sim.oracle_node'
START_TIMEOUT_S = 60.0
LIVE_FRAMES = 20
# The target: mean IoU >= 0.9 per object on the live stream. The shipped Mask R-CNN with
# its mask refiner measured thread 0.94-0.99 and needle 0.99 here (three runs).
LIVE_IOU_FLOOR = {'thread': 0.9, 'needle': 0.9}


class MaskRecorder:
    """Masks and ground-truth label images of the same stamps."""

    def __init__(self, node):
        self.masks, self.truth, self.clouds = {}, {}, []
        node.create_subscription('samrl_interfaces/msg/ObjectMasks', MASKS_TOPIC, self._on_masks, QOS_SENSOR_DATA)
        node.create_subscription('sensor_msgs/msg/Image', GROUND_TRUTH_LABELS_TOPIC, self._on_truth, QOS_SENSOR_DATA)
        node.create_subscription('sensor_msgs/msg/PointCloud2', TARGET_POINTS_TOPIC, self.clouds.append,
                                 QOS_SENSOR_DATA)

    def _on_masks(self, message):
        self.masks[(message.header.stamp.sec, message.header.stamp.nanosec)] = message

    def _on_truth(self, message):
        self.truth[(message.header.stamp.sec, message.header.stamp.nanosec)] = image_to_array(message)

    def pairs(self) -> list[tuple[object, np.ndarray]]:
        return [(self.masks[s], self.truth[s]) for s in sorted(self.masks) if s in self.truth]


def _start_live_graph(start, source: str, size: tuple[int, int], rate_hz: float, controller: bool = False):
    start(BRIDGE, 'task:=needle_threading', f'camera_rate_hz:={rate_hz}', f'image_width:={size[0]}',
          f'image_height:={size[1]}')
    if controller:                              # episodes run and restart: the scene changes
        start(ORACLE, 'task:=needle_threading')
    start(CAPTURE)
    scene = ','.join(TASK_OBJECTS['needle_threading'])       # as the task graphs configure it
    return start(SEGMENTATION, f'source:={source}', 'target_object:=thread', f'scene_objects:={scene}')


def test_oracle_masks_are_the_simulator_labels_and_say_so(graph):
    start, node = graph
    _start_live_graph(start, 'oracle', (320, 240), 5.0)
    recorder = MaskRecorder(node)
    assert node.spin_until(lambda: len(recorder.pairs()) >= 5 and recorder.clouds, START_TIMEOUT_S)
    for masks, truth in recorder.pairs():
        assert masks.source == 'oracle'
        assert np.array_equal(image_to_array(masks.label_image), truth)
        assert set(masks.labels) <= {'thread', 'needle'} and len(masks.masks) == len(masks.labels)
    points, _ = points_from_pointcloud2(recorder.clouds[-1])
    assert len(points) > 0 and np.all((points[:, 2] > 0.05) & (points[:, 2] < 2.0))   # metres in front
    assert recorder.clouds[-1].header.frame_id == OPTICAL_FRAME


def test_mask_rcnn_matches_the_ground_truth_on_the_live_stream(graph):
    """The shipped checkpoint, 640x480 frames from the bridge, IoU per object against the labels."""
    start, node = graph
    segmentation = _start_live_graph(start, 'mask_rcnn', (640, 480), 2.0, controller=True)
    recorder = MaskRecorder(node)
    assert node.spin_until(lambda: len(recorder.pairs()) >= LIVE_FRAMES, START_TIMEOUT_S + 30), \
        segmentation.output()[-2000:]
    ious = {name: [] for name in OBJECT_CLASSES}
    for masks, truth in recorder.pairs():
        predicted = image_to_array(masks.label_image)
        assert masks.source == 'mask_rcnn'
        for c, name in enumerate(OBJECT_CLASSES, start=1):
            if np.count_nonzero(truth == c) >= MIN_INSTANCE_PIXELS:
                ious[name].append(mask_iou(predicted == c, truth == c))
    means = {name: float(np.mean(values)) for name, values in ious.items() if values}
    print('live IoU per object:', means)
    assert set(means) == set(LIVE_IOU_FLOOR)
    for name, mean in means.items():
        assert mean >= LIVE_IOU_FLOOR[name], (name, mean)


def _frame(stamp_ns: int, size=(64, 48), depth=None, info_size=None):
    width, height = size
    rng = np.random.default_rng(stamp_ns)
    stamp = stamp_msg(stamp_ns)
    rgb = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    depth = np.full((height, width), 0.4, np.float32) if depth is None else depth
    k = CameraIntrinsics.d435(*(info_size or size))
    message = msgs.samrl_interfaces.msg.RGBDFrame(
        rgb=array_to_image(rgb, 'rgb8', stamp, OPTICAL_FRAME),
        depth=array_to_image(depth, '32FC1', stamp, OPTICAL_FRAME),
        camera_info=camera_info_msg(k, stamp, OPTICAL_FRAME), world_frame='world')
    message.camera_pose.orientation.w = 1.0
    message.header.stamp, message.header.frame_id = stamp, OPTICAL_FRAME
    return message


def test_bad_frames_are_dropped_with_reasons_and_good_ones_still_segmented(graph, tmp_path):
    start, node = graph
    checkpoint = tmp_path / 'random.pt'          # an untrained network: this test is about robustness
    config = MaskRCNNConfig(fpn_channels=16, box_head_dim=32, mask_head_channels=16, mask_head_layers=1)
    save_checkpoint(checkpoint, build_mask_rcnn(config), config, {'command': 'test'})
    segmentation = start(SEGMENTATION, f'checkpoint:={checkpoint}', 'score_threshold:=0.0')
    publisher = node.create_publisher('samrl_interfaces/msg/RGBDFrame', RGBD_TOPIC, QOS_FRAMES)
    received = []
    node.create_subscription('samrl_interfaces/msg/ObjectMasks', MASKS_TOPIC, received.append, QOS_SENSOR_DATA)
    assert segmentation.wait_for_output('segmenting', START_TIMEOUT_S), segmentation.output()
    assert node.spin_until(lambda: publisher.get_subscription_count() > 0, 10.0)
    unknown = _frame(1)
    unknown.rgb.encoding = 'yuv422'
    bad = [unknown, _frame(2, depth=np.zeros((48, 64), np.float32)),
           _frame(3, depth=np.full((24, 32), 0.4, np.float32)), _frame(4, info_size=(32, 24)),
           _frame(0)]
    misaligned, truncated = _frame(5), _frame(6)
    misaligned.rgb.header.frame_id = 'somewhere_else'         # depth not aligned to this colour image
    truncated.rgb.data = truncated.rgb.data[:100]
    bad += [misaligned, truncated]
    stamp = 10
    for message in bad:
        publisher.publish(message)
        node.spin_until(lambda: False, 0.3)     # let the node look at it before the good frame replaces it
        stamp += 1
        publisher.publish(_frame(stamp))
        assert node.spin_until(lambda: received and received[-1].header.stamp.nanosec == stamp, 20.0), \
            segmentation.output()[-2000:]
    assert segmentation.alive()
    output = segmentation.output()
    for reason in ('encoding', 'no_depth', 'size', 'camera_info', 'stamp', 'frame_id', 'data'):
        assert f'({reason},' in output, (reason, output[-3000:])
    assert len({m.header.stamp.nanosec for m in received}) == len(bad)     # only the good frames


def test_shipped_checkpoint_is_small_and_has_its_card():
    import json
    assert DEFAULT_CHECKPOINT.stat().st_size < 50e6
    card = json.loads(DEFAULT_CHECKPOINT.with_name(DEFAULT_CHECKPOINT.stem + '_card.json').read_text())
    assert card['command'].startswith('samrl perception train') and 'seed' in card['train_config']
    assert card['validation']['images'] > 0
