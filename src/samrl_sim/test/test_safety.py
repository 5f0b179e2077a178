"""Command validation: pure checks, and the world does not move on a rejected command."""
import math

import numpy as np
import pytest

from samrl_description.geometry import look_at
from samrl_sim.commands import CameraPoseGoal, EeDeltaCommand
from samrl_sim.safety import (
    MAX_ROTATION_PER_STEP_RAD,
    MAX_TRANSLATION_PER_STEP_M,
    validate_camera_goal,
    validate_ee_delta,
)

TCP_M = (0.5, 0.0, 0.3)


def test_valid_delta_is_accepted():
    assert validate_ee_delta(EeDeltaCommand((0.01, -0.01, 0.0), (0.0, 0.05, 0.0), 0.04), TCP_M).ok


@pytest.mark.parametrize('command, words', [
    (EeDeltaCommand((math.nan, 0, 0), (0, 0, 0), 0.04), 'NaN'),
    (EeDeltaCommand((0, 0, 0), (0, math.inf, 0), 0.04), 'NaN or inf'),
    (EeDeltaCommand((0, 0, 0), (0, 0, 0), math.nan), 'gripper'),
    (EeDeltaCommand((0, 0), (0, 0, 0), 0.04), 'entries'),
    (EeDeltaCommand(('a', 0, 0), (0, 0, 0), 0.04), 'not numeric'),
    (EeDeltaCommand((2 * MAX_TRANSLATION_PER_STEP_M, 0, 0), (0, 0, 0), 0.04), 'translation'),
    (EeDeltaCommand((0, 0, 0), (0, 0, -2 * MAX_ROTATION_PER_STEP_RAD), 0.04), 'rotation'),
    (EeDeltaCommand((0, 0, 0), (0, 0, 0), 0.2), 'gripper width'),
])
def test_bad_deltas_are_rejected_with_a_reason(command, words):
    result = validate_ee_delta(command, TCP_M)
    assert not result.ok and words in result.reason


def test_delta_leaving_the_workspace_is_rejected():
    result = validate_ee_delta(EeDeltaCommand((0, 0, -0.015), (0, 0, 0), 0.04), (0.5, 0.0, 0.01))
    assert not result.ok and 'workspace' in result.reason


def test_camera_goals():
    view = look_at((0.8, -0.3, 0.4), (0.5, 0.0, 0.05))
    assert validate_camera_goal(CameraPoseGoal(view.position, view.quaternion)).ok
    assert 'norm' in validate_camera_goal(CameraPoseGoal(view.position, 2 * view.quaternion)).reason
    assert 'NaN' in validate_camera_goal(CameraPoseGoal((math.nan, 0, 0.4), view.quaternion)).reason
    assert 'workspace' in validate_camera_goal(CameraPoseGoal((0.5, 0.0, -0.2), view.quaternion)).reason
    assert 'reach' in validate_camera_goal(CameraPoseGoal((1.1, 0.8, 0.9), view.quaternion)).reason


@pytest.mark.parametrize('command', [
    EeDeltaCommand((math.nan, 0, 0), (0, 0, 0), 0.02),
    EeDeltaCommand((0.5, 0, 0), (0, 0, 0), 0.02),
    EeDeltaCommand((0, 0, 0), (0, 0, 0), -1.0),
])
def test_world_ignores_rejected_commands(peg_world, command):
    peg_world.reset(seed=0)
    before = peg_world.joint_states().positions.copy()
    result = peg_world.step(command)
    assert not result.accepted and result.reason
    assert result.state.step == 0
    assert np.array_equal(peg_world.joint_states().positions, before)


def test_world_ignores_a_goal_outside_the_workspace(peg_world):
    peg_world.reset(seed=0)
    before = peg_world.joint_states().positions.copy()
    assert not peg_world.move_camera(CameraPoseGoal((3.0, 0.0, 0.5), (0, 0, 0, 1))).ok
    assert np.array_equal(peg_world.joint_states().positions, before)
