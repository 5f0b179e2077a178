"""oracle_controller: solves the task from the simulator's true state, through the command topic.

It mirrors the bridge's world from the privileged /samrl/sim_state (a kinematic copy in its own
PyBullet client, re-randomised with the episode's seed so task attributes match) and answers
each state with the oracle's bounded end-effector command, stamped with that state's stamp.
It is the upper bound for learned controllers and the source of demonstrations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from samrl_common.runtime import Node, run_node
from samrl_description.tasks import TASK_NAMES, check_task
from samrl_sim import conversions as conv
from samrl_sim.episodes import check_seed
from samrl_sim.oracles import make_oracle
from samrl_sim.world import World, write_body_states


@dataclass(frozen=True)
class OracleParams:
    task: str = field(default='needle_threading', metadata={'description': 'task: ' + ', '.join(TASK_NAMES)})

    def __post_init__(self):
        check_task(self.task)


class OracleController(Node):
    def __init__(self, argv=None):
        super().__init__('oracle_controller', params=OracleParams, argv=argv)
        self.mirror = World(self.params.task)
        self.oracle = make_oracle(self.params.task)
        self.episode_key: tuple[int, int] | None = None
        self.command_pub = self.create_publisher('samrl_interfaces/msg/EndEffectorCommand', '/samrl/ee_command')
        self.create_subscription('samrl_interfaces/msg/SimState', '/samrl/sim_state', self.on_sim_state)

    def on_sim_state(self, message) -> None:
        if message.task != self.params.task:
            self.logger.warn_throttled('task', f'sim state of task {message.task!r}, expected {self.params.task!r}')
            return
        try:
            states = conv.body_states_from_msg(message)
            key = (message.episode, check_seed(message.seed))
            if key != self.episode_key:
                self.mirror.reset(message.seed)
                self.oracle.reset(self.mirror)
                self.episode_key = key
            write_body_states(self.mirror.client, states)
        except ValueError as exc:
            self.logger.warn_throttled('mirror', f'cannot mirror the sim state: {exc}')
            return
        command = self.oracle.act(self.mirror)
        self.command_pub.publish(conv.command_msg(command, message.header.stamp, 'world'))

    def destroy(self) -> None:
        super().destroy()
        self.mirror.close()


def main(argv=None) -> int:
    return run_node(OracleController, argv)


if __name__ == '__main__':
    raise SystemExit(main())
