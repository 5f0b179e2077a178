"""segmentation_node: instance masks of the task objects in each synchronized RGB-D frame.

Subscribes /samrl/perception/rgbd (samrl_interfaces/RGBDFrame from capture_node) and segments the
newest frame with the project's own Mask R-CNN (source:=mask_rcnn, the paper's choice, Sec.
III-B.2). Frames arriving while one is being segmented replace each other: the node always works
on the newest frame and never builds a backlog. scene_objects (set by the task graphs) names the
classes that can be in the scene: others are never reported, and the network takes the score
threshold calibrated with that restriction.

source:=oracle is for ablations only: it takes the masks from the simulator's privileged label
image (/samrl/sim/ground_truth/labels of the sim bridge, matched by stamp) instead of a network,
and says so in every message (ObjectMasks.source = 'oracle').

Publishes (sensor-data QoS):
  /samrl/perception/masks          samrl_interfaces/ObjectMasks: one mono8 mask per detected
                                   object, the scores and a class label image
  /samrl/perception/target_points  sensor_msgs/PointCloud2: the target object's points (optical
                                   frame, x y z rgb), for Real2Sim and RViz
  /samrl/perception/overlay        sensor_msgs/Image rgb8: the frame with each object's mask
                                   tinted in its class colour, for RViz; only while someone looks
Frames it cannot use (undecodable, outside the sizes the network takes, or failing in any other way
while processed) are dropped, never retried, and counted per reason with a rate-limited warning;
the node keeps running. An unusable checkpoint or refiner stops start-up with exit code 2 and a
message naming the file and the problem, like any other bad parameter.
What is done to a frame lives in the ROS-free samrl_perception.segmentation.frames; this node
only wires it to topics and timers.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from samrl_common.images import array_to_image
from samrl_common.runtime import QOS_FRAMES, QOS_SENSOR_DATA, Node, run_node
from samrl_common.stage_times import StageTimes
from samrl_description.names import GROUND_TRUTH_LABELS_TOPIC
from samrl_description.objects import OBJECT_CLASSES
from samrl_perception.capture_node import RGBD_TOPIC
from samrl_perception.pointcloud import pointcloud2_msg, points_from_depth
from samrl_perception.rgbd import DropLog, FrameError
from samrl_perception.segmentation.frames import (
    DecodedFrame,
    OracleLabels,
    check_frame_size,
    decode_frame,
    masks_msg,
    overlay,
    processing_error,
)
from samrl_perception.segmentation.refine import RefinerError
from samrl_perception.segmentation.segmenter import DEFAULT_CHECKPOINT, CheckpointError, Segmentation

MASKS_TOPIC = '/samrl/perception/masks'
TARGET_POINTS_TOPIC = '/samrl/perception/target_points'
OVERLAY_TOPIC = '/samrl/perception/overlay'
SOURCES = ('mask_rcnn', 'oracle')
PROCESS_PERIOD_S = 0.005        # how often the newest waiting frame is looked at
DROP_LOG_PERIOD_S = 2.0
CALIBRATED = -1.0               # score_threshold value: take the checkpoint's calibrated threshold
NO_REFINER = 'none'             # refiner value: Mask R-CNN's masks as they are


@dataclass(frozen=True)
class SegmentationParams:
    source: str = field(default='mask_rcnn', metadata={
        'description': 'mask_rcnn (the trained network) or oracle (the simulator\'s ground truth; ablations only)'})
    checkpoint: str = field(default='', metadata={'description': 'Mask R-CNN checkpoint ("": the shipped one)'})
    refiner: str = field(default='', metadata={
        'description': 'full-resolution mask refiner checkpoint ("": the shipped one; none: Mask R-CNN\'s own masks)'})
    score_threshold: float = field(default=CALIBRATED, metadata={
        'description': 'lowest detection score kept, 0..1; -1: the one calibrated on validation images '
                       'and stored in the checkpoint'})
    target_object: str = field(default='thread', metadata={
        'description': 'object whose points go to target_points: ' + ', '.join(OBJECT_CLASSES)})
    scene_objects: str = field(default='', metadata={
        'description': 'comma-separated classes that can be in the scene (e.g. thread,needle); "": any of '
                       + ', '.join(OBJECT_CLASSES)})
    frame_topic: str = field(default=RGBD_TOPIC, metadata={'description': 'synchronized RGB-D frames'})
    oracle_labels_topic: str = field(default=GROUND_TRUTH_LABELS_TOPIC, metadata={
        'description': 'privileged label images (source:=oracle only)'})
    threads: int = field(default=2, metadata={'description': 'torch CPU threads for Mask R-CNN'})

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f'source must be one of {", ".join(SOURCES)}, got {self.source!r}')
        if not (0.0 <= self.score_threshold <= 1.0 or self.score_threshold == CALIBRATED):
            raise ValueError(f'score_threshold must be in [0, 1] or -1 (calibrated), got {self.score_threshold}')
        if self.target_object not in OBJECT_CLASSES:
            raise ValueError(f'target_object must be one of {", ".join(OBJECT_CLASSES)}, got {self.target_object!r}')
        unknown = [name for name in self.scene_object_names() if name not in OBJECT_CLASSES]
        if unknown:
            raise ValueError(f'scene_objects: unknown {", ".join(map(repr, unknown))}; '
                             f'expected some of {", ".join(OBJECT_CLASSES)}')
        if self.scene_objects and self.target_object not in self.scene_object_names():
            raise ValueError(f'target_object {self.target_object!r} is not among scene_objects {self.scene_objects!r}')
        if self.threads < 1:
            raise ValueError(f'threads must be >= 1, got {self.threads}')
        if self.checkpoint:
            _check_file('checkpoint', self.checkpoint)
        if self.refiner not in ('', NO_REFINER):
            _check_file('refiner', self.refiner, ' (none: no refinement)')

    def refiner_path(self) -> Path | None:
        """The refiner checkpoint to use; None for none."""
        from samrl_perception.segmentation.refine import DEFAULT_REFINER

        return None if self.refiner == NO_REFINER else Path(self.refiner) if self.refiner else DEFAULT_REFINER

    def scene_object_names(self) -> tuple[str, ...]:
        """The classes named by scene_objects; empty for any class."""
        return tuple(name.strip() for name in self.scene_objects.split(',') if name.strip())


def _check_file(name: str, value: str, hint: str = '') -> None:
    """ValueError unless the parameter names an existing file: caught before torch is even asked."""
    path = Path(value)
    if path.is_dir():
        raise ValueError(f'{name} {value!r} is a directory, not a checkpoint file{hint}')
    if not path.exists():
        raise ValueError(f'{name} {value!r} does not exist{hint}')


class SegmentationNode(Node):
    def __init__(self, argv=None):
        super().__init__('segmentation_node', params=SegmentationParams, argv=argv)
        p = self.params
        self.segmenter = self._make_segmenter() if p.source == 'mask_rcnn' else None
        self.newest = None                          # (arrival time, RGBDFrame message) not yet segmented
        self.oracle_labels = OracleLabels()
        self.segmented, self.drops = 0, DropLog(self.logger, DROP_LOG_PERIOD_S)
        self.times = StageTimes('frame')
        self.masks_pub = self.create_publisher('samrl_interfaces/msg/ObjectMasks', MASKS_TOPIC, QOS_SENSOR_DATA)
        self.points_pub = self.create_publisher('sensor_msgs/msg/PointCloud2', TARGET_POINTS_TOPIC, QOS_SENSOR_DATA)
        self.overlay_pub = self.create_publisher('sensor_msgs/msg/Image', OVERLAY_TOPIC, QOS_SENSOR_DATA)
        self.frames = self.create_subscription('samrl_interfaces/msg/RGBDFrame', p.frame_topic, self.on_frame,
                                               QOS_FRAMES)
        if p.source == 'oracle':
            self.create_subscription('sensor_msgs/msg/Image', p.oracle_labels_topic, self.on_labels, QOS_SENSOR_DATA)
            self.logger.warn('ORACLE masks: segmentation is the simulator\'s ground truth (ablations only)')
        self.create_timer(PROCESS_PERIOD_S, self.process_newest)
        self.logger.info(f'segmenting {p.frame_topic} with {p.source}; target {p.target_object}')

    def _make_segmenter(self):
        import torch

        from samrl_perception.segmentation.segmenter import MaskRCNNSegmenter
        torch.set_num_threads(self.params.threads)
        path = Path(self.params.checkpoint) if self.params.checkpoint else DEFAULT_CHECKPOINT
        try:
            threshold = None if self.params.score_threshold == CALIBRATED else self.params.score_threshold
            segmenter = MaskRCNNSegmenter(path, threshold, objects=self.params.scene_object_names() or None,
                                          refiner=self.params.refiner_path())
        except CheckpointError as exc:
            raise ValueError(f'checkpoint: {exc}') from None
        except RefinerError as exc:
            raise ValueError(f'refiner: {exc}') from None
        scene = ', '.join(segmenter.objects) if segmenter.objects else 'any class'
        refined = f'refined by {self.params.refiner_path()}' if segmenter.refiner else 'not refined'
        self.logger.info(f'Mask R-CNN from {path}, scene objects: {scene}, score threshold '
                         f'{segmenter.score_threshold:.2f}, masks {refined} '
                         f'(trained by: {segmenter.record.get("command", "?")})')
        if segmenter.refiner_calibrated_here is False:
            self.logger.warn(f'refiner {self.params.refiner_path()} was calibrated with another detector than '
                             f'{path}: its score thresholds are not used, the detector\'s are')
        return segmenter

    # -- inputs ----------------------------------------------------------------------------------
    def on_frame(self, message) -> None:
        if self.newest is not None:
            self.drops.counts['superseded'] += 1     # a newer frame came before this one was segmented
        self.newest = (time.monotonic(), message)

    def on_labels(self, message) -> None:
        try:
            self.oracle_labels.add(message)
        except FrameError as exc:
            self.drops.drop('label image', exc)

    # -- work ------------------------------------------------------------------------------------
    def process_newest(self) -> None:
        """Segment and publish the newest frame; whatever goes wrong drops it, so it is never retried."""
        if self.newest is None:
            return
        try:
            done = self._process(*self.newest)
        except FrameError as exc:
            done = True
            self.drops.drop('frame', exc)
        except Exception as exc:  # a frame must not fail again every PROCESS_PERIOD_S
            done = True
            self.drops.drop('frame', processing_error(exc))
            self.logger.debug(traceback.format_exc())
        if done:
            self.newest = None

    def _process(self, arrived: float, message) -> bool:
        """Publish the frame's masks; False while it waits for its oracle labels."""
        started = time.perf_counter()
        frame = decode_frame(message)
        decoded = time.perf_counter()
        segmentation = self._segment(frame)
        if segmentation is None:                # oracle labels not here yet
            overdue = self.oracle_labels.overdue(arrived, time.monotonic())
            if overdue is not None:
                raise overdue
            return False
        segmented = time.perf_counter()
        self._publish(message.header, frame, segmentation)
        if self.times.record({'decode': decoded - started, 'segment': segmented - decoded,
                              'publish': time.perf_counter() - segmented}):
            self.logger.info(self.times.line())
        return True

    def _segment(self, frame: DecodedFrame) -> Segmentation | None:
        if self.segmenter is not None:
            check_frame_size(frame)
            return self.segmenter(frame.rgb)
        return self.oracle_labels.segmentation(frame)

    def _publish(self, header, frame: DecodedFrame, segmentation: Segmentation) -> None:
        self.masks_pub.publish(masks_msg(segmentation, self.params.source, header))
        self.segmented += 1
        if self.overlay_pub.get_subscription_count() > 0:
            self.overlay_pub.publish(array_to_image(overlay(frame.rgb, segmentation.labels), 'rgb8', header.stamp,
                                                    header.frame_id))
        target = segmentation.mask(self.params.target_object)
        if target.any():
            points, pixels = points_from_depth(frame.depth_m, frame.intrinsics, mask=target)
            self.points_pub.publish(pointcloud2_msg(points, frame.rgb[pixels[:, 0], pixels[:, 1]], header.stamp,
                                                    header.frame_id))

    def destroy(self) -> None:
        frames = self.frames
        self.logger.info(f'received {frames.received + frames.superseded} frames, segmented {self.segmented}; '
                         f'dropped: {self.drops.summary()}, superseded before delivery {frames.superseded}, '
                         f'undecodable {frames.dropped}')
        self.logger.info(self.times.table())
        super().destroy()


def main(argv=None) -> int:
    return run_node(SegmentationNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
