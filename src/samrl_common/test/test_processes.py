"""Nodes as separate OS processes over DDS: topics, services, types seen by an independent tool, bad input."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from samrl_common import msgs
from samrl_common.runtime import QOS_SENSOR_DATA, Node
from samrl_common.runtime.dds import DdsBackend
from samrl_common.testing import wait_until

pytestmark = pytest.mark.processes
TALKER, LISTENER = 'samrl_common.demo.talker', 'samrl_common.demo.listener'
START_TIMEOUT_S = 20.0


def _cyclonedds_cli() -> str:
    """cyclonedds' own command-line tool (set-up links it into the venv's bin)."""
    path = Path(sys.executable).parent / 'cyclonedds'
    assert path.exists(), f'{path} is missing: run tools/setup_env.sh'
    return str(path)


def _cyclonedds(command: str, *args: str, env) -> str:
    # The tool takes the domain as an option (it does not read ROS_DOMAIN_ID).
    result = subprocess.run([_cyclonedds_cli(), command, *args, '--id', env['ROS_DOMAIN_ID'], '--runtime', '3s',
                             '--suppress-progress-bar'], env={**env, 'COLUMNS': '200'},
                            capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def _until_discovered(command: str, *args: str, env, expected: list[str]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    output = _cyclonedds(command, *args, env=env)
    while not all(e in output for e in expected) and time.monotonic() < deadline:
        output = _cyclonedds(command, *args, env=env)
    return output


def test_independent_tool_lists_ros_topics_and_type_names(start_node, dds_env):
    start_node(TALKER, '--ros-args', '-p', 'rate_hz:=10.0')
    expected = ['rt/chatter', 'std_msgs::msg::dds_::String_', 'rt/image', 'sensor_msgs::msg::dds_::Image_',
                'rq/talker/resetRequest', 'std_srvs::srv::dds_::Trigger_Request_',
                'rr/talker/resetReply', 'rt/tf_static', 'tf2_msgs::msg::dds_::TFMessage_']
    output = _until_discovered('ls', env=dds_env, expected=expected)
    missing = [e for e in expected if e not in output]
    assert not missing, output


def test_independent_tool_reconstructs_the_ros_type(start_node, dds_env):
    start_node(TALKER, '--ros-args', '-p', 'rate_hz:=10.0')
    output = _until_discovered('typeof', 'rt/chatter', env=dds_env, expected=['struct String_'])
    assert [line.split()[:2] for line in output.splitlines() if 'module' in line or 'struct' in line] == [
        ['module', 'std_msgs'], ['module', 'msg'], ['module', 'dds_'], ['struct', 'String_']], output
    assert 'string data;' in output and '@final' in output


def test_service_answers_a_client_in_another_process(start_node):
    start_node(TALKER)
    node = Node('test_client', argv=[])
    try:
        client = node.create_client('std_srvs/srv/Trigger', '/talker/reset')
        assert client.wait_for_service(START_TIMEOUT_S)
        answer = client.call(client.srv_type.Request(), timeout_s=5.0)
        assert answer.success and answer.message == 'counter reset'
    finally:
        node.destroy()


def test_images_cross_processes_and_listener_ends_the_graph(start_node):
    start_node(TALKER, '--ros-args', '-p', 'encoding:=32FC1')
    listener = start_node(LISTENER, '--ros-args', '-p', 'exit_after_images:=40')
    assert wait_until(lambda: not listener.alive(), START_TIMEOUT_S + 10), listener.output()
    assert listener.process.returncode == 0
    assert 'received 40 images' in listener.output()
    assert '640x480 32FC1' in listener.output()


def _publish_garbage(topic: str, payloads: list[bytes]) -> None:
    backend = DdsBackend()
    publisher = backend.publisher(topic, msgs.sensor_msgs.msg.Image, QOS_SENSOR_DATA)
    wait_until(lambda: publisher.matched_count() > 0, START_TIMEOUT_S)
    for payload in payloads:
        publisher.publish_bytes(payload)
        time.sleep(0.05)
    backend.close()


def test_malformed_messages_are_reported_and_dropped(start_node):
    """Buffers that Cyclone DDS itself lets through but that are not this message type.

    (Cyclone refuses to write, and drops, buffers whose sequences overrun the sample, so a
    truncated buffer cannot be sent over DDS; the decoder's own checks are unit-tested.)
    """
    listener = start_node(LISTENER, '--ros-args', '-p', 'exit_after_images:=20')
    good = msgs.serialize(msgs.sensor_msgs.msg.Image(width=4, height=1, encoding='mono8', step=4, data=b'abcd'))
    other_type_after_it = good + msgs.serialize(msgs.geometry_msgs.msg.PoseStamped())[4:]
    _publish_garbage('/image', [b'\x00\x07\x00\x00' + good[4:], other_type_after_it])
    assert listener.wait_for_output('unread bytes after the message', START_TIMEOUT_S), listener.output()
    assert 'unsupported encapsulation 0x0007' in listener.output()
    assert listener.alive()
    start_node(TALKER)  # good frames afterwards are still processed
    assert wait_until(lambda: not listener.alive(), START_TIMEOUT_S + 10), listener.output()
    assert listener.process.returncode == 0
    assert 'received 20 images' in listener.output()


@pytest.mark.parametrize('args, expected', [
    (['-p', 'no_such_param:=3'], "unknown parameter 'no_such_param'"),
    (['-p', 'rate_hz:=fast'], 'rate_hz'),
    (['-p', 'encoding:=bgr16'], 'encoding must be one of'),
])
def test_bad_parameters_stop_start_up_naming_them(start_node, args, expected):
    talker = start_node(TALKER, '--ros-args', *args)
    assert wait_until(lambda: not talker.alive(), START_TIMEOUT_S)
    assert talker.process.returncode == 2
    assert expected in talker.output()


def test_malformed_params_file_is_named(start_node, tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('talker:\n  ros__parameters: [unclosed\n')
    talker = start_node(TALKER, '--ros-args', '--params-file', str(bad))
    assert wait_until(lambda: not talker.alive(), START_TIMEOUT_S)
    assert talker.process.returncode == 2
    assert str(bad) in talker.output()
