"""The Franka adapter's core: targets from deltas, and every limit with its reason."""

from __future__ import annotations

import math

import numpy as np
import pytest
from samrl_hardware.franka import FrankaAdapterCore, FrankaLimits
from samrl_hardware.guards import ArmMode

from samrl_description.geometry import Pose, axis_angle_to_quat, quat_multiply
from samrl_sim.commands import EeDeltaCommand

START = Pose(np.array([0.5, 0.0, 0.3]), np.array([1.0, 0.0, 0.0, 0.0]))
PERIOD_S = 0.1
STEP = EeDeltaCommand((0.01, 0.0, -0.005), (0.0, 0.0, 0.05), 0.04)


def _core(**limits) -> FrankaAdapterCore:
    core = FrankaAdapterCore(FrankaLimits(**limits))
    core.on_state(START, 0.0)
    return core


def _follow(core, outcome, now_s):
    """A perfect arm: it reports the target as its pose."""
    core.on_state(outcome.target.pose, now_s)


def test_a_delta_becomes_a_tcp_target_in_the_base_frame():
    core = _core()
    outcome = core.on_command(STEP, 0.05)
    assert outcome.verdict.accepted and outcome.verdict.reason == ''
    target = outcome.target
    assert np.allclose(target.pose.position, [0.51, 0.0, 0.295])
    # rotation vector in the task frame, about the TCP: R_new = exp(r) R
    assert Pose(target.pose.position, target.pose.quaternion).is_close(
        Pose(np.array([0.51, 0.0, 0.295]), quat_multiply(axis_angle_to_quat([0.0, 0.0, 0.05]), START.quaternion)))
    assert np.allclose(target.linear_m_s, [0.1, 0.0, -0.05]) and np.allclose(target.angular_rad_s, [0.0, 0.0, 0.5])
    assert target.gripper_width_m == 0.04 and not target.hold
    assert core.mode is ArmMode.MOVING


def test_a_stream_continues_from_the_last_target_not_the_lagging_arm():
    core = _core()
    core.on_command(STEP, 0.05)
    second = core.on_command(STEP, 0.15)                 # the arm has not reported moving yet
    assert np.allclose(second.target.pose.position, [0.52, 0.0, 0.29])


@pytest.mark.parametrize('command, words', [
    (EeDeltaCommand((math.nan, 0, 0), (0, 0, 0), 0.04), 'translation contains NaN'),
    (EeDeltaCommand((0, 0, 0), (0, -math.inf, 0), 0.04), 'rotation contains NaN or inf'),
    (EeDeltaCommand((0.03, 0, 0), (0, 0, 0), 0.04), 'translation component 0.03 m exceeds the limit 0.02 m'),
    (EeDeltaCommand((0, 0, 0), (0.2, 0, 0), 0.04), 'rotation component 0.2 rad exceeds the limit 0.1 rad'),
    (EeDeltaCommand((0, 0, 0), (0, 0, 0), 0.09), 'gripper width 0.09 m outside'),
    (EeDeltaCommand((0, 0), (0, 0, 0), 0.04), 'translation has 2 entries, expected 3'),
    (EeDeltaCommand((1e308, 0, 0), (0, 0, 0), 0.04), 'exceeds the limit'),
])
def test_the_sim_bridges_checks_refuse_with_their_reason(command, words):
    outcome = _core().on_command(command, 0.05)
    assert not outcome.verdict.accepted and outcome.target is None
    assert words in outcome.verdict.reason


def test_the_workspace_box_is_enforced():
    core = _core()
    core.on_state(Pose(np.array([0.5, 0.0, 0.595]), START.quaternion), 0.0)
    outcome = core.on_command(EeDeltaCommand((0.0, 0.0, 0.01), (0, 0, 0), 0.04), 0.05)
    assert not outcome.verdict.accepted and 'outside the workspace' in outcome.verdict.reason


def test_a_burst_of_commands_is_refused_as_too_fast():
    core = _core()
    full = EeDeltaCommand((0.02, 0.02, 0.02), (0, 0, 0), 0.04)      # a full diagonal step, 34.6 mm
    verdicts = []
    for i in range(4):                                                # 1 ms apart
        outcome = core.on_command(full, 0.05 + 0.001 * i)
        verdicts.append(outcome.verdict)
        if outcome.target is not None:
            _follow(core, outcome, 0.05 + 0.001 * i)
    assert [v.accepted for v in verdicts] == [True, True, False, False]
    assert verdicts[2].reason.startswith('too fast: translation 0.03464 m exceeds')
    # at the control rate the same steps go through
    for i in range(10):
        outcome = core.on_command(EeDeltaCommand((0.02, 0.02, 0.02) if i % 2 else (-0.02, -0.02, -0.02), (0, 0, 0),
                                                 0.04), 0.2 + PERIOD_S * i)
        assert outcome.verdict.accepted, outcome.verdict.reason
        _follow(core, outcome, 0.2 + PERIOD_S * i)


def test_commands_need_a_fresh_measured_pose():
    assert FrankaAdapterCore().on_command(STEP, 0.0).verdict.reason == 'no measured TCP pose yet'
    core = _core()
    assert core.on_command(STEP, 0.5).verdict.reason == 'measured TCP pose is 0.500 s old (limit 0.2 s)'


def test_a_target_may_not_run_away_from_an_arm_that_does_not_follow():
    core = _core()
    now = 0.0
    for _ in range(3):
        now += PERIOD_S
        core.on_state(START, now)                               # blocked: the arm stays where it is
        outcome = core.on_command(EeDeltaCommand((0.02, 0.0, 0.0), (0, 0, 0), 0.04), now)
    assert not outcome.verdict.accepted
    assert outcome.verdict.reason.startswith('target would be 0.0600 m from the measured TCP (limit 0.05 m)')


def test_the_watchdog_holds_the_arm_and_the_next_stream_starts_from_the_measured_pose():
    core = _core(watchdog_timeout_s=0.3)
    core.on_command(STEP, 0.05)
    core.on_state(Pose(np.array([0.505, 0.0, 0.3]), START.quaternion), 0.1)   # half way there
    assert core.on_tick(0.3) is None
    hold = core.on_tick(0.36)
    assert hold.target.hold and np.allclose(hold.target.pose.position, [0.505, 0.0, 0.3])
    assert np.allclose(hold.target.linear_m_s, 0.0) and hold.target.gripper_width_m is None
    assert 'watchdog: no command for 0.3 s' in hold.verdict.reason and core.status.startswith('idle: watchdog')
    assert core.on_tick(0.5) is None                                          # held once
    core.on_state(Pose(np.array([0.505, 0.0, 0.3]), START.quaternion), 0.55)
    resumed = core.on_command(STEP, 0.6)
    assert resumed.verdict.accepted and np.allclose(resumed.target.pose.position, [0.515, 0.0, 0.295])


def test_a_stop_holds_the_arm_and_refuses_everything_until_an_explicit_reset():
    core = _core()
    core.on_command(STEP, 0.05)
    stop = core.on_stop(True, '/samrl/stop')
    assert stop.target.hold and core.mode is ArmMode.STOPPED
    assert core.on_stop(True, '/samrl/stop') is None                          # already stopped
    core.on_state(START, 0.1)
    refused = core.on_command(STEP, 0.1)
    assert refused.verdict.reason == 'stopped (stop requested on /samrl/stop); refused until reset'
    assert core.on_tick(1.0) is None                                          # nothing moves, not even a hold
    assert core.reset().reason.startswith('the stop topic still holds a stop: publish false on it first')
    assert core.on_stop(False, '/samrl/stop') is None
    core.on_state(START, 1.1)
    assert not core.on_command(STEP, 1.1).verdict.accepted                    # released is not reset
    assert core.reset().accepted and core.mode is ArmMode.IDLE
    assert core.on_command(STEP, 1.2).verdict.accepted
    assert core.reset().reason == 'not stopped: nothing to reset'


def test_time_must_not_go_back():
    core = _core()
    core.on_command(STEP, 0.1)
    assert core.on_command(STEP, 0.05).verdict.reason == 'time went back from 0.100000 s to 0.050000 s'
    assert 'not a finite number' in core.on_command(STEP, math.nan).verdict.reason


def test_a_malformed_measured_pose_is_ignored_with_its_reason():
    core = _core()
    verdict = core.on_state(Pose(np.array([math.nan, 0.0, 0.0]), START.quaternion), 0.05)
    assert not verdict.accepted and 'position must be 3 finite numbers' in verdict.reason
    assert np.allclose(core.measured.position, START.position)


@pytest.mark.parametrize('field', ['max_speed_m_s', 'watchdog_timeout_s', 'max_lead_m', 'command_period_s'])
@pytest.mark.parametrize('value', [0.0, -1.0, math.inf, math.nan])
def test_limits_must_be_finite_and_positive(field, value):
    with pytest.raises(ValueError, match=f'{field} must be a finite positive number'):
        FrankaLimits(**{field: value})
