"""viewpoint_node: moves the camera up the sensing-aware Q (paper Eq. 10, Alg. 1 lines 5-13).

At `rate` Hz it takes one view step on model_node's latched /samrl/model/state (rendered with the
Panda's hand at the tool's pose from tf, as policy_node renders it) with the actor and Q of `run_dir`
and, when the step is accepted, sends the new view's camera_color_optical_frame pose in the world as a
goal on /samrl/camera_goal (geometry_msgs/PoseStamped, what the sim bridge and the camera arm take).
The first view is the camera's pose from tf when it is known at start-up, else the task's default view.
A tick without a usable input is skipped with the reason logged.

With `lockstep` (the sim bridge's lock-step, Algorithm 1 one step at a time) there is no timer: one view
step per control step, on the first model state from a frame of that step (samrl_common.lockstep), and
the goal is sent even when the step is refused or skipped (then the camera's current pose), because the
actor waits for the frame after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from samrl_common import msgs
from samrl_common.conversions import pose_msg
from samrl_common.lockstep import StepGate
from samrl_common.runtime import QOS_LATCHED, Node, run_node, stamp_now
from samrl_common.stage_times import StageTimes
from samrl_common.tf import TransformBuffer, TransformError
from samrl_common.tf_ros import TransformListener
from samrl_description.names import CAMERA_GOAL_TOPIC, OPTICAL_FRAME, TCP_FRAME, WORLD_FRAME
from samrl_description.tasks import TASK_NAMES, check_task
from samrl_model.render import (
    COMPUTE_THREADS_DESCRIPTION,
    NODE_COMPUTE_THREADS,
    check_compute_threads,
    set_compute_threads,
)
from samrl_model.tracking_inputs import stamp_ns
from samrl_policy.learn_at_sim import SHIPPED, run_dir_of
from samrl_policy.policy_core import InputError, checked_progress, image_size_of
from samrl_policy.policy_node import RUN_DIR_DESCRIPTION, networks_of
from samrl_viewpoint.view_step import DEFAULT_STEP_SIZE, STEP_CLIPS, ViewStepBounds
from samrl_viewpoint.viewpoint_core import ViewpointCore

SKIP_LOG_PERIOD_S = 2.0


@dataclass(frozen=True)
class ViewpointParams:
    task: str = field(default='needle_threading', metadata={'description': 'task: ' + ', '.join(TASK_NAMES)})
    run_dir: str = field(default=SHIPPED, metadata={'description': RUN_DIR_DESCRIPTION})
    rate: float = field(default=2.0, metadata={'description': 'view steps per second (Hz)', 'range': (0.1, 10.0)})
    step_size: float = field(default=DEFAULT_STEP_SIZE, metadata={
        'description': 'lambda of Eq. 10 (view-parameter units squared per unit of Q); the step is also bounded '
                       'to one control step of the camera arm', 'range': (0.0, 100.0)})
    step_clip: str = field(default=STEP_CLIPS[0], metadata={
        'description': 'how a step longer than the camera arm moves in one control step is cut: along the gradient '
                       '(direction) or parameter by parameter (box)'})
    lockstep: bool = field(default=False, metadata={
        'description': 'one view step per control step of a lock-step world (the sim bridge\'s lockstep), on the '
                       'first model state of that step, instead of `rate` Hz'})
    threads: int = field(default=NODE_COMPUTE_THREADS, metadata={'description': COMPUTE_THREADS_DESCRIPTION})

    def __post_init__(self):
        check_task(self.task)
        check_compute_threads(self.threads)
        ViewStepBounds(clip=self.step_clip)                 # names a bad step_clip at start-up
        if not self.run_dir:
            raise ValueError('run_dir must not be empty')


class ViewpointNode(Node):
    def __init__(self, argv=None):
        super().__init__('viewpoint_node', params=ViewpointParams, argv=argv)
        set_compute_threads(self.params.threads)
        p = self.params
        self.run_dir = run_dir_of(p.run_dir, p.task)
        self.networks = networks_of(self.run_dir)
        self.core: ViewpointCore | None = None     # made on the first tick, from the camera's pose if known
        self.model_state = None
        self.episode = None                        # the newest /samrl/task_state
        self.times = StageTimes('view step')
        self.tf = TransformListener(self, TransformBuffer())
        self.goal_pub = self.create_publisher('geometry_msgs/msg/PoseStamped', CAMERA_GOAL_TOPIC)
        self.create_subscription('samrl_interfaces/msg/ModelState', '/samrl/model/state', self.on_model_state,
                                 QOS_LATCHED)
        self.create_subscription('samrl_interfaces/msg/TaskState', '/samrl/task_state', self.on_task_state)
        self.gate = StepGate(after_camera_goal=False) if p.lockstep else None
        if self.gate is None:
            self.create_timer(1.0 / p.rate, self.on_tick)
        pace = 'one per control step (lock-step)' if p.lockstep else f'at {p.rate} Hz'
        self.logger.info(f'view steps of {self.run_dir} on {p.task} {pace}')

    def on_model_state(self, message) -> None:
        self.model_state = message
        self._step_if_due()

    def on_task_state(self, message) -> None:
        self.episode = message
        if self.gate is not None and not message.done:
            self.gate.tick(stamp_ns(message.header.stamp))
            self._step_if_due()

    def _step_if_due(self) -> None:
        if self.gate is not None and self.model_state is not None \
                and self.gate.ready(stamp_ns(self.model_state.header.stamp)):
            self.on_tick()

    def on_tick(self) -> None:
        try:
            if self.model_state is None or self.episode is None:
                raise InputError('no model state on /samrl/model/state or task state on /samrl/task_state yet')
            tcp = self.tf.buffer.lookup(WORLD_FRAME, TCP_FRAME)
            progress = checked_progress(self.episode.step, self.episode.max_steps)
            core = self.core or self._start()
            result = core.step(self.model_state, tcp, progress)
        except (InputError, TransformError) as exc:
            self.logger.warn_throttled(type(exc).__name__, f'view step skipped: {exc}', SKIP_LOG_PERIOD_S)
            if self.gate is not None and not self._keep_camera():
                self.gate.retry()
            return
        stages = ', '.join(f'{stage} {seconds * 1e3:.0f} ms' for stage, seconds in result.timings_s.items())
        if result.failure:
            self.logger.warn_throttled('view step', f'camera kept: {result.failure}', SKIP_LOG_PERIOD_S)
        self.logger.info(f'view step {"accepted" if result.accepted else "refused"}: Q {result.q_before:.3f} -> '
                         f'{result.q_after:.3f}; {stages}')
        if result.accepted or self.gate is not None:
            self.goal_pub.publish(goal_msg(core.goal()))
        if self.times.record(result.timings_s):
            self.logger.info(self.times.line())

    def destroy(self) -> None:
        self.logger.info(self.times.table())
        super().destroy()

    def _keep_camera(self) -> bool:
        """Lock-step without a view step: the current view as the goal, so the control step goes on;
        False when there is no pose to send (the next frame of the step tries again)."""
        try:
            pose = self.core.goal() if self.core is not None else self.tf.buffer.lookup(WORLD_FRAME, OPTICAL_FRAME)
        except TransformError as exc:
            self.logger.warn_throttled('keep', f'no camera pose to keep ({exc})', SKIP_LOG_PERIOD_S)
            return False
        self.goal_pub.publish(goal_msg(pose))
        return True

    def _start(self) -> ViewpointCore:
        try:
            camera = self.tf.buffer.lookup(WORLD_FRAME, OPTICAL_FRAME)
        except TransformError as exc:
            self.logger.warn(f'starting from the default view: no camera pose ({exc})')
            camera = None
        actor, q_network = self.networks.actor, self.networks.q_network
        self.core = ViewpointCore(self.params.task, actor, q_network, image_size_of(self.run_dir, actor),
                                  self.params.step_size, camera, ViewStepBounds(clip=self.params.step_clip))
        return self.core


def goal_msg(pose):
    """geometry_msgs/PoseStamped of the optical frame's world pose, stamped now."""
    message = msgs.get_message('geometry_msgs/msg/PoseStamped')(pose=pose_msg(pose))
    message.header.stamp, message.header.frame_id = stamp_now(), WORLD_FRAME
    return message


def main(argv=None) -> int:
    return run_node(ViewpointNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
