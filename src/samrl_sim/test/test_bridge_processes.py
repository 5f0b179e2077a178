"""The sim bridge as a process: driver topics with ROS types at the configured rate, commands, bad input."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from samrl_common import msgs
from samrl_common.runtime import QOS_SENSOR_DATA, stamp_now, stamp_to_s
from samrl_common.testing import node_graph, wait_until
from samrl_common.tf import TransformBuffer
from samrl_common.tf_ros import TransformListener
from samrl_description.names import COLOR_TOPIC, DEPTH_TOPIC, OPTICAL_FRAME

pytestmark = pytest.mark.processes
BRIDGE, ORACLE = 'samrl_sim.bridge_node', 'samrl_sim.oracle_node'
START_TIMEOUT_S = 30.0
CAMERA_RATE_HZ = 4.0


@pytest.fixture
def graph(tmp_path):
    with node_graph(tmp_path, 'bridge_test') as started:
        yield started


def test_camera_topics_have_driver_names_types_and_rate(graph):
    start, node, env = graph
    start(BRIDGE, 'task:=peg_insertion', f'camera_rate_hz:={CAMERA_RATE_HZ}', 'image_width:=160', 'image_height:=120')
    stamps, depth, colors = [], [], []
    tf = TransformListener(node, TransformBuffer())
    node.create_subscription('sensor_msgs/msg/Image', COLOR_TOPIC,
                             lambda m: (stamps.append(time.monotonic()), colors.append(m)), QOS_SENSOR_DATA)
    node.create_subscription('sensor_msgs/msg/Image', DEPTH_TOPIC, depth.append, QOS_SENSOR_DATA)
    assert node.spin_until(lambda: len(stamps) >= 13, START_TIMEOUT_S + 10)
    rate = (len(stamps) - 3) / (stamps[-1] - stamps[2])
    assert abs(rate - CAMERA_RATE_HZ) < 0.5, rate
    image = depth[-1]
    assert (image.encoding, image.width, image.height, image.header.frame_id) == (
        '16UC1', 160, 120, 'camera_color_optical_frame')
    depth_mm = np.frombuffer(image.data, '<u2')
    assert 200 < np.median(depth_mm[depth_mm > 0]) < 2000  # the table is tens of cm away
    # The camera pose at the image's time stamp, through static (/tf_static) and moving links.
    at = stamp_to_s(colors[-1].header.stamp)
    assert node.spin_until(lambda: tf.buffer.can_transform('world', OPTICAL_FRAME, at), 5.0)
    camera = tf.buffer.lookup('world', OPTICAL_FRAME, at)
    assert 0.1 < camera.position[2] < 1.2  # above the table
    cli = Path(sys.executable).parent / 'cyclonedds'
    listing = subprocess.run([str(cli), 'ls', '--id', env['ROS_DOMAIN_ID'], '--runtime', '3s',
                              '--suppress-progress-bar'], env={**env, 'COLUMNS': '200'},
                             capture_output=True, text=True, timeout=60).stdout
    for name in ('rt' + COLOR_TOPIC, 'sensor_msgs::msg::dds_::Image_', 'rt/joint_states', 'rt/tf',
                 'sensor_msgs::msg::dds_::CameraInfo_', 'samrl_interfaces::msg::dds_::TaskState_'):
        assert name in listing, name


def _command(translation, rotation=(0.0, 0.0, 0.0), gripper=0.04, stamp=None):
    Vector3 = msgs.geometry_msgs.msg.Vector3
    command = msgs.samrl_interfaces.msg.EndEffectorCommand(
        translation=Vector3(*translation), rotation=Vector3(*rotation), gripper_width=gripper)
    command.header.stamp = stamp or stamp_now()
    return command


def test_bad_commands_are_rejected_and_never_move_the_arm(graph):
    start, node, _ = graph
    bridge = start(BRIDGE, 'task:=peg_insertion', 'camera_rate_hz:=1.0', 'image_width:=32', 'image_height:=32')
    joints = []
    node.create_subscription('sensor_msgs/msg/JointState', '/joint_states', joints.append)
    publisher = node.create_publisher('samrl_interfaces/msg/EndEffectorCommand', '/samrl/ee_command')
    goal_pub = node.create_publisher('geometry_msgs/msg/PoseStamped', '/samrl/camera_goal')
    assert node.spin_until(lambda: len(joints) >= 3 and publisher.get_subscription_count() > 0, START_TIMEOUT_S)
    before = np.array(joints[-1].position)
    bad = [_command((math.nan, 0.0, 0.0)), _command((0.5, 0.0, 0.0)), _command((0.0, 0.0, 0.0), (0.0, 0.0, 3.0)),
           _command((0.0, 0.0, 0.0), gripper=0.5)]  # (out-of-workspace targets: test_safety.py)
    for command in bad:
        publisher.publish(command)
        node.spin_until(lambda: False, 0.25)
    goal = msgs.geometry_msgs.msg.PoseStamped()
    goal.header.frame_id = 'world'
    goal.pose.position.x, goal.pose.orientation.w = 0.5, 0.7  # not a unit quaternion
    goal_pub.publish(goal)
    node.spin_until(lambda: False, 0.5)
    after = np.array(joints[-1].position)
    assert np.allclose(before, after, atol=1e-4), np.abs(after - before).max()
    output = bridge.output()
    assert 'rejected command (1 so far): end-effector command: translation contains NaN' in output
    assert bridge.alive()
    publisher.publish(_command((0.0, 0.0, 0.02)))  # a valid command still moves the arm
    assert node.spin_until(lambda: not np.allclose(np.array(joints[-1].position), after, atol=1e-3), 5.0)


def test_oracle_graph_solves_an_episode(graph):
    start, node, _ = graph
    states = []
    node.create_subscription('samrl_interfaces/msg/TaskState', '/samrl/task_state', states.append)
    start(BRIDGE, 'task:=peg_insertion', 'seed:=7', 'camera_rate_hz:=2.0', 'image_width:=64', 'image_height:=48')
    start(ORACLE, 'task:=peg_insertion')
    assert node.spin_until(lambda: any(s.done for s in states), START_TIMEOUT_S + 30)
    final = next(s for s in states if s.done)
    assert final.success and final.seed == 7 and final.step < final.max_steps


def test_bad_task_parameter_stops_start_up(graph):
    start, _, _ = graph
    bridge = start(BRIDGE, 'task:=origami')
    assert wait_until(lambda: not bridge.alive(), START_TIMEOUT_S)
    assert bridge.process.returncode == 2
    assert "unknown task 'origami'; expected one of needle_threading, peg_insertion, spatula_flipping" in bridge.output()


def test_an_out_of_range_reset_seed_is_refused_and_episodes_go_on(graph):
    start, node, _ = graph
    states = []
    node.create_subscription('samrl_interfaces/msg/TaskState', '/samrl/task_state', states.append)
    bridge = start(BRIDGE, 'task:=peg_insertion', 'camera_rate_hz:=1.0', 'image_width:=32', 'image_height:=32')
    reset = node.create_client('samrl_interfaces/srv/ResetEpisode', '/samrl/reset_episode')
    assert reset.wait_for_service(START_TIMEOUT_S), bridge.output()
    Request = msgs.samrl_interfaces.srv.ResetEpisode.Request
    for seed in (2 ** 63 - 1, -5):
        answer = reset.call(Request(seed=seed), timeout_s=10.0)
        assert not answer.success and 'seed must be in' in answer.message, answer.message
    answer = reset.call(Request(seed=11), timeout_s=10.0)
    assert answer.success and answer.seed == 11
    count = len(states)
    assert node.spin_until(lambda: len(states) > count + 2 and states[-1].seed == 11, 10.0), bridge.output()
    assert bridge.alive() and 'Traceback' not in bridge.output()
