"""The trajectory-optimisation expert in M: it solves seeded episodes of every task, labels states
it would not visit itself, its refinement lowers a plan's cost through the physics, and
`samrl train expert` runs."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from samrl_bringup.cli import main
from samrl_description.tasks import TASK_NAMES
from samrl_policy.expert import (
    ExpertConfig,
    ExpertStats,
    TrajectoryExpert,
    native_output_counted,
    refinement_gains,
    rollout,
)
from samrl_policy.expert_plot import main as expert_plot_main
from samrl_policy.expert_plot import plot_expert
from samrl_policy.model_env import ACTION_DIM, ModelEnv

SEEDS = (100, 101)                   # two episodes per task: about 3 s (peg) to 25 s (spatula) here
RANDOM_STEPS = 4                     # a poor learner's steps before the expert is asked
POOR_PLAN_HORIZON = 3
POOR_PLAN_ITERATIONS = 4
PNG_SIGNATURE = b'\x89PNG'


@pytest.fixture(scope='module')
def envs() -> dict[str, ModelEnv]:
    return {task: ModelEnv(task, seed=None) for task in TASK_NAMES}


@pytest.mark.parametrize('task', TASK_NAMES)
def test_expert_solves_seeded_episodes(envs, task):
    expert = TrajectoryExpert()
    for seed in SEEDS:
        episode = expert.solve_episode(envs[task], seed)
        assert episode.success, (task, seed)
        assert len(episode.states) == len(episode.actions) == episode.steps <= envs[task].max_episode_steps
        assert all(a.shape == (ACTION_DIM,) and np.all(np.abs(a) <= 1.0) for a in episode.actions)
        assert len(episode.label_times_s) == episode.steps and episode.wall_time_s > 0.0
        assert len(episode.state_costs) == episode.steps + 1
        assert episode.state_costs[-1] < episode.state_costs[0], (task, seed, episode.state_costs)


@pytest.mark.parametrize('task', TASK_NAMES)
def test_expert_labels_a_state_it_would_not_visit_and_leaves_the_env_alone(envs, task):
    env, rng = envs[task], np.random.default_rng(0)
    env.reset(SEEDS[0])
    for _ in range(RANDOM_STEPS):
        env.step(rng.uniform(-1.0, 1.0, ACTION_DIM))
    state, steps = env.state.clone(), env.step_count
    action = TrajectoryExpert().act(env)
    assert action.shape == (ACTION_DIM,) and np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1.0)
    assert torch.equal(env.state, state) and env.step_count == steps


def test_refinement_lowers_the_cost_of_a_poor_plan_through_the_physics(envs):
    """From a plan that does nothing, Adam through control_step moves the peg towards the hole."""
    env = envs['peg_insertion']
    env.reset(SEEDS[0])
    expert = TrajectoryExpert(ExpertConfig(horizon=POOR_PLAN_HORIZON))
    idle = torch.zeros(POOR_PLAN_HORIZON, 6, dtype=torch.float64)
    poor = expert._judged(env.task, env.state, env.memory, idle, 'idle')
    refined = expert.refine(env.task, env.state, env.memory, poor, POOR_PLAN_ITERATIONS)
    assert refined.source == 'refined' and refined.cost < poor.cost
    curve = expert.stats.refinement_costs[-1]
    assert 1 <= len(curve) <= POOR_PLAN_ITERATIONS
    assert curve[0] == pytest.approx(poor.cost) and min(curve) == pytest.approx(refined.cost)
    assert float(refined.actions.abs().max()) <= 1.0
    with torch.no_grad():
        states = rollout(env.model, env.state, refined.actions)
    assert float(env.task.cost(states, env.memory)) < float(env.task.cost(poor.states, env.memory))


def test_warm_start_reuses_the_previous_plan(envs):
    env = envs['needle_threading']
    env.reset(SEEDS[0])
    expert = TrajectoryExpert()
    first = expert.act(env)
    assert expert._previous is not None and expert._previous.shape == (expert.config.horizon, 6)
    expert.reset()
    assert expert._previous is None and np.allclose(expert.act(env), first)


def test_nimbles_printed_warnings_are_counted_not_shown(capfd):
    stats = ExpertStats()
    with native_output_counted(stats):
        os.write(1, b'Error [DifferentiableContactConstraint.cpp:612] ...\n')
        os.write(2, b'Error [DifferentiableContactConstraint.cpp:612] ...\n')
    assert stats.contact_gradient_warnings == 2
    assert capfd.readouterr() == ('', '')


def test_train_expert_command_runs_one_episode(tmp_path, capsys):
    out, png = tmp_path / 'expert.json', tmp_path / 'curves' / 'expert.png'
    assert main(['train', 'expert', 'peg_insertion', '--episodes', '1', '--seed', str(SEEDS[0]),
                 '--json', str(out), '--png', str(png)]) == 0
    printed = capsys.readouterr().out
    assert 'success rate in M' in printed and 'time per label' in printed
    result = json.loads(out.read_text())['results']
    assert result['episodes'] == 1 and result['success_rate'] == 1.0
    assert result['seconds_per_label'] > 0.0 and result['seconds_per_trajectory'] > 0.0
    episode = result['per_episode'][0]
    assert len(episode['state_costs']) == episode['steps'] + 1 == len(episode['label_times_s']) + 1
    assert png.read_bytes().startswith(PNG_SIGNATURE) and f'wrote {png}' in printed
    redrawn = tmp_path / 'redrawn.png'
    assert expert_plot_main([str(out), str(redrawn)]) == 0 and redrawn.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(SystemExit, match='not a readable result'):
        expert_plot_main([str(png), str(redrawn)])


def test_expert_curves_draw_refinements_and_an_episode_without_any(tmp_path):
    """The refinement panel draws curves of any length, and says so when no plan was refined."""
    episode = {'success': False, 'state_costs': [1.0, 0.5, 0.4], 'label_times_s': [0.1, 0.2]}
    result = {'task': 'spatula_flipping', 'episodes': 1, 'seed': 0, 'success_rate': 0.0,
              'random_action_fraction': 0.1, 'per_episode': [episode]}
    for curves in ([[2.0, 1.5, 1.0], [1.0, 0.9]], []):
        out = plot_expert({**result, 'refinement_costs': curves}, tmp_path / f'{len(curves)}.png')
        assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_refinement_gains_count_the_best_plan_against_its_start():
    curves = [[1.0, 0.5, 0.8], [2.0, 1.99], [1.0, 0.95], [1.0, 3.0], []]    # best 0.5, 0.995, 0.95, 1.0
    assert refinement_gains(curves) == {'refinements_lowering_1pct': 2, 'refinements_lowering_10pct': 1}
