"""The tasks judged in M agree with the PyBullet tasks, and their cost has correct gradients.

evaluate() in M is compared with the sim task's evaluate() on the states of a sim oracle episode
copied into M; the cost's gradient with respect to a short action sequence, through M's physics,
is compared with central finite differences.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from samrl_description.task_goals import (
    GRIPPER_WIDTH_RANGE_M,
    MAX_ROTATION_PER_STEP_RAD,
    MAX_TRANSLATION_PER_STEP_M,
    STEP_BUDGETS,
    TOOL_WORKSPACE_M,
)
from samrl_description.tasks import TASK_NAMES
from samrl_model.physics import body_pose, build_model, held_object_pose
from samrl_model.physics.sync import STATIC_OBJECTS
from samrl_model.sim_adapter import state_from_sim
from samrl_policy.expert import rollout
from samrl_policy.model_tasks import held_matrix, make_model_task, to_pose
from samrl_sim.oracles import make_oracle
from samrl_sim.safety import EeLimits
from samrl_sim.tasks import task_class
from samrl_sim.world import World

SEED = 7
DIAGNOSTIC_TOLERANCE = 1e-6          # m / rad: the same geometry from the same state
REWARD_TOLERANCE = 1e-3              # the reward scales depths by up to 2 / THROUGH_DEPTH_M = 200 per m
POSE_TOLERANCE = 1e-9
FD_STEP = 1e-6                       # normalised action units
GRADIENT_REL_TOLERANCE = 1e-3        # measured: 1e-8 (peg, spatula) to 8e-7 (thread); no contact on these plans
GRADIENT_HORIZON = 3                 # control steps
GRADIENT_ACTION = (0.3, -0.2, -0.4, 0.2, -0.1, 0.3)   # normalised, within the bounds


def _memory(task: str, world: World) -> dict:
    return {'max_lift_m': world.task.max_lift_m} if task == 'spatula_flipping' else {}


def _statics(world: World) -> dict:
    return {name: pose for name, pose in world.object_poses().items() if name in STATIC_OBJECTS}


def _assert_same(sim: dict, model: dict) -> None:
    assert model.keys() == sim.keys()
    for key, value in sim.items():
        if isinstance(value, bool):
            assert model[key] == value, key
        else:
            assert model[key] == pytest.approx(value, abs=DIAGNOSTIC_TOLERANCE), key


@pytest.mark.parametrize('task', TASK_NAMES)
def test_evaluate_agrees_with_the_pybullet_task_along_an_oracle_episode(task):
    """Every state of a successful oracle episode, copied into M, is judged as PyBullet judges it."""
    world = World(task)
    try:
        world.reset(seed=SEED)
        model = build_model(task)
        judged = make_model_task(model, _statics(world))
        oracle = make_oracle(task)
        oracle.reset(world)
        state = world.task_state()
        while not state.success and not state.truncated:
            state = world.step(oracle.act(world)).state
            model_info = judged.evaluate(state_from_sim(model, world), _memory(task, world))
            _assert_same(world.task.evaluate(), model_info)
            sim_reward = world.task.compute_dense_reward(world.task.evaluate())
            assert judged.reward(model_info) == pytest.approx(sim_reward, abs=REWARD_TOLERANCE)
        assert state.success
    finally:
        world.close()


@pytest.mark.parametrize('task', TASK_NAMES)
def test_torch_kinematics_match_nimbles_bodies(task):
    world = World(task)
    try:
        world.reset(seed=SEED)
        model = build_model(task)
        state = state_from_sim(model, world)
        judged = make_model_task(model, _statics(world))
    finally:
        world.close()
    assert to_pose(held_matrix(model, state)).is_close(held_object_pose(model, state), atol=POSE_TOLERANCE)
    if task == 'needle_threading':
        tip_link = judged.objects.thread.tip_links - 1
        nimble_link = body_pose(model, state, 'gripper', f'thread_link_{tip_link}')
        assert to_pose(judged.thread_links(state)[tip_link + 1]).is_close(nimble_link, atol=POSE_TOLERANCE)
    if task == 'spatula_flipping':
        assert to_pose(judged.pancake(state)).is_close(body_pose(model, state, 'pancake', 0), atol=POSE_TOLERANCE)


def test_shared_constants_are_the_simulators():
    """samrl_description.task_goals holds what samrl_sim's safety layer and tasks use."""
    limits = EeLimits()
    assert (MAX_TRANSLATION_PER_STEP_M, MAX_ROTATION_PER_STEP_RAD) == (limits.max_translation_m,
                                                                      limits.max_rotation_rad)
    assert TOOL_WORKSPACE_M == (limits.workspace.lower, limits.workspace.upper)
    assert GRIPPER_WIDTH_RANGE_M == (limits.gripper_min_m, limits.gripper_max_m)
    assert {task: task_class(task).max_episode_steps for task in TASK_NAMES} == STEP_BUDGETS


def _cost_of(judged, start: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return judged.cost(rollout(judged.model, start, actions), judged.initial_memory(start))


@pytest.mark.parametrize('task', TASK_NAMES)
def test_cost_gradient_matches_finite_differences(task):
    """d cost / d actions through M's physics, over a short plan from an episode's start."""
    world = World(task)
    try:
        world.reset(seed=SEED)
        model = build_model(task)
        start = state_from_sim(model, world, thread_rest_rad=getattr(world.task, 'bends', None))
        judged = make_model_task(model, _statics(world))
    finally:
        world.close()
    actions = torch.tensor([GRADIENT_ACTION] * GRADIENT_HORIZON, dtype=torch.float64, requires_grad=True)
    _cost_of(judged, start, actions).backward()
    analytic = actions.grad.flatten()
    numeric = torch.zeros_like(analytic)
    with torch.no_grad():
        for i in range(len(numeric)):
            step = torch.zeros_like(analytic)
            step[i] = FD_STEP
            plus = _cost_of(judged, start, actions + step.reshape(actions.shape))
            minus = _cost_of(judged, start, actions - step.reshape(actions.shape))
            numeric[i] = (plus - minus) / (2.0 * FD_STEP)
    assert torch.isfinite(analytic).all()
    assert numeric.norm() > 0.0
    assert float((analytic - numeric).norm() / numeric.norm()) < GRADIENT_REL_TOLERANCE


def test_cost_is_lowest_at_success():
    """The peg's cost falls along the oracle's successful episode: the expert descends towards success."""
    world = World('peg_insertion')
    try:
        world.reset(seed=SEED)
        model = build_model('peg_insertion')
        judged = make_model_task(model, _statics(world))
        oracle = make_oracle('peg_insertion')
        costs = [float(judged.state_cost(state_from_sim(model, world), {}))]
        while not world.step(oracle.act(world)).state.success:
            costs.append(float(judged.state_cost(state_from_sim(model, world), {})))
        costs.append(float(judged.state_cost(state_from_sim(model, world), {})))
    finally:
        world.close()
    assert costs[-1] < 0.5 * costs[0]
    assert np.argmin(costs) >= len(costs) - 2
