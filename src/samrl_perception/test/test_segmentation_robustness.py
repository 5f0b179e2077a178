"""segmentation_node and frames it cannot segment: dropped once, counted, logged at a bounded rate.

A frame that failed used to stay the newest one and be retried every PROCESS_PERIOD_S (thousands
of tracebacks a second) until another frame came.
"""

from __future__ import annotations

import numpy as np
import pytest

from samrl_common import msgs
from samrl_common.conversions import camera_info_msg
from samrl_common.images import array_to_image
from samrl_common.runtime import QOS_FRAMES, QOS_SENSOR_DATA
from samrl_description.camera import CameraIntrinsics
from samrl_description.names import OPTICAL_FRAME
from samrl_perception.capture_node import RGBD_TOPIC, stamp_msg
from samrl_perception.rgbd import FrameError
from samrl_perception.segmentation.frames import (
    MAX_FRAME_SIDE_PX,
    MIN_FRAME_SIDE_PX,
    DecodedFrame,
    DropReason,
    check_frame_size,
)
from samrl_perception.segmentation.model import MaskRCNNConfig, build_mask_rcnn
from samrl_perception.segmentation.segmenter import save_checkpoint
from samrl_perception.segmentation_node import MASKS_TOPIC, PROCESS_PERIOD_S, SegmentationNode

SEGMENTATION = 'samrl_perception.segmentation_node'
START_TIMEOUT_S = 60.0
MASKS_TIMEOUT_S = 20.0
GOOD_SIZE = (64, 48)            # width, height
ONE_ROW = (640, 1)              # failed inside torchvision's resize (its height rounds to 0 px)
RETRY_WINDOW_S = 0.5            # the old node retried a bad frame ~100 times in this long
MAX_LINES_PER_BAD_FRAME = 3


def _intrinsics(width: int, height: int) -> CameraIntrinsics:
    """The D435's focal length at any crop (a 1-row strip of a 640x480 image has a sane field of view)."""
    full = CameraIntrinsics.d435()
    return CameraIntrinsics(full.fx, full.fy, 0.5 * width, 0.5 * height, width, height)


def _frame(stamp_ns: int, size: tuple[int, int]):
    """samrl_interfaces/RGBDFrame as capture_node publishes it, random colours at 0.4 m."""
    width, height = size
    stamp = stamp_msg(stamp_ns)
    rgb = np.random.default_rng(stamp_ns).integers(0, 255, (height, width, 3), dtype=np.uint8)
    message = msgs.samrl_interfaces.msg.RGBDFrame(
        rgb=array_to_image(rgb, 'rgb8', stamp, OPTICAL_FRAME),
        depth=array_to_image(np.full((height, width), 0.4, np.float32), '32FC1', stamp, OPTICAL_FRAME),
        camera_info=camera_info_msg(_intrinsics(width, height), stamp, OPTICAL_FRAME), world_frame='world')
    message.camera_pose.orientation.w = 1.0
    message.header.stamp, message.header.frame_id = stamp, OPTICAL_FRAME
    return message


def _decoded(width: int, height: int) -> DecodedFrame:
    return DecodedFrame(1, np.zeros((height, width, 3), np.uint8), np.full((height, width), 0.4, np.float32),
                        CameraIntrinsics.d435(width, height))


@pytest.mark.parametrize('size', [(MIN_FRAME_SIDE_PX, MIN_FRAME_SIDE_PX), (MAX_FRAME_SIDE_PX, MIN_FRAME_SIDE_PX),
                                  (640, 480), (1920, 1080)])
def test_frame_sizes_the_network_takes(size):
    check_frame_size(_decoded(*size))


@pytest.mark.parametrize('size', [ONE_ROW, (1, 480), (MIN_FRAME_SIDE_PX - 1, 480), (MAX_FRAME_SIDE_PX + 1, 480)])
def test_frame_sizes_refused_before_the_network(size):
    with pytest.raises(FrameError, match=f'{size[0]}x{size[1]} px') as info:
        check_frame_size(_decoded(*size))
    assert info.value.reason == DropReason.FRAME_SIZE


def _failing_segmenter(_rgb):
    raise RuntimeError('boom inside the network')


def test_a_frame_that_fails_for_any_reason_is_dropped_once_and_counted(graph, capsys):
    _start, _node = graph           # isolates DDS for the in-process node
    node = SegmentationNode(argv=['--ros-args', '-p', 'source:=oracle'])
    try:
        node.segmenter = _failing_segmenter     # as the network would fail on some frame
        node.on_frame(_frame(1, GOOD_SIZE))
        for _ in range(round(RETRY_WINDOW_S / PROCESS_PERIOD_S)):
            node.process_newest()
        assert node.newest is None and node.drops.counts == {DropReason.FAILED: 1}
    finally:
        node.destroy()
    log = capsys.readouterr().err
    assert log.count('boom inside the network') == 1 and 'Traceback' not in log, log
    assert 'failed 1' in log                    # the summary at the end


@pytest.mark.processes
def test_a_one_pixel_high_frame_is_dropped_once_and_the_next_one_segmented(graph, tmp_path):
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
    publisher.publish(_frame(1, ONE_ROW))
    node.spin_until(lambda: False, RETRY_WINDOW_S)      # time for the old node to retry it ~100 times
    publisher.publish(_frame(2, GOOD_SIZE))
    assert node.spin_until(lambda: any(m.header.stamp.nanosec == 2 for m in received), MASKS_TIMEOUT_S), \
        segmentation.output()[-2000:]
    node.spin_until(lambda: False, RETRY_WINDOW_S)
    assert segmentation.alive()
    assert [m.header.stamp.nanosec for m in received] == [2]
    output = segmentation.output()
    about_it = [line for line in output.splitlines() if 'frame_size' in line or 'Traceback' in line]
    assert 1 <= len(about_it) <= MAX_LINES_PER_BAD_FRAME, output[-3000:]
    assert f'{ONE_ROW[0]}x{ONE_ROW[1]} px' in about_it[0]
    # The shipped refiner was calibrated with the shipped detector, not this one: said, not fatal.
    assert 'calibrated with another detector' in output
    segmentation.stop()
    assert 'frame_size 1' in segmentation.output()      # counted, in the summary at shutdown
