"""sim_bridge: the PyBullet "real world" behind the topics of the real drivers.

Publishes what realsense2_camera 4.x, the arms' drivers and robot_state_publisher publish
(colour, aligned 16UC1 depth, camera_info, /joint_states, /tf), the task's state and, for
oracle controllers only, the privileged SimState. Takes end-effector commands for the Franka
and camera pose goals for the camera arm; every command is validated by samrl_sim.safety and a
rejected one is logged with its reason and never moves an arm. Seeds, returns and when to stop
are kept by the ROS-free samrl_sim.episodes.

The world steps on a timer (control_rate_hz, camera frames at camera_rate_hz), or, with `lockstep`,
when a command comes, with a frame after each step and each camera goal: Algorithm 1 one control step
at a time, as an arm that holds still until it is told to move. Each command's latency (its tick's stamp
to its arrival, in the closing summary) is then the controller's whole time per control step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from samrl_common import msgs
from samrl_common.conversions import camera_info_msg
from samrl_common.images import array_to_image
from samrl_common.runtime import QOS_SENSOR_DATA, Node, run_node, stamp_now, stamp_to_s
from samrl_common.stage_times import Durations
from samrl_common.tf_ros import StaticTransformBroadcaster, TransformBroadcaster, to_msg
from samrl_description.names import (
    CAMERA_GOAL_TOPIC,
    COLOR_INFO_TOPIC,
    COLOR_TOPIC,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    GROUND_TRUTH_LABELS_TOPIC,
    OPTICAL_FRAME,
)
from samrl_description.tasks import TASK_NAMES, check_task
from samrl_sim import conversions as conv
from samrl_sim.camera import label_image
from samrl_sim.commands import EeDeltaCommand
from samrl_sim.episodes import EpisodeBook, check_seed, episode_over
from samrl_sim.world import World, WorldConfig, read_body_states

REJECTION_LOG_PERIOD_S = 1.0
LOCKSTEP_POLL_S = 0.1          # how often lock-step checks for a step to announce again
REPEAT_LOG_PERIOD_S = 30.0


@dataclass(frozen=True)
class BridgeParams:
    task: str = field(default='needle_threading', metadata={'description': 'task: ' + ', '.join(TASK_NAMES)})
    seed: int = field(default=0, metadata={'description': 'seed of episode 0; episode i uses seed + i'})
    episodes: int = field(default=0, metadata={'description': 'stop after this many episodes (0: never)'})
    control_rate_hz: float = field(default=10.0, metadata={'description': 'control steps per second'})
    camera_rate_hz: float = field(default=5.0, metadata={'description': 'camera frames per second'})
    image_width: int = field(default=640, metadata={'description': 'camera image width (px)'})
    image_height: int = field(default=480, metadata={'description': 'camera image height (px)'})
    publish_sim_state: bool = field(default=True, metadata={'description': 'publish privileged SimState'})
    publish_ground_truth_labels: bool = field(default=True, metadata={
        'description': 'publish the privileged object label image of each frame (oracle masks, IoU checks)'})
    lockstep: bool = field(default=False, metadata={
        'description': 'Algorithm 1 in lock-step: the world takes a control step when a command comes (as an arm '
                       'holding still until it is told to move) and a camera frame after each step and each camera '
                       'move, instead of both on timers; the command latency is then the time per control step'})
    lockstep_repeat_s: float = field(default=5.0, metadata={
        'description': 'lockstep: a frame of the unchanged world is published again after this long without a '
                       'command (s), so a frame lost before its subscribers were up does not stall the graph',
        'range': (0.5, 600.0)})

    def __post_init__(self):
        check_task(self.task)
        check_seed(self.seed)
        if self.episodes < 0:
            raise ValueError(f'episodes must be >= 0, got {self.episodes}')
        if not 0 < self.control_rate_hz <= 240 or 240 % self.control_rate_hz:
            raise ValueError(f'control_rate_hz must divide the 240 Hz physics rate, got {self.control_rate_hz}')
        if not 0 < self.camera_rate_hz <= 60:
            raise ValueError(f'camera_rate_hz must be in (0, 60], got {self.camera_rate_hz}')
        if not 0.5 <= self.lockstep_repeat_s <= 600.0:
            raise ValueError(f'lockstep_repeat_s must be in [0.5, 600] s, got {self.lockstep_repeat_s}')
        if not (16 <= self.image_width <= 1280 and 16 <= self.image_height <= 960):
            raise ValueError(f'image size must be within 16..1280 x 16..960, '
                             f'got {self.image_width}x{self.image_height}')


class SimBridge(Node):
    def __init__(self, argv=None):
        super().__init__('sim_bridge', params=BridgeParams, argv=argv)
        p = self.params
        self.world = World(p.task, WorldConfig(control_rate_hz=int(p.control_rate_hz)))
        self.command: EeDeltaCommand | None = None
        self.episodes = EpisodeBook(p.seed, p.episodes)
        self.images_published = 0
        self.rejected = 0
        self.physics_s, self.render_s = Durations(), Durations()      # the world's own share of a step
        self.last_frame_s = time.monotonic()
        self._make_interfaces()
        self.tf_static.send(self._tf_messages(static=True, stamp=stamp_now()))
        self._start_episode(p.seed)
        if p.lockstep:
            self.create_timer(LOCKSTEP_POLL_S, self.on_lockstep_wait)
            pace = 'lock-step: a control step per command, a frame after each step and camera move'
        else:
            self.create_timer(1.0 / p.control_rate_hz, self.on_control)
            self.create_timer(1.0 / p.camera_rate_hz, self.on_camera)
            pace = f'control {p.control_rate_hz} Hz, camera at {p.camera_rate_hz} Hz'
        self.logger.info(f'{p.task}: {pace}, images {p.image_width}x{p.image_height}')

    def _make_interfaces(self) -> None:
        self.color_pub = self.create_publisher('sensor_msgs/msg/Image', COLOR_TOPIC, QOS_SENSOR_DATA)
        self.depth_pub = self.create_publisher('sensor_msgs/msg/Image', DEPTH_TOPIC, QOS_SENSOR_DATA)
        self.color_info_pub = self.create_publisher('sensor_msgs/msg/CameraInfo', COLOR_INFO_TOPIC, QOS_SENSOR_DATA)
        self.depth_info_pub = self.create_publisher('sensor_msgs/msg/CameraInfo', DEPTH_INFO_TOPIC, QOS_SENSOR_DATA)
        self.labels_pub = self.create_publisher('sensor_msgs/msg/Image', GROUND_TRUTH_LABELS_TOPIC, QOS_SENSOR_DATA)
        self.joint_pub = self.create_publisher('sensor_msgs/msg/JointState', '/joint_states')
        self.task_pub = self.create_publisher('samrl_interfaces/msg/TaskState', '/samrl/task_state')
        self.sim_pub = self.create_publisher('samrl_interfaces/msg/SimState', '/samrl/sim_state')
        self.tf = TransformBroadcaster(self)
        self.tf_static = StaticTransformBroadcaster(self)
        self.create_subscription('samrl_interfaces/msg/EndEffectorCommand', '/samrl/ee_command', self.on_command)
        self.create_subscription('geometry_msgs/msg/PoseStamped', CAMERA_GOAL_TOPIC, self.on_camera_goal)
        self.create_service('samrl_interfaces/srv/ResetEpisode', '/samrl/reset_episode', self.on_reset)

    # -- episodes --------------------------------------------------------------------------------
    def _start_episode(self, seed: int) -> None:
        self.command = None
        self.world.reset(seed)
        self.episodes.start(seed, time.time())
        self._publish_state(self.world.task_state(), step_began=True)
        if self.params.lockstep:
            self.on_camera()

    def on_reset(self, request):
        Response = msgs.samrl_interfaces.srv.ResetEpisode.Response
        try:
            seed = self.episodes.reset_seed(request.seed)
        except ValueError as exc:
            self.logger.warn(f'reset refused: {exc}')
            return Response(success=False, message=str(exc), episode=self.world.task_state().episode,
                            seed=self.episodes.seed)
        self._start_episode(seed)
        return Response(
            success=True, message=f'episode {self.world.task_state().episode} with seed {seed}',
            episode=self.world.task_state().episode, seed=seed)

    def _finish_episode(self, state) -> None:
        book = self.episodes
        stop = book.finish(state.success)
        outcome = 'success' if state.success else 'failure'
        self.logger.info(f'episode {state.episode} (seed {book.seed}): {outcome} after {state.step} steps, '
                         f'return {book.episode_return:.2f}')
        if stop:
            self.shutdown()         # destroy() logs the closing summary
            return
        self._start_episode(book.next_seed())

    # -- commands --------------------------------------------------------------------------------
    def on_command(self, message) -> None:
        # A command computed from an observation of an earlier episode must not act on this one.
        if not self.episodes.accept_command(stamp_to_s(message.header.stamp), time.time()):
            return
        self.command = conv.command_from_msg(message)
        if self.params.lockstep:
            self.on_control()

    def on_camera_goal(self, message) -> None:
        if message.header.frame_id not in ('', 'world'):
            self._reject(f'camera goal in frame {message.header.frame_id!r}; only "world" is accepted')
            return
        result = self.world.move_camera(conv.camera_goal_from_msg(message))
        if not result.ok:
            self._reject(f'camera goal: {result.reason}')
        if self.params.lockstep:        # Alg. 1 line 7 updates M from the new view (or the kept one)
            self.on_camera()

    def _reject(self, reason: str) -> None:
        self.rejected += 1
        self.logger.warn_throttled('reject', f'rejected command ({self.rejected} so far): {reason}',
                                   REJECTION_LOG_PERIOD_S)

    # -- loops -----------------------------------------------------------------------------------
    def on_control(self) -> None:
        command, self.command = self.command, None
        started = time.perf_counter()
        if command is None:
            state = self.world.hold()
        else:
            result = self.world.step(command)
            if not result.accepted:
                self._reject(f'end-effector command: {result.reason}')
                state = self.world.hold()
            else:
                state = result.state
        self.physics_s.add(time.perf_counter() - started)
        self.episodes.add_reward(state.reward)
        self._publish_state(state, step_began=True)
        if episode_over(state.success, state.truncated):
            self._finish_episode(state)          # a new episode publishes its first frame
        elif self.params.lockstep:
            self.on_camera()

    def on_lockstep_wait(self) -> None:
        """Lock-step: nothing moves without a command, but a step nobody answered is announced again (its
        tick and a frame): messages sent before their subscribers were up are lost."""
        if time.monotonic() - self.last_frame_s >= self.params.lockstep_repeat_s:
            self.logger.warn_throttled('repeat', f'lock-step: no command for {self.params.lockstep_repeat_s:.1f} s;'
                                       ' tick and frame sent again', REPEAT_LOG_PERIOD_S)
            self._publish_state(self.world.task_state())
            self.on_camera()

    def _publish_state(self, state, step_began: bool = False) -> None:
        """TaskState (the tick), joint states, tf and SimState; `step_began`: a new control step's first tick."""
        stamp = stamp_now()
        if step_began and self.params.lockstep:
            self.episodes.step_began(stamp_to_s(stamp))
        book = self.episodes
        self.task_pub.publish(conv.task_state_msg(state, book.seed, book.episode_return,
                                                  self.world.task.max_episode_steps, stamp))
        self.joint_pub.publish(conv.joint_state_msg(self.world.joint_states(), stamp))
        self._send_tf(stamp)
        if self.params.publish_sim_state:
            self.sim_pub.publish(conv.sim_state_msg(read_body_states(self.world.client), state.task,
                                                    state.episode, book.seed, stamp))

    def on_camera(self) -> None:
        p = self.params
        started = time.perf_counter()
        image = self.world.render(p.image_width, p.image_height)
        self.render_s.add(time.perf_counter() - started)
        stamp = stamp_now()
        color, depth = conv.image_msgs(image.rgb, image.depth_m, stamp, OPTICAL_FRAME)
        info = camera_info_msg(self.world.camera_intrinsics(p.image_width, p.image_height), stamp, OPTICAL_FRAME)
        self.color_pub.publish(color)
        self.images_published += 1
        self.depth_pub.publish(depth)
        self.color_info_pub.publish(info)
        self.depth_info_pub.publish(info)
        if p.publish_ground_truth_labels:
            labels = label_image(image.seg, self.world.task.object_bodies())
            self.labels_pub.publish(array_to_image(labels, 'mono8', stamp, OPTICAL_FRAME))
        self._send_tf(stamp)  # the camera pose at exactly the image's stamp
        self.last_frame_s = time.monotonic()

    def _send_tf(self, stamp) -> None:
        self.tf.send(self._tf_messages(static=False, stamp=stamp))

    def _tf_messages(self, static: bool, stamp) -> list:
        """Fixed joints and arm bases go on latched /tf_static (as robot_state_publisher does)."""
        return [to_msg(e.parent, e.child, e.pose, stamp)
                for e in self.world.transforms() if e.static == static]

    def destroy(self) -> None:
        # Here rather than at the episode limit so that a graph stopped by Ctrl-C also gets the summary.
        self.logger.info(self.episodes.summary())
        self.logger.info(f'published {self.images_published} camera images; world step (physics) '
                         f'{self.physics_s.spread().text_ms()}, render {self.render_s.spread().text_ms()}')
        super().destroy()
        self.world.close()


def main(argv=None) -> int:
    return run_node(SimBridge, argv)


if __name__ == '__main__':
    raise SystemExit(main())
