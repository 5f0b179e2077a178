"""policy_node: the Learn@Sim actor driving the Franka from M's state (Alg. 1 line 14 with a_real = a_sim).

Each control tick (the world's /samrl/task_state) it renders model_node's latched /samrl/model/state from
the camera's pose (tf world -> camera_color_optical_frame) with the Panda's hand at the tool's pose (tf
world -> panda_grasptarget), runs the actor of `run_dir` and publishes the end-effector command on
/samrl/ee_command, stamped with the tick's stamp (the bridge drops commands of an earlier episode). Only
the newest tick is acted on; a tick without a usable input is skipped with the reason logged.

With `lockstep` (the sim bridge's lock-step, Algorithm 1 one step at a time) each tick is acted on once,
on the model state of the frame taken after viewpoint_node's camera goal of that step (Alg. 1 line 7's
update), or, with `wait_for_view` false, of the first frame of the step (samrl_common.lockstep).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from samrl_common import msgs
from samrl_common.lockstep import StepGate
from samrl_common.runtime import QOS_LATCHED, Node, run_node
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
from samrl_policy.learn_at_sim import SHIPPED, load_policies, run_dir_of
from samrl_policy.policy_core import InputError, PolicyCore, checked_progress, image_size_of

PROCESS_PERIOD_S = 0.005          # how often the newest tick is looked for
SKIP_LOG_PERIOD_S = 2.0
RUN_DIR_DESCRIPTION = (f'Learn@Sim run directory with actor.pt, fixed_actor.pt and q.pt ({{task}} is replaced by the '
                       f'task), or {SHIPPED!r}: the networks that ship with samrl_policy (samrl_policy/trained/<task>)')


@dataclass(frozen=True)
class PolicyParams:
    task: str = field(default='needle_threading', metadata={'description': 'task: ' + ', '.join(TASK_NAMES)})
    run_dir: str = field(default=SHIPPED, metadata={'description': RUN_DIR_DESCRIPTION})
    lockstep: bool = field(default=False, metadata={
        'description': 'act once per control step of a lock-step world (the sim bridge\'s lockstep), on the model '
                       'state of the frame after the view step, instead of on the newest tick'})
    wait_for_view: bool = field(default=True, metadata={
        'description': 'lockstep: wait for viewpoint_node\'s camera goal of each step; false when no '
                       'viewpoint_node runs (the first frame of the step is acted on)'})
    threads: int = field(default=NODE_COMPUTE_THREADS, metadata={'description': COMPUTE_THREADS_DESCRIPTION})

    def __post_init__(self):
        check_task(self.task)
        check_compute_threads(self.threads)
        if not self.run_dir:
            raise ValueError('run_dir must not be empty')


class PolicyNode(Node):
    def __init__(self, argv=None):
        super().__init__('policy_node', params=PolicyParams, argv=argv)
        set_compute_threads(self.params.threads)
        run_dir = run_dir_of(self.params.run_dir, self.params.task)
        actor = networks_of(run_dir).actor
        self.core = PolicyCore(self.params.task, actor, image_size_of(run_dir, actor))
        self.times = StageTimes('control step')
        self.model_state = None
        self.tick = None                   # the newest /samrl/task_state not acted on yet
        self.tf = TransformListener(self, TransformBuffer())
        self.command_pub = self.create_publisher('samrl_interfaces/msg/EndEffectorCommand', '/samrl/ee_command')
        self.create_subscription('samrl_interfaces/msg/ModelState', '/samrl/model/state', self.on_model_state,
                                 QOS_LATCHED)
        self.create_subscription('samrl_interfaces/msg/TaskState', '/samrl/task_state', self.on_task_state)
        self.gate = StepGate(self.params.wait_for_view) if self.params.lockstep else None
        if self.gate is None:
            self.create_timer(PROCESS_PERIOD_S, self.act_on_newest)
        elif self.params.wait_for_view:
            self.create_subscription('geometry_msgs/msg/PoseStamped', CAMERA_GOAL_TOPIC, self.on_camera_goal)
        self.logger.info(f'actor of {run_dir} on {self.params.task}' + (' (lock-step)' if self.gate else ''))

    def on_model_state(self, message) -> None:
        self.model_state = message
        self._act_if_due()

    def on_task_state(self, message) -> None:
        self.tick = message
        if self.gate is not None and not message.done:
            self.gate.tick(stamp_ns(message.header.stamp))
            self._act_if_due()

    def on_camera_goal(self, message) -> None:
        self.gate.camera_goal(stamp_ns(message.header.stamp))
        self._act_if_due()

    def _act_if_due(self) -> None:
        if self.gate is not None and self.model_state is not None and self.tick is not None \
                and self.gate.ready(stamp_ns(self.model_state.header.stamp)) and not self._act(self.tick):
            self.gate.retry()

    def act_on_newest(self) -> None:
        tick, self.tick = self.tick, None
        if tick is not None and not tick.done:
            self._act(tick)

    def _act(self, tick) -> bool:
        """Publish the actor's command answering `tick`; False (reason logged) when an input is unusable."""
        try:
            if self.model_state is None:
                raise InputError('no model state on /samrl/model/state yet')
            tcp = self.tf.buffer.lookup(WORLD_FRAME, TCP_FRAME)            # the newest poses
            camera = self.tf.buffer.lookup(WORLD_FRAME, OPTICAL_FRAME)
            command = self.core.act(self.model_state, tcp, camera, checked_progress(tick.step, tick.max_steps))
        except (InputError, TransformError) as exc:
            self.logger.warn_throttled(type(exc).__name__, f'tick skipped: {exc}', SKIP_LOG_PERIOD_S)
            return False
        self.command_pub.publish(command_msg(command, tick.header.stamp))
        stages = ', '.join(f'{stage} {seconds * 1e3:.0f} ms' for stage, seconds in command.timings_s.items())
        self.logger.info(f'episode {tick.episode} step {tick.step}: {stages}')
        if self.times.record(command.timings_s):
            self.logger.info(self.times.line())
        return True

    def destroy(self) -> None:
        self.logger.info(self.times.table())
        super().destroy()


def networks_of(run_dir: str):
    """load_policies(run_dir); a missing run is a bad parameter (start-up stops with exit code 2)."""
    try:
        return load_policies(run_dir)
    except FileNotFoundError as exc:
        raise ValueError(f'run_dir: {exc}') from exc


def command_msg(command, stamp):
    """samrl_interfaces/EndEffectorCommand of a PolicyCommand, in the world (task) frame."""
    Vector3 = msgs.get_message('geometry_msgs/msg/Vector3')
    message = msgs.samrl_interfaces.msg.EndEffectorCommand(
        translation=Vector3(*command.translation_m), rotation=Vector3(*command.rotation_rad),
        gripper_width=command.gripper_width_m)
    message.header.stamp, message.header.frame_id = stamp, WORLD_FRAME
    return message


def main(argv=None) -> int:
    return run_node(PolicyNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
