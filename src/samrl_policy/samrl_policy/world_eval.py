"""The Learn@Sim actor in the PyBullet world, with M set to the world's true state at every step.

Algorithm 1 without a residual (a_real = a_sim) has three gaps between Table I in M and the task
graph in the world: M's physics against the world's, Real2Sim's error, and the graph's latency. This
controller removes the last two: each step it reads the world's true object placements and tool
pose (privileged, as the oracles do), renders them as M does from the world's camera, and applies
the actor's action. Its success rate is what a perfect tracker with no latency would reach, so the
gap to Table I's column is M's physics alone (`samrl eval <task> --controller actor`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from samrl_description.tasks import GRIPPER_WIDTHS_M, check_task
from samrl_model.sim_adapter import placements
from samrl_policy.dagger import learner_action
from samrl_policy.learn_at_sim import load_policies
from samrl_policy.model_env import command_from_action
from samrl_policy.policy_core import ModelStateView, checked_progress, image_size_of
from samrl_sim.commands import EeDeltaCommand

ACTORS = ('actor', 'fixed_actor')       # the multi-view actor, the Fixed-View actor


class ActorOnTruth:
    """An oracle-shaped controller (reset(world), act(world)) running one of a run's actors."""

    def __init__(self, task: str, run_dir: Path, which: str = 'actor'):
        if which not in ACTORS:
            raise ValueError(f'actor must be one of {", ".join(ACTORS)}, got {which!r}')
        self.task = check_task(task)
        policies = load_policies(run_dir)
        self.actor = getattr(policies, which).eval()
        self.view = ModelStateView(task, image_size_of(Path(run_dir), self.actor))

    def reset(self, world) -> None:
        del world       # memoryless: every step starts from the world's state

    def act(self, world) -> EeDeltaCommand:
        tcp = world.tcp_pose()
        progress = checked_progress(world.task_state().step, world.task.max_episode_steps)
        camera = torch.as_tensor(world.camera_pose().as_matrix(), dtype=torch.float64)
        observation = self.view.observe(placements(world), tcp, progress, camera)
        with torch.no_grad():
            action = torch.as_tensor(learner_action(self.actor, observation))
        delta = command_from_action(torch.as_tensor(tcp.position, dtype=torch.float64), action)
        return EeDeltaCommand(tuple(float(v) for v in delta[:3]), tuple(float(v) for v in delta[3:]),
                              GRIPPER_WIDTHS_M[self.task])
