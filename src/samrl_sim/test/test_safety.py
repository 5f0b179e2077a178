"""Command validation: pure checks, and the world does not move on a rejected command."""
import math

import numpy as np
import pytest

from samrl_description.geometry import Pose, axis_angle_to_quat, look_at
from samrl_sim.commands import CameraPoseGoal, EeDeltaCommand
from samrl_sim.safety import (
    IK_POSITION_TOLERANCE_M,
    MAX_ROTATION_PER_STEP_RAD,
    MAX_TRANSLATION_PER_STEP_M,
    EeLimits,
    ToolMotion,
    WorkspaceBox,
    check_ik_residual,
    check_tool_motion,
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


def test_a_tool_outside_the_workspace_may_only_come_nearer():
    outside = (0.5, 0.0, -0.03)                    # pushed 30 mm below the box: more than one step
    assert validate_ee_delta(EeDeltaCommand((0, 0, 0.02), (0, 0, 0), 0.04), outside).ok
    assert 'workspace' in validate_ee_delta(EeDeltaCommand((0.01, 0, 0), (0, 0, 0), 0.04), outside).reason
    assert 'workspace' in validate_ee_delta(EeDeltaCommand((0, 0, -0.01), (0, 0, 0), 0.04), outside).reason


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


def _pose(position, rotation_rad=(0.0, 0.0, 0.0)) -> Pose:
    return Pose(np.asarray(position, dtype=float), axis_angle_to_quat(rotation_rad))


def test_tool_motion_has_the_components_of_the_command_it_executes():
    start = _pose(TCP_M, (0.3, 0.0, 0.0))
    rotation = np.array([0.02, -0.05, 0.08])
    turned = Pose(np.zeros(3), axis_angle_to_quat(rotation)).compose(start)      # R_end = exp(rotation) R_start
    end = Pose(start.position + [0.01, 0.0, -0.02], turned.quaternion)
    motion = ToolMotion.between(start, end)
    assert np.allclose(motion.translation_m, [0.01, 0.0, -0.02]) and np.allclose(motion.rotation_rad, rotation)
    assert motion.limit_ratio(EeLimits()) == pytest.approx(1.0)      # the -0.02 m component is at its limit


def test_workspace_excursion():
    box = WorkspaceBox((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert box.excursion_m(np.array([0.5, 0.5, 0.5])) == 0.0
    assert box.excursion_m(np.array([0.5, 1.003, -0.001])) == pytest.approx(0.003)


def test_ik_residual_beyond_tolerance_is_unreachable():
    target = _pose(TCP_M)
    assert check_ik_residual(_pose((0.5, 0.0, 0.3 + 0.5 * IK_POSITION_TOLERANCE_M)), target).ok
    result = check_ik_residual(_pose((0.5, 0.0, 0.3 + 2 * IK_POSITION_TOLERANCE_M)), target)
    assert not result.ok and 'unreachable' in result.reason and 'mm' in result.reason
    assert not check_ik_residual(_pose(TCP_M, (0.0, 0.0, 0.2)), target).ok


@pytest.mark.parametrize('end, rotation, words', [
    ((0.5, 0.0, 0.322), (0, 0, 0), 'tool motion'),
    ((0.5, 0.0, 0.3), (0, 0.12, 0), 'tool rotation'),
    ((0.5, 0.0, 0.3), (0, 0, 0), ''),
])
def test_tool_motion_bounds(end, rotation, words):
    result = check_tool_motion(ToolMotion.between(_pose(TCP_M), _pose(end, rotation)), np.array(end), EeLimits())
    assert result.ok == (not words) and words in result.reason


def test_tool_motion_tolerances_and_workspace():
    motion = ToolMotion(np.array([0.021, 0.0, 0.0]), np.zeros(3))
    inside, outside = np.array([0.5, 0.0, 0.3]), np.array([0.5, 0.0, -0.002])
    assert not check_tool_motion(motion, inside, EeLimits()).ok
    assert check_tool_motion(motion, inside, EeLimits(), translation_tolerance_m=0.002).ok
    still = ToolMotion(np.zeros(3), np.zeros(3))
    assert 'outside the workspace' in check_tool_motion(still, outside, EeLimits()).reason
    assert check_tool_motion(still, outside, EeLimits(), workspace_tolerance_m=0.003).ok
