"""The Rizon adapter's core with fake planners: plan, check, execute, report, and every refusal's reason."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from samrl_hardware.fake_arm import KinematicPlanner
from samrl_hardware.guards import ArmMode
from samrl_hardware.rizon import CameraPlan, PlanningError, RizonAdapterCore
from samrl_hardware.stress import example_calibration

from samrl_description.geometry import Pose, look_at
from samrl_sim.commands import CameraPoseGoal

CALIBRATION = example_calibration()
START_CAMERA = look_at((0.55, -0.35, 0.55), (0.55, 0.0, 0.05))
TABLE_POINT = (0.55, 0.0, 0.05)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedPlanner(KinematicPlanner):
    """A kinematic planner whose next plan can be spoiled, or whose execution can hang."""

    def __init__(self, clock):
        base, hand_eye = CALIBRATION.rizon_base_in_world, CALIBRATION.hand_eye
        super().__init__(base.inverse() * START_CAMERA * hand_eye.inverse(), clock)
        self.spoil = None
        self.hang = False
        self.stopped = 0

    def plan(self, flange_goal):
        plan = super().plan(flange_goal)
        return self.spoil(plan) if self.spoil else plan

    def poll(self):
        return None if self.hang else super().poll()

    def stop(self):
        self.stopped += 1
        super().stop()


@pytest.fixture
def rig():
    clock = Clock()
    planner = ScriptedPlanner(clock)
    return RizonAdapterCore(planner, CALIBRATION), planner, clock


def _goal(eye, target=TABLE_POINT) -> CameraPoseGoal:
    pose = look_at(eye, target)
    return CameraPoseGoal(tuple(pose.position), tuple(pose.quaternion))


def _run_until_idle(core, clock, limit_s=30.0):
    verdict = None
    while core.mode is ArmMode.MOVING and clock.now < limit_s:
        clock.now += 0.05
        verdict = core.on_tick(clock.now) or verdict
    return verdict


def test_frames_round_trip():
    core = RizonAdapterCore(ScriptedPlanner(Clock()), CALIBRATION)
    assert core.camera_in_world(core.flange_in_base(START_CAMERA)).is_close(START_CAMERA, atol=1e-9)
    assert core.camera_in_world(core.planner.current_flange_pose()).is_close(START_CAMERA, atol=1e-9)


def test_a_goal_is_planned_checked_executed_and_reported(rig):
    core, planner, clock = rig
    goal = _goal((0.6, -0.3, 0.5))
    clock.now = 1.0
    outcome = core.on_goal(goal, clock.now)
    assert outcome.verdict.accepted and outcome.verdict.reason.startswith('executing a ')
    assert core.mode is ArmMode.MOVING
    verdict = _run_until_idle(core, clock)
    assert verdict.accepted and verdict.reason == 'reached the goal: motion complete'
    assert core.status == 'idle: reached the goal: motion complete'
    reached = core.camera_in_world(planner.current_flange_pose())
    assert reached.is_close(Pose.from_xyz_quat(goal.position_m, goal.quaternion_xyzw), atol=1e-6)


@pytest.mark.parametrize('goal, words', [
    (CameraPoseGoal((math.nan, 0.0, 0.5), (0, 0, 0, 1)), 'camera position contains NaN'),
    (CameraPoseGoal((0.5, 0.0, 0.5), (0, 0, 0, 2)), 'camera quaternion norm 2 is not 1'),
    (CameraPoseGoal((0.5, 0.0, 1.5), (0, 0, 0, 1)), 'outside the workspace'),
    (CameraPoseGoal((1.15, 0.85, 0.9), (0, 0, 0, 1)), 'beyond its reach'),
    (_goal((0.55, 0.15, 0.55)), 'camera step 0.500 m exceeds the limit 0.4 m'),
    (_goal((0.55, -0.35, 0.55), (0.55, -1.0, 0.55)), 'camera turn'),
])
def test_bad_goals_are_refused_with_their_reason_before_planning(rig, goal, words):
    core, planner, clock = rig
    planner.spoil = lambda plan: pytest.fail('planned a refused goal')
    outcome = core.on_goal(goal, 1.0)
    assert not outcome.verdict.accepted and words in outcome.verdict.reason, outcome.verdict.reason


def _shift(index, offset):
    def spoil(plan):
        poses = list(plan.flange_poses)
        poses[index] = Pose(poses[index].position + np.asarray(offset), poses[index].quaternion)
        return replace(plan, flange_poses=tuple(poses))
    return spoil


@pytest.mark.parametrize('spoil, words', [
    (lambda plan: replace(plan, times_s=tuple(t / 20 for t in plan.times_s)), 'the camera moves at'),
    (lambda plan: replace(plan, flange_poses=(plan.flange_poses[0], plan.flange_poses[-1]),
                          times_s=(0.0, plan.duration_s)), 'apart (at most 0.02 m'),
    (lambda plan: replace(plan, flange_poses=tuple(
        Pose(p.position - [0, 0, 1.2 * math.sin(math.pi * i / (len(plan.flange_poses) - 1))], p.quaternion)
        for i, p in enumerate(plan.flange_poses))), 'apart'),
    (_shift(-1, [0.0, 0.01, 0.0]), 'its end is 10.0 mm and 0.000 rad from the goal'),
    (_shift(0, [0.0, 0.01, 0.0]), 'its start is 10.0 mm and 0.000 rad from the measured flange'),
    (_shift(3, [math.nan, 0.0, 0.0]), 'waypoint 3: position must be 3 finite numbers'),
    (lambda plan: replace(plan, times_s=(0.0,) * len(plan.times_s)), 'waypoint times must be finite, start at 0'),
    (lambda plan: CameraPlan((), ()), '0 waypoints and 0 times'),
])
def test_bad_plans_are_refused_and_never_executed(rig, spoil, words):
    core, planner, clock = rig
    planner.spoil = spoil
    outcome = core.on_goal(_goal((0.6, -0.3, 0.5)), 1.0)
    assert not outcome.verdict.accepted and outcome.verdict.reason.startswith('plan refused: ')
    assert words in outcome.verdict.reason, outcome.verdict.reason
    assert core.mode is ArmMode.IDLE and planner._plan is None


def test_a_plan_leaving_the_box_is_refused_even_with_dense_waypoints(rig):
    core, planner, clock = rig

    def dip(plan):      # the camera dips below the box floor (z 0.05 m) on the way
        poses = [Pose(p.position, p.quaternion) for p in plan.flange_poses]
        middle = len(poses) // 2
        dense = [Pose(poses[middle].position - [0, 0, 0.01 * k], poses[middle].quaternion) for k in range(60)]
        back = list(reversed(dense))
        new = poses[:middle] + dense + back + poses[middle + 1:]
        return CameraPlan(tuple(new), tuple(0.1 * i for i in range(len(new))))
    planner.spoil = dip
    outcome = core.on_goal(_goal((0.6, -0.3, 0.5)), 1.0)
    assert 'puts the camera at' in outcome.verdict.reason and 'outside the workspace' in outcome.verdict.reason


def test_planning_failures_are_reported(rig):
    core, planner, clock = rig

    def fail(plan):
        raise PlanningError('no collision-free path')
    planner.spoil = fail
    assert core.on_goal(_goal((0.6, -0.3, 0.5)), 1.0).verdict.reason == 'planning failed: no collision-free path'

    def silent(plan):
        raise PlanningError()
    planner.spoil = silent
    assert core.on_goal(_goal((0.6, -0.3, 0.5)), 2.0).verdict.reason == 'planning failed: no reason given'


def test_a_goal_while_moving_is_refused_as_busy(rig):
    core, planner, clock = rig
    assert core.on_goal(_goal((0.6, -0.3, 0.5)), 1.0).verdict.accepted
    busy = core.on_goal(_goal((0.55, -0.3, 0.5)), 1.01)
    assert busy.verdict.reason == 'busy: the previous camera motion is still executing'


def test_the_watchdog_stops_a_motion_that_overruns(rig):
    core, planner, clock = rig
    planner.hang = True
    clock.now = 1.0
    plan = core.on_goal(_goal((0.6, -0.3, 0.5)), clock.now).plan
    deadline = clock.now + plan.duration_s + core.limits.watchdog_timeout_s
    verdict = _run_until_idle(core, clock)
    assert clock.now > deadline and clock.now - deadline <= 0.05 + 1e-9
    assert verdict.reason.startswith(f'watchdog: the motion did not finish within its planned {plan.duration_s:.2f} s')
    assert planner.stopped == 1 and core.mode is ArmMode.IDLE


def test_a_stop_halts_the_motion_and_refuses_goals_until_reset(rig):
    core, planner, clock = rig
    clock.now = 1.0
    core.on_goal(_goal((0.6, -0.3, 0.5)), clock.now)
    clock.now = 1.2
    verdict = core.on_stop(True, '/samrl/stop')
    assert verdict.reason == 'stop requested on /samrl/stop' and planner.stopped == 1
    assert core.mode is ArmMode.STOPPED and core.status == 'stopped: stop requested on /samrl/stop'
    refused = core.on_goal(_goal((0.55, -0.3, 0.5)), 2.0)
    assert refused.verdict.reason == 'stopped (stop requested on /samrl/stop); refused until reset'
    assert not core.reset().accepted
    core.on_stop(False, '/samrl/stop')
    assert core.reset().accepted
    assert core.on_goal(_goal((0.55, -0.3, 0.5)), 3.0).verdict.accepted


def test_a_failed_execution_is_reported_with_its_reason(rig):
    core, planner, clock = rig
    planner.poll = lambda: (False, 'controller aborted: path tolerance violated')
    core.on_goal(_goal((0.6, -0.3, 0.5)), 1.0)
    verdict = core.on_tick(1.05)
    assert not verdict.accepted and verdict.reason == 'execution failed: controller aborted: path tolerance violated'
    assert core.status.startswith('idle: execution failed')


def test_an_unknown_arm_state_refuses_goals(rig):
    core, planner, clock = rig
    planner.current_flange_pose = lambda: None
    assert 'state is unknown' in core.on_goal(_goal((0.6, -0.3, 0.5)), 1.0).verdict.reason


def test_reach_is_measured_from_this_cells_shoulder():
    shoulder = np.asarray(RizonAdapterCore(ScriptedPlanner(Clock()), CALIBRATION).limits.camera.shoulder_position_m)
    assert np.allclose(shoulder, [0.55, -0.65, 0.365])         # the simulation's, since the example is the sim's cell
