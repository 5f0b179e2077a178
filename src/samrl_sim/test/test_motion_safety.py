"""Motion safety: World.step and the env bound what the arm actually does, not only what was commanded."""
import re

import numpy as np
import pybullet as pb
import pytest

import samrl_sim.world as world_module
from samrl_description.geometry import Pose
from samrl_sim.commands import EeDeltaCommand
from samrl_sim.envs import SamrlEnv
from samrl_sim.motion_check import check_env, check_world
from samrl_sim.panda import ARM_MAX_VELOCITY_RAD_S, TCP_LINK
from samrl_sim.safety import MAX_ROTATION_PER_STEP_RAD, MAX_TRANSLATION_PER_STEP_M, ValidationResult
from samrl_sim.tasks import TASK_NAMES
from samrl_sim.world import JOINT_SPEED_DIVISORS, World

STRESS_COMMANDS = 300               # per task and interface: ~3 s through the World, ~6 s through the env
SMALL_IMAGE = (16, 16)              # env observations are rendered every step; small is fast
PUSH_FORCE_N = 150.0                # sideways shove on the tool: the wrist gives way (~65 mm in a step)
STEP_M = MAX_TRANSLATION_PER_STEP_M


def _ik_aiming_off(world: World, offset_m):
    """An IK that solves for a target `offset_m` away from the commanded one (a solver gone wrong)."""
    solve = world.panda.solve_ik_result
    return lambda target: solve(Pose(target.position + np.asarray(offset_m), target.quaternion))


def test_in_limit_command_moves_the_tool_as_commanded(peg_world):
    peg_world.reset(seed=0)
    result = peg_world.step(EeDeltaCommand((0.01, -0.005, 0.0), (0.0, 0.0, 0.03), peg_world.task.gripper_width_m))
    assert result.accepted and not result.stopped and not result.shortened
    assert np.allclose(result.motion.translation_m, [0.01, -0.005, 0.0], atol=0.001)
    assert np.allclose(result.motion.rotation_rad, [0.0, 0.0, 0.03], atol=0.005)


def test_ik_solution_missing_the_target_is_rejected_and_nothing_moves(peg_world, monkeypatch):
    peg_world.reset(seed=0)
    monkeypatch.setattr(peg_world.panda, 'solve_ik_result', _ik_aiming_off(peg_world, (0.0, 0.01, 0.0)))
    before = peg_world.joint_states().positions.copy()
    result = peg_world.step(EeDeltaCommand((0.01, 0.0, 0.0), (0.0, 0.0, 0.0), peg_world.task.gripper_width_m))
    assert not result.accepted and 'unreachable' in result.reason and result.state.step == 0
    assert np.array_equal(peg_world.joint_states().positions, before)


def test_ik_solution_beyond_the_step_limit_is_shortened(peg_world, monkeypatch):
    peg_world.reset(seed=0)
    monkeypatch.setattr(peg_world.panda, 'solve_ik_result', _ik_aiming_off(peg_world, (0.0025, 0.0, 0.0)))
    result = peg_world.step(EeDeltaCommand((STEP_M, 0.0, 0.0), (0.0, 0.0, 0.0), peg_world.task.gripper_width_m))
    assert result.accepted and 'scaled to' in result.shortened
    assert 0.9 * STEP_M < result.motion.translation_m[0] <= STEP_M


def test_joint_steps_are_slowed_to_the_rated_joint_speeds(peg_world):
    start = peg_world.panda.arm_joint_positions()
    goal, why = peg_world._within_joint_speeds(start, start + 1.0)
    largest = np.asarray(ARM_MAX_VELOCITY_RAD_S) / peg_world.config.control_rate_hz / np.asarray(JOINT_SPEED_DIVISORS)
    assert 'joint speed' in why and np.all(np.abs(goal - start) <= largest + 1e-12)
    assert peg_world._within_joint_speeds(start, start + 0.5 * largest) == (pytest.approx(start + 0.5 * largest), '')


def test_shoved_arm_step_is_refused_and_undone(peg_world, monkeypatch):
    """A shove moves the tool ~65 mm whatever part of the step is tried: the command is refused with
    the measured reason, and the world is back where it was (arm, motor targets, step count)."""
    peg_world.reset(seed=0)
    panda, client = peg_world.panda, peg_world.client
    before, targets = panda.arm_joint_positions(), panda.targets()

    def shove():
        pb.applyExternalForce(panda.body, TCP_LINK, [0.0, PUSH_FORCE_N, 0.0], panda.tcp_pose().position.tolist(),
                              pb.WORLD_FRAME, physicsClientId=client)

    monkeypatch.setattr(peg_world.task, 'after_substep', shove)
    result = peg_world.step(EeDeltaCommand.zero(peg_world.task.gripper_width_m))
    assert not result.accepted and 'every previewed part' in result.reason and 'tool motion' in result.reason
    assert result.state.step == 0 and np.array_equal(panda.arm_joint_positions(), before)
    assert np.array_equal(panda.targets()[0], targets[0])
    monkeypatch.undo()
    peg_world.hold()
    assert np.max(np.abs(panda.arm_joint_positions() - before)) < 0.01     # the restored targets hold it


def test_step_out_of_bounds_in_preview_executes_a_shorter_part(peg_world, monkeypatch):
    peg_world.reset(seed=0)
    checks = []
    measured = world_module.check_measured_step

    def first_preview_fails(start, end, limits):
        checks.append(measured(start, end, limits))
        return ValidationResult.reject('tool motion (test)') if len(checks) == 1 else checks[-1]

    monkeypatch.setattr(world_module, 'check_measured_step', first_preview_fails)
    result = peg_world.step(EeDeltaCommand((STEP_M, 0.0, 0.0), (0.0, 0.0, 0.0), peg_world.task.gripper_width_m))
    assert result.accepted and 'previewed at 1 of the step' in result.shortened and len(checks) == 2
    assert result.state.step == 1 and 0.4 * STEP_M < result.motion.translation_m[0] < 0.6 * STEP_M


@pytest.mark.parametrize('task', TASK_NAMES)
def test_stress_through_the_world(task):
    world = World(task)
    report = check_world(world, STRESS_COMMANDS, seed=0)
    world.close()
    _assert_safe(report)


@pytest.mark.parametrize('task', TASK_NAMES)
def test_stress_through_the_env(task):
    env = SamrlEnv(task, image_size=SMALL_IMAGE)
    report = check_env(env, STRESS_COMMANDS, seed=0)
    env.close()
    _assert_safe(report)


def _assert_safe(report):
    assert report.commands == STRESS_COMMANDS and report.accepted > STRESS_COMMANDS // 3
    assert report.accepted + sum(report.rejected.values()) == report.commands
    assert report.empty_reasons == 0 and all(reason for reason in report.rejected)
    assert report.violations == 0, report.as_dict()
    assert report.worst_translation_m <= MAX_TRANSLATION_PER_STEP_M
    assert report.worst_rotation_rad <= MAX_ROTATION_PER_STEP_RAD


# --- gymnasium actions ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def env():
    env = SamrlEnv('peg_insertion', image_size=SMALL_IMAGE)
    env.reset(seed=0)
    yield env
    env.close()


@pytest.mark.parametrize('action, words', [
    (np.zeros(6), 'shape (7,)'),
    (np.zeros(8), 'got shape (8,)'),
    (np.zeros((1, 7)), 'got shape (1, 7)'),
    (0.5, 'got shape ()'),
    (['a'] * 7, 'numeric'),
    ([None] * 7, 'numeric'),
    (np.zeros(7, dtype=bool), 'numeric'),
    (np.zeros(7, dtype=complex), 'numeric'),
    ([0.0] * 6 + [np.nan], 'finite'),
    ([np.inf] + [0.0] * 6, 'finite'),
])
def test_env_refuses_malformed_actions(env, action, words):
    step = env.world.task_state().step
    with pytest.raises(ValueError, match=re.escape(words)):
        env.step(action)
    assert env.world.task_state().step == step


def test_env_takes_any_numeric_seven_vector(env):
    for action in ([0, 0, 0, 0, 0, 0, 1], np.zeros(7, dtype=np.float64), np.zeros(7, dtype=np.float32)):
        _, _, _, _, info = env.step(action)
        assert {'command_rejected', 'command_shortened', 'command_stopped'} <= set(info)
