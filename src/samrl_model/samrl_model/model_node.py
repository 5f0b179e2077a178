"""model_node: the differentiable model M as a service, and M tracking the world (paper Sec. III-A/B, Alg. 1).

Serves
  /samrl/model/update  samrl_interfaces/UpdateModel: Real2Sim on one segmented RGB-D view
  /samrl/model/track   samrl_interfaces/TrackModel: one tracking update (frame, mask and the robot's
                       state after the executed command in; the state, action, loss, iterations and
                       time out); the tracked state is kept between calls
  /samrl/model/render  samrl_interfaces/RenderModel: the current model from a requested camera pose
and publishes the model state (latched) and, after each update, its render of the target for
monitoring in RViz (a tracking update renders only while someone subscribes). A request it cannot
use is answered with success=false and the reason.

With track:=true (the task graphs) it also follows the world through whole episodes by itself: each
synchronized RGB-D frame (frame_topic) paired by stamp with its object masks (masks_topic) runs one
tracking update on the newest pair (older ones are dropped and counted as superseded), with the
Panda's tool centre point and finger opening from tf at the frame's stamp and the episode from
/samrl/task_state (a new episode starts from a coarse model of its first frame). When the sim
bridge's privileged /samrl/sim_state is there, the target's error against it is published on
/samrl/model/error (samrl_interfaces/ModelError; monitoring only, nothing reads it back).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from samrl_common import msgs
from samrl_common.conversions import pose_from_msg
from samrl_common.images import ImageError, array_to_image, depth_array_m, image_to_array, rgb_array
from samrl_common.runtime import QOS_FRAMES, QOS_LATCHED, QOS_SENSOR_DATA, Node, run_node, stamp_now
from samrl_common.stage_times import TOTAL_STAGE, StageTimes
from samrl_common.tf import TransformBuffer, TransformError
from samrl_common.tf_ros import TransformListener
from samrl_description.camera import CameraIntrinsics
from samrl_description.names import WORLD_FRAME
from samrl_description.tasks import TASK_NAMES, check_task
from samrl_model.real2sim.observation import Observation
from samrl_model.real2sim.optimise import OptimiseConfig
from samrl_model.render import (
    COMPUTE_THREADS_DESCRIPTION,
    NODE_COMPUTE_THREADS,
    check_compute_threads,
    set_compute_threads,
)
from samrl_model.scene_model import RequestError, SceneModel
from samrl_model.sim_truth import SimBodies, object_truth, sim_bodies, tracking_error
from samrl_model.tracking_inputs import (
    NS_PER_S,
    EpisodeMark,
    EpisodeWatch,
    FrameMatcher,
    StampedHistory,
    robot_state_at,
    stamp_ns,
    target_mask,
)
from samrl_model.tracking_session import TrackingSession, TrackOutcome, check_robot_state

RGB_SCALE = 1.0 / 255.0
MAX_ITERATIONS_PER_REQUEST = 1000   # a request asking for more is refused (a corrupted field must not run for hours)
UPDATES_WAITING = 2                 # update requests queued behind the running one; more are answered "busy"
FRAME_TOPIC = '/samrl/perception/rgbd'        # capture_node's synchronized frames
MASKS_TOPIC = '/samrl/perception/masks'       # segmentation_node's object masks
TASK_STATE_TOPIC = '/samrl/task_state'
SIM_STATE_TOPIC = '/samrl/sim_state'          # the sim bridge's privileged state (simulation only)
ERROR_TOPIC = '/samrl/model/error'
PROCESS_PERIOD_S = 0.005            # how often the newest frame with its masks is looked for
REFUSAL_LOG_PERIOD_S = 2.0


@dataclass(frozen=True)
class ModelParams:
    task: str = field(default='needle_threading', metadata={'description': 'task: ' + ', '.join(TASK_NAMES)})
    max_iterations: int = field(default=40, metadata={'description': 'Real2Sim iterations per update'})
    time_budget_s: float = field(default=30.0, metadata={'description': 'wall-time budget per update (s)'})
    spp: int = field(default=4, metadata={'description': 'Mitsuba samples per pixel'})
    initialise_from_view: bool = field(default=False, metadata={
        'description': 'start the first successful update from a coarse model fitted to its view (point '
                       'cloud, known shape) instead of the nominal scene; the thread stays anchored at '
                       'the model\'s grasp (tracking, not this update, follows the grasp)'})
    track: bool = field(default=True, metadata={
        'description': 'follow the world: one tracking update per synchronized RGB-D frame (frame_topic) with '
                       'its masks (masks_topic), the Panda\'s tool centre point and fingers from tf, episodes '
                       'from /samrl/task_state; the error against /samrl/sim_state, where the sim bridge '
                       'publishes it, on /samrl/model/error. false: only the services'})
    frame_topic: str = field(default=FRAME_TOPIC, metadata={
        'description': 'synchronized RGB-D frames (samrl_interfaces/RGBDFrame) tracked with track:=true'})
    masks_topic: str = field(default=MASKS_TOPIC, metadata={
        'description': 'object masks (samrl_interfaces/ObjectMasks) of those frames, matched by stamp'})
    threads: int = field(default=NODE_COMPUTE_THREADS, metadata={'description': COMPUTE_THREADS_DESCRIPTION})

    def __post_init__(self):
        check_task(self.task)
        if self.max_iterations < 1 or self.time_budget_s <= 0 or self.spp < 1:
            raise ValueError('max_iterations and spp must be >= 1 and time_budget_s > 0')
        check_compute_threads(self.threads)
        for name in ('frame_topic', 'masks_topic'):
            if not getattr(self, name):
                raise ValueError(f'{name} must not be empty')


def intrinsics_from_msg(info) -> CameraIntrinsics:
    """The request's intrinsics as sent (SceneModel checks them and refuses with the reason)."""
    return CameraIntrinsics.from_k(info.k, info.width, info.height)


def observation_from_request(request, target: str | None = None) -> Observation:
    """The request's view (UpdateModel or TrackModel) of `target` (default: the request's)."""
    mask = image_to_array(request.mask)
    if request.mask.encoding != 'mono8':
        raise ImageError(f'mask must be mono8, got {request.mask.encoding}')
    return _observation(request, mask > 0, request.target if target is None else target)


def observation_from_frame(frame, masks, target: str) -> Observation:
    """An RGBDFrame with `target`'s mask from the frame's ObjectMasks; RequestError if M cannot use it."""
    if frame.world_frame != WORLD_FRAME:
        raise RequestError(f'the frame\'s camera pose is in {frame.world_frame!r}; the model is in {WORLD_FRAME!r}')
    shape = (frame.depth.height, frame.depth.width)
    return _observation(frame, target_mask(list(masks.labels), list(masks.masks), target, shape), target)


def _observation(view, mask: np.ndarray, target: str) -> Observation:
    """An Observation of a message with rgb, depth, camera_info and camera_pose fields."""
    return Observation(rgb_array(view.rgb).astype(np.float32) * RGB_SCALE, depth_array_m(view.depth), mask,
                       intrinsics_from_msg(view.camera_info), pose_from_msg(view.camera_pose), target)


def episode_mark(task_state) -> EpisodeMark:
    return EpisodeMark(int(task_state.episode), int(task_state.seed), int(task_state.step))


class ModelNode(Node):
    def __init__(self, argv=None):
        super().__init__('model_node', params=ModelParams, argv=argv)
        set_compute_threads(self.params.threads)
        self.model = SceneModel(self.params.task, self.params.spp)
        self.loss = float('nan')
        self.initialised_from_view = False
        self.state_pub = self.create_publisher('samrl_interfaces/msg/ModelState', '/samrl/model/state', QOS_LATCHED)
        self.image_pub = self.create_publisher('sensor_msgs/msg/Image', '/samrl/model/rendered/image_raw')
        self.mask_pub = self.create_publisher('sensor_msgs/msg/Image', '/samrl/model/rendered/mask')
        self.create_service('samrl_interfaces/srv/UpdateModel', '/samrl/model/update', self.on_update,
                            max_pending=UPDATES_WAITING + 1)
        self.session = TrackingSession(self.model, should_stop=self.stopping)
        self.times = StageTimes('tracking update')
        self.create_service('samrl_interfaces/srv/TrackModel', '/samrl/model/track', self.on_track,
                            max_pending=UPDATES_WAITING + 1)
        self.create_service('samrl_interfaces/srv/RenderModel', '/samrl/model/render', self.on_render)
        if self.params.track:
            self._follow_world()
        self.state_pub.publish(self.state_msg())
        self.logger.info(f'model of {self.params.task} ready: {", ".join(self.model.object_names())}'
                         + (f'; tracking {self.session.target} in {self.params.frame_topic}' if self.params.track
                            else ''))

    def _follow_world(self) -> None:
        p = self.params
        self.matcher: FrameMatcher = FrameMatcher()
        self.task_states: StampedHistory[EpisodeMark] = StampedHistory()
        self.sim_states: StampedHistory = StampedHistory()
        self.bodies: SimBodies | None = None
        self.no_sim_truth = False            # the simulator is not importable here: no error is published
        self.episodes = EpisodeWatch()
        self.refused: Counter[str] = Counter()
        self.tracked_frames = 0
        self.tf = TransformListener(self, TransformBuffer())
        self.error_pub = self.create_publisher('samrl_interfaces/msg/ModelError', ERROR_TOPIC)
        self.frames = self.create_subscription('samrl_interfaces/msg/RGBDFrame', p.frame_topic,
                                               lambda m: self.matcher.add_frame(stamp_ns(m.header.stamp), m),
                                               QOS_FRAMES)
        self.create_subscription('samrl_interfaces/msg/ObjectMasks', p.masks_topic,
                                 lambda m: self.matcher.add_masks(stamp_ns(m.header.stamp), m), QOS_SENSOR_DATA)
        self.create_subscription('samrl_interfaces/msg/TaskState', TASK_STATE_TOPIC,
                                 lambda m: self.task_states.add(stamp_ns(m.header.stamp), episode_mark(m)))
        self.create_subscription('samrl_interfaces/msg/SimState', SIM_STATE_TOPIC, self.on_sim_state)
        self.create_timer(PROCESS_PERIOD_S, self.track_newest)

    def on_update(self, request):
        Response = msgs.samrl_interfaces.srv.UpdateModel.Response
        try:
            if request.max_iterations > MAX_ITERATIONS_PER_REQUEST:
                raise RequestError(f'max_iterations {request.max_iterations} is more than '
                                   f'{MAX_ITERATIONS_PER_REQUEST}')
            observation = observation_from_request(request)
            config = OptimiseConfig(max_iterations=request.max_iterations or self.params.max_iterations,
                                    time_budget_s=self.params.time_budget_s)
            initial = 'coarse' if self.params.initialise_from_view and not self.initialised_from_view else 'current'
            outcome = self.model.update(observation, config, initial)
        except (ImageError, RequestError) as exc:
            self.logger.warn(f'update refused: {exc}')
            return Response(success=False, message=str(exc), state=self.state_msg())
        self.loss = outcome.final_loss
        self.initialised_from_view = self.initialised_from_view or initial == 'coarse'
        self.logger.info(f'updated {request.target} from the {initial} model: loss {outcome.final_loss:.4g} after '
                         f'{outcome.iterations} iterations ({outcome.wall_time_s:.1f} s)')
        state = self.state_msg()
        self.state_pub.publish(state)
        self._publish_render(request.camera_pose, request.camera_info, request.target)
        return Response(success=True, message='updated', state=state, final_loss=outcome.final_loss,
                        iterations=outcome.iterations)

    def on_track(self, request):
        Response = msgs.samrl_interfaces.srv.TrackModel.Response
        try:
            observation = observation_from_request(request, request.target or self.session.target)
            robot = check_robot_state(pose_from_msg(request.tcp_pose), request.finger_opening_m)
            outcome = self.session.update(observation, robot, request.episode_start)
        except (ImageError, RequestError) as exc:
            self.logger.warn(f'tracking update refused: {exc}')
            return Response(success=False, message=str(exc), state=self.state_msg(), final_loss=math.nan)
        state = self._tracked(outcome, request.camera_pose, request.camera_info, 'track service')
        return Response(success=True, message=outcome.action, state=state, action=outcome.action,
                        final_loss=outcome.final_loss, iterations=outcome.iterations,
                        wall_time_s=outcome.wall_time_s)

    # -- following the world (track:=true) -------------------------------------------------------
    def on_sim_state(self, message) -> None:
        if message.task != self.params.task or self.no_sim_truth:
            return
        if self.bodies is None:
            try:
                self.bodies = sim_bodies(self.params.task)
            except ImportError as exc:      # a sim state from another machine: nothing to compare with here
                self.no_sim_truth = True
                self.logger.warn(f'no error against {SIM_STATE_TOPIC}: the simulator is not importable ({exc})')
                return
        self.sim_states.add(stamp_ns(message.header.stamp), message)

    def track_newest(self) -> None:
        """One tracking update on the newest frame that has its masks."""
        pair = self.matcher.take()
        if pair is None:
            return
        stamp, frame, masks = pair
        mark = self.task_states.at(stamp)
        try:
            observation = observation_from_frame(frame, masks, self.session.target)
            robot = robot_state_at(self.tf.buffer, frame.world_frame, stamp / NS_PER_S)
            robot = check_robot_state(robot.tcp, robot.opening_m)
            outcome = self.session.update(observation, robot, self.episodes.is_start(mark))
        except (ImageError, ValueError, TransformError) as exc:     # RequestError is a ValueError
            self._refuse(type(exc).__name__, exc)
            return
        self.episodes.tracked(mark)
        self.tracked_frames += 1
        error = self._error_at(stamp, mark, outcome, frame.header)
        where = '' if mark is None else f'episode {mark.episode} step {mark.step} '
        self._tracked(outcome, frame.camera_pose, frame.camera_info, f'{where}update {outcome.update}', error)

    def _refuse(self, kind: str, exc: Exception) -> None:
        self.refused[kind] += 1
        self.logger.warn_throttled(f'refused:{kind}', f'frame not tracked ({sum(self.refused.values())} so far): '
                                   f'{exc}', REFUSAL_LOG_PERIOD_S)

    def _error_at(self, stamp: int, mark: EpisodeMark | None, outcome: TrackOutcome, header):
        """The target's error against the sim state in force at the frame, published; None without one."""
        sim = self.sim_states.at(stamp)
        if sim is None or self.bodies is None:
            return None
        target = self.session.target
        try:
            error = tracking_error(self.model.objects[target], object_truth(sim, self.bodies, target), target)
        except ValueError as exc:
            self.logger.warn_throttled('sim truth', f'no error against {SIM_STATE_TOPIC}: {exc}', REFUSAL_LOG_PERIOD_S)
            return None
        message = msgs.samrl_interfaces.msg.ModelError(
            target=target, episode=sim.episode if mark is None else mark.episode, step=0 if mark is None else mark.step,
            update=outcome.update, action=outcome.action, position_mm=error.position_mm,
            rotation_deg=error.rotation_deg, thread_link_mm=error.thread_link_mm)
        message.header.stamp, message.header.frame_id = header.stamp, WORLD_FRAME
        self.error_pub.publish(message)
        return error

    def _tracked(self, outcome: TrackOutcome, camera_pose, camera_info, what: str, error=None):
        """After a tracking update: log it, publish the state and (while someone looks) the render."""
        self.loss = outcome.final_loss
        against = '' if error is None else (f'; error {error.position_mm:.2f} mm, {error.rotation_deg:.2f} deg'
                                            + ('' if math.isnan(error.thread_link_mm)
                                               else f', thread links {error.thread_link_mm:.2f} mm'))
        self.logger.info(f'{what}: {outcome.action}, {outcome.iterations} iterations, {outcome.wall_time_s:.2f} s'
                         + against)
        # The tracker's stages nest and leave gaps: its wall time is the update's total.
        if self.times.record({**outcome.stages_s, TOTAL_STAGE: outcome.wall_time_s}):
            self.logger.info(self.times.line())
        state = self.state_msg()
        self.state_pub.publish(state)
        if self.image_pub.get_subscription_count() or self.mask_pub.get_subscription_count():
            self._publish_render(camera_pose, camera_info, self.session.target)
        return state

    def on_render(self, request):
        Response = msgs.samrl_interfaces.srv.RenderModel.Response
        try:
            out = self._render(request.camera_pose, request.camera_info, request.target)
        except (ImageError, RequestError) as exc:
            return Response(success=False, message=str(exc))
        return Response(success=True, message='rendered', rgb=out[0], depth=out[1], mask=out[2])

    def _render(self, camera_pose, camera_info, target):
        out = self.model.render(pose_from_msg(camera_pose), intrinsics_from_msg(camera_info),
                                target or self.model.default_target)
        stamp, frame = stamp_now(), camera_info.header.frame_id
        rgb = (out.rgb.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        mask = ((out.mask.numpy() > 0.5) * 255).astype(np.uint8)
        return (array_to_image(rgb, 'rgb8', stamp, frame),
                array_to_image(out.depth.numpy().astype(np.float32), '32FC1', stamp, frame),
                array_to_image(mask, 'mono8', stamp, frame))

    def _publish_render(self, camera_pose, camera_info, target: str) -> None:
        rgb, _depth, mask = self._render(camera_pose, camera_info, target)
        self.image_pub.publish(rgb)
        self.mask_pub.publish(mask)

    def state_msg(self):
        Pose_, ColorRGBA = msgs.get_message('geometry_msgs/msg/Pose'), msgs.get_message('std_msgs/msg/ColorRGBA')
        names = self.model.object_names()
        poses, colors, thread = [], [], []
        for name in names:
            params = self.model.objects[name]
            quaternion = Rotation.from_rotvec(params.rotation.numpy()).as_quat()
            pose = Pose_()
            pose.position.x, pose.position.y, pose.position.z = (float(v) for v in params.translation)
            pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = map(float, quaternion)
            poses.append(pose)
            colors.append(ColorRGBA(*(float(c) for c in params.color.clamp(0, 1)), 1.0))
            if params.joint_angles is not None:
                thread = [float(a) for a in params.joint_angles]
        message = msgs.samrl_interfaces.msg.ModelState(task=self.params.task, object_names=names, object_poses=poses,
                                                       object_colors=colors, thread_joint_angles=thread,
                                                       loss=self.loss)
        message.header.stamp, message.header.frame_id = stamp_now(), 'world'
        return message


    def destroy(self) -> None:
        self.logger.info(self.times.table())
        if self.params.track:
            counts, frames = self.matcher.counts, self.frames
            self.logger.info(f'tracked {self.tracked_frames} frames; superseded {counts.superseded + frames.superseded}'
                             f', unmatched {counts.unmatched}, refused {dict(self.refused)}')
        super().destroy()


def main(argv=None) -> int:
    return run_node(ModelNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
