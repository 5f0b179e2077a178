"""policy_core: the actor of a run directory turns M's state into a bounded end-effector command."""
import json
import math

import numpy as np
import pytest
import torch

from samrl_common import msgs
from samrl_common.conversions import pose_msg
from samrl_description.default_views import default_camera_pose
from samrl_description.geometry import Pose
from samrl_description.task_goals import MAX_ROTATION_PER_STEP_RAD, MAX_TRANSLATION_PER_STEP_M
from samrl_description.tasks import GRIPPER_WIDTHS_M, NOMINAL_TCP, nominal_scene, tool_pose
from samrl_policy.checkpoints import save_network
from samrl_policy.learn_at_sim import load_policies
from samrl_policy.model_env import PROPRIO_SIZE
from samrl_policy.networks import Actor, NetworkConfig, QNetwork
from samrl_policy.policy_core import InputError, PolicyCore, checked_progress, image_size_of

torch.set_num_threads(1)     # the test machines have 2 cores shared with other jobs
TASK = 'peg_insertion'
TINY = NetworkConfig(proprio_dim=PROPRIO_SIZE, encoder='pooled', channels=(4, 8), feature_dim=16, hidden=(32,))
IMAGE_SIZE = (64, 64)


def write_run(run_dir, config=TINY):
    """A run directory as load_policies reads it, with untrained networks."""
    torch.manual_seed(0)
    for name, network in (('actor.pt', Actor(config)), ('fixed_actor.pt', Actor(config)), ('q.pt', QNetwork(config))):
        save_network(run_dir / name, network, {'command': 'test'})
    (run_dir / 'actor').mkdir()
    (run_dir / 'actor' / 'config.json').write_text(json.dumps({'image_size': list(IMAGE_SIZE)}))
    return run_dir


def model_state(task=TASK, **changes):
    """samrl_interfaces/ModelState of the task's nominal scene, as model_node publishes it."""
    scene = nominal_scene(task)
    message = msgs.samrl_interfaces.msg.ModelState(
        task=task, object_names=list(scene), object_poses=[pose_msg(p.pose) for p in scene.values()],
        thread_joint_angles=[float(a) for p in scene.values() if p.joint_angles for a in p.joint_angles], loss=0.0)
    for name, value in changes.items():
        setattr(message, name, value)
    return message


@pytest.fixture(scope='module')
def core(tmp_path_factory):
    run_dir = write_run(tmp_path_factory.mktemp('run'))
    actor = load_policies(run_dir).actor
    assert image_size_of(run_dir, actor) == IMAGE_SIZE
    return PolicyCore(TASK, actor, image_size_of(run_dir, actor))


def test_a_model_state_gives_a_command_within_the_step_limits(core):
    command = core.act(model_state(), tool_pose(*NOMINAL_TCP[TASK]), default_camera_pose(TASK), 0.25)
    assert np.all(np.abs(command.translation_m) <= MAX_TRANSLATION_PER_STEP_M + 1e-12)
    assert np.all(np.abs(command.rotation_rad) <= MAX_ROTATION_PER_STEP_RAD + 1e-12)
    assert command.gripper_width_m == GRIPPER_WIDTHS_M[TASK]
    assert len(command.action) == 7 and all(-1.0 <= a <= 1.0 for a in command.action)
    assert set(command.timings_s) == {'render', 'actor', 'command'}


def test_the_render_is_what_the_actor_was_trained_on(core):
    observation = core.view.observe(nominal_scene(TASK), tool_pose(*NOMINAL_TCP[TASK]), 0.5,
                                    torch.as_tensor(default_camera_pose(TASK).as_matrix()))
    assert observation.image.shape == (5, *IMAGE_SIZE) and observation.proprio.shape == (PROPRIO_SIZE,)
    assert observation.image[4].max() > 0.5, 'the target (hole block) is masked in the default view'
    assert observation.proprio[-1] == pytest.approx(0.5)


@pytest.mark.parametrize('change, reason', [
    ({'task': 'needle_threading'}, 'expected'),
    ({'object_names': ['peg']}, 'poses'),
    ({'object_names': ['peg', 'spatula']}, 'not distinct objects'),
    ({'object_names': ['peg', 'peg']}, 'not distinct objects'),
])
def test_a_malformed_model_state_is_refused_with_a_reason(core, change, reason):
    with pytest.raises(InputError, match=reason):
        core.act(model_state(**change), tool_pose(*NOMINAL_TCP[TASK]), default_camera_pose(TASK), 0.0)


def test_non_finite_poses_and_progress_are_refused(core):
    state = model_state()
    state.object_poses[0].position.x = math.nan
    with pytest.raises(InputError, match='peg pose'):
        core.act(state, tool_pose(*NOMINAL_TCP[TASK]), default_camera_pose(TASK), 0.0)
    zero_quaternion = Pose(np.zeros(3), np.zeros(4))
    with pytest.raises(InputError, match='camera pose'):
        core.act(model_state(), tool_pose(*NOMINAL_TCP[TASK]), zero_quaternion, 0.0)
    with pytest.raises(InputError, match='progress'):
        core.act(model_state(), tool_pose(*NOMINAL_TCP[TASK]), default_camera_pose(TASK), math.nan)
    with pytest.raises(InputError, match='budget'):
        checked_progress(3, 0)


@pytest.mark.parametrize('distance_m', [1e6, 1e308])
def test_poses_far_outside_the_cell_are_refused_before_rendering(core, distance_m):
    """A scene a million metres wide fails inside Mitsuba (found by `samrl fuzz viewpoint_node`)."""
    state = model_state()
    state.object_poses[0].position.x = distance_m
    with pytest.raises(InputError, match='peg pose: .* more than 10 m'):
        core.act(state, tool_pose(*NOMINAL_TCP[TASK]), default_camera_pose(TASK), 0.0)
    far = Pose(np.array([0.0, distance_m, 0.5]), np.array([0.0, 0.0, 0.0, 1.0]))
    with pytest.raises(InputError, match='tool pose: .* more than 10 m'):
        core.act(model_state(), far, default_camera_pose(TASK), 0.0)
    with pytest.raises(InputError, match='camera pose: .* more than 10 m'):
        core.act(model_state(), tool_pose(*NOMINAL_TCP[TASK]), far, 0.0)


def test_needle_threading_states_carry_the_thread_angles(tmp_path):
    run_dir = write_run(tmp_path)
    core = PolicyCore('needle_threading', load_policies(run_dir).actor, IMAGE_SIZE)
    with pytest.raises(InputError, match='thread_joint_angles'):
        core.act(model_state('needle_threading', thread_joint_angles=[]), tool_pose(*NOMINAL_TCP['needle_threading']),
                 default_camera_pose('needle_threading'), 0.0)
    command = core.act(model_state('needle_threading'), tool_pose(*NOMINAL_TCP['needle_threading']),
                       default_camera_pose('needle_threading'), 0.0)
    assert np.all(np.abs(command.translation_m) <= MAX_TRANSLATION_PER_STEP_M + 1e-12)


# --- the nodes as processes ---------------------------------------------------------------------------

START_TIMEOUT_S = 60.0          # the bridge, two nodes loading torch and Mitsuba, on 2 busy cores
COMMANDS = 3


@pytest.mark.processes
@pytest.mark.timeout(3 * START_TIMEOUT_S)
def test_the_nodes_turn_the_worlds_ticks_and_ms_state_into_commands_and_view_steps(tmp_path):
    from samrl_common.runtime import QOS_LATCHED
    from samrl_common.testing import node_graph

    (tmp_path / 'run').mkdir()
    run_dir = write_run(tmp_path / 'run')
    with node_graph(tmp_path, 'policy_test') as (start, node, _):
        bridge = start('samrl_sim.bridge_node', f'task:={TASK}', 'camera_rate_hz:=1.0', 'image_width:=32',
                       'image_height:=32')
        policy = start('samrl_policy.policy_node', f'task:={TASK}', f'run_dir:={run_dir}')
        viewpoint = start('samrl_viewpoint.viewpoint_node', f'task:={TASK}', f'run_dir:={run_dir}', 'rate:=2.0')
        state_pub = node.create_publisher('samrl_interfaces/msg/ModelState', '/samrl/model/state', QOS_LATCHED)
        state_pub.publish(model_state())                 # M's nominal state, as model_node publishes it
        commands, goals = [], []
        node.create_subscription('samrl_interfaces/msg/EndEffectorCommand', '/samrl/ee_command', commands.append)
        node.create_subscription('geometry_msgs/msg/PoseStamped', '/samrl/camera_goal', goals.append)
        assert node.spin_until(lambda: len(commands) >= COMMANDS, START_TIMEOUT_S), policy.output()[-3000:]
        assert viewpoint.wait_for_output('view step ', START_TIMEOUT_S), viewpoint.output()[-3000:]
        for command in commands:
            t, r = command.translation, command.rotation
            assert command.header.frame_id == 'world'
            assert np.all(np.abs([t.x, t.y, t.z]) <= MAX_TRANSLATION_PER_STEP_M + 1e-9)
            assert np.all(np.abs([r.x, r.y, r.z]) <= MAX_ROTATION_PER_STEP_RAD + 1e-9)
        assert all(goal.header.frame_id == 'world' for goal in goals)
        assert 'render' in policy.output() and policy.alive() and viewpoint.alive()
        # Stopped as `samrl launch` stops them (SIGINT), each logs its summary on the way out.
        for process, summary in ((policy, 'stage times per control step over'),
                                 (viewpoint, 'stage times per view step over'), (bridge, 'command latency over')):
            process.stop()
            assert summary in process.output(), process.output()[-3000:]


LOCKSTEP_STEPS = 3


@pytest.mark.processes
@pytest.mark.timeout(3 * START_TIMEOUT_S)
def test_in_lockstep_each_control_step_is_one_view_step_then_one_command(tmp_path):
    """Algorithm 1 one step at a time: the world steps only on a command, the view step answers the step's
    first frame and the actor the frame after the camera goal. The test node stands in for model_node:
    it answers each frame with M's nominal state stamped as that frame."""
    from samrl_common.runtime import QOS_LATCHED, QOS_SENSOR_DATA
    from samrl_common.testing import node_graph
    from samrl_description.names import COLOR_TOPIC

    (tmp_path / 'run').mkdir()
    run_dir = write_run(tmp_path / 'run')
    with node_graph(tmp_path, 'lockstep_test') as (start, node, _):
        ticks, commands, goals, frames = [], [], [], []
        state_pub = node.create_publisher('samrl_interfaces/msg/ModelState', '/samrl/model/state', QOS_LATCHED)

        def on_frame(image):
            frames.append(image.header.stamp)
            state = model_state()
            state.header.stamp = image.header.stamp
            state_pub.publish(state)

        node.create_subscription('sensor_msgs/msg/Image', COLOR_TOPIC, on_frame, QOS_SENSOR_DATA)
        node.create_subscription('samrl_interfaces/msg/TaskState', '/samrl/task_state', ticks.append)
        node.create_subscription('samrl_interfaces/msg/EndEffectorCommand', '/samrl/ee_command', commands.append)
        node.create_subscription('geometry_msgs/msg/PoseStamped', '/samrl/camera_goal', goals.append)
        policy = start('samrl_policy.policy_node', f'task:={TASK}', f'run_dir:={run_dir}', 'lockstep:=true')
        viewpoint = start('samrl_viewpoint.viewpoint_node', f'task:={TASK}', f'run_dir:={run_dir}', 'lockstep:=true')
        bridge = start('samrl_sim.bridge_node', f'task:={TASK}', 'image_width:=32', 'image_height:=32',
                       'lockstep:=true', 'lockstep_repeat_s:=2.0')
        assert node.spin_until(lambda: len(commands) >= LOCKSTEP_STEPS, START_TIMEOUT_S), \
            policy.output()[-2000:] + viewpoint.output()[-2000:] + bridge.output()[-2000:]
        stamps = [stamp_to_ns(c.header.stamp) for c in commands]          # the ticks answered
        goal_ns, frame_ns = [stamp_to_ns(g.header.stamp) for g in goals], [stamp_to_ns(f) for f in frames]
        assert len(set(stamps)) == len(stamps)                             # no tick answered twice
        steps = {stamp_to_ns(t.header.stamp): t.step for t in ticks}
        assert [steps[s] for s in stamps[:LOCKSTEP_STEPS]] == list(range(LOCKSTEP_STEPS))   # a step per command
        for tick, next_tick in zip(stamps, stamps[1:]):
            in_step = [g for g in goal_ns if tick <= g < next_tick]
            assert len(in_step) == 1                                       # one view step per control step
            assert any(in_step[0] < f < next_tick for f in frame_ns)       # then a frame from the view
        assert 'lock-step' in bridge.output() and policy.alive() and viewpoint.alive()


def stamp_to_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def test_the_actor_on_the_worlds_truth_commands_what_policy_node_would(tmp_path):
    """world_eval's controller and policy_node's core give one command for one state (M = the world's truth)."""
    from samrl_model.sim_adapter import placements
    from samrl_policy.world_eval import ActorOnTruth
    from samrl_sim.evaluate import run_episode
    from samrl_sim.world import World
    run_dir = write_run(tmp_path)
    agent = ActorOnTruth(TASK, run_dir)
    world = World(TASK)
    try:
        world.reset(seed=3)
        truth = placements(world)
        state = model_state(object_names=list(truth), object_poses=[pose_msg(p.pose) for p in truth.values()])
        expected = PolicyCore(TASK, load_policies(run_dir).actor, IMAGE_SIZE).act(
            state, world.tcp_pose(), world.camera_pose(), 0.0)
        command = agent.act(world)
        assert np.allclose(command.translation_m, expected.translation_m, atol=1e-6)
        assert np.allclose(command.rotation_rad, expected.rotation_rad, atol=1e-6)
        result = run_episode(world, agent, seed=4)
        assert result.steps >= 1 and result.rejected_commands == 0
    finally:
        world.close()
    with pytest.raises(ValueError, match='actor must be one of'):
        ActorOnTruth(TASK, run_dir, 'q')


def test_side_by_side_starts_m_and_the_world_alike_and_steps_both(tmp_path):
    from samrl_policy.world_eval import format_side_by_side, side_by_side
    rows = side_by_side(TASK, write_run(tmp_path), seed=5, steps=2)
    assert [row['step'] for row in rows] == [0, 1, 2]
    start = rows[0]
    for key in ('insertion_depth_m', 'lateral_offset_m', 'yaw_error_rad'):
        assert start['model'][key] == pytest.approx(start['world'][key], abs=1e-4), key     # M is copied from the world
    assert all(set(row['model']) == set(row['world']) for row in rows)
    assert len(format_side_by_side(rows).splitlines()) == 4
