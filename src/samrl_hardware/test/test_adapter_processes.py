"""The adapters and the calibration publisher as processes over DDS: the watchdog holds the Franka when
commands stop, one message on the latched stop topic halts both arms, and nothing moves until the reset."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from samrl_common import msgs
from samrl_common.runtime import QOS_LATCHED, QOS_SENSOR_DATA, stamp_now
from samrl_common.testing import node_graph
from samrl_common.tf import TransformBuffer
from samrl_common.tf_ros import TransformListener
from samrl_description.geometry import look_at
from samrl_description.names import COLOR_INFO_TOPIC

pytestmark = pytest.mark.processes
FRANKA, RIZON = 'samrl_hardware.franka_node', 'samrl_hardware.rizon_node'
CALIBRATION = 'samrl_hardware.calibration_node'
CALIBRATION_FILE = Path(__file__).resolve().parents[2] / 'samrl_bringup' / 'config' / 'calibration.yaml'
TARGET_TOPIC = '/test/franka_target'
START_TIMEOUT_S = 30.0
WATCHDOG_S = 0.5
PERIOD_S = 0.1
QUIET_S = 1.0                       # how long "nothing more arrives" is watched


@pytest.fixture
def graph(tmp_path):
    with node_graph(tmp_path, 'adapter_test') as started:
        yield started


class Probe:
    """The test's side of the adapters' topics."""

    def __init__(self, node):
        self.node = node
        self.targets, self.status = [], {}
        node.create_subscription('geometry_msgs/msg/PoseStamped', TARGET_TOPIC, self.targets.append)
        for name in ('franka_adapter', 'rizon_adapter'):
            node.create_subscription('std_msgs/msg/String', f'/{name}/status',
                                     lambda m, name=name: self.status.setdefault(name, []).append(m.data), QOS_LATCHED)
        self.commands = node.create_publisher('samrl_interfaces/msg/EndEffectorCommand', '/samrl/ee_command')
        self.goals = node.create_publisher('geometry_msgs/msg/PoseStamped', '/samrl/camera_goal')
        self.stop_pub = node.create_publisher('std_msgs/msg/Bool', '/samrl/stop', QOS_LATCHED)

    def latest(self, name: str) -> str:
        return (self.status.get(name) or [''])[-1]

    def wait_status(self, name: str, prefix: str, timeout_s: float) -> bool:
        return self.node.spin_until(lambda: self.latest(name).startswith(prefix), timeout_s)

    def command(self, dz: float) -> None:
        Vector3 = msgs.geometry_msgs.msg.Vector3
        message = msgs.samrl_interfaces.msg.EndEffectorCommand(translation=Vector3(0.0, 0.0, dz), rotation=Vector3(),
                                                               gripper_width=0.04)
        message.header.stamp, message.header.frame_id = stamp_now(), 'world'
        self.commands.publish(message)

    def stream(self, count: int, dz: float = 0.01) -> None:
        for _ in range(count):
            self.command(dz)
            self.node.spin_until(lambda: False, PERIOD_S)

    def stop(self, value: bool) -> None:
        self.stop_pub.publish(msgs.std_msgs.msg.Bool(data=value))

    def goal(self, eye) -> None:
        pose = look_at(eye, (0.55, 0.0, 0.05))
        message = msgs.geometry_msgs.msg.PoseStamped()
        message.header.frame_id = 'world'
        p, q = message.pose.position, message.pose.orientation
        p.x, p.y, p.z = map(float, pose.position)
        q.x, q.y, q.z, q.w = map(float, pose.quaternion)
        self.goals.publish(message)


def _reset(node, name: str):
    client = node.create_client('std_srvs/srv/Trigger', f'/{name}/reset_stop')
    assert client.wait_for_service(10.0)
    return client.call(msgs.get_service('std_srvs/srv/Trigger').Request(), timeout_s=10.0)


def test_franka_watchdog_holds_and_a_stop_refuses_commands_until_reset(graph):
    start, node, _ = graph
    adapter = start(FRANKA, 'fake_hardware:=true', f'watchdog_timeout_s:={WATCHDOG_S}',
                    f'controller_topic:={TARGET_TOPIC}')
    probe = Probe(node)
    assert node.spin_until(lambda: probe.latest('franka_adapter') == 'idle' and probe.commands.get_subscription_count()
                           and probe.stop_pub.get_subscription_count(), START_TIMEOUT_S), adapter.output()

    probe.stream(10)                                            # 10 Hz, +10 mm each
    assert node.spin_until(lambda: len(probe.targets) >= 10, 2.0), adapter.output()
    heights = [t.pose.position.z for t in probe.targets]
    assert np.allclose(np.diff(heights), 0.01) and np.isclose(heights[-1], 0.4)
    assert probe.targets[-1].header.frame_id == 'panda_link0'

    # commands stop coming: the watchdog holds the arm (one more target, where it is), within its timeout
    stopped_sending = time.monotonic()
    assert probe.wait_status('franka_adapter', 'idle: watchdog: no command for 0.5 s', WATCHDOG_S + 1.5)
    assert time.monotonic() - stopped_sending < WATCHDOG_S + 1.0
    assert node.spin_until(lambda: len(probe.targets) == 11, 1.0)
    assert np.isclose(probe.targets[-1].pose.position.z, 0.4)
    probe.stream(3)                                             # a new stream starts from the held pose
    assert node.spin_until(lambda: len(probe.targets) == 14, 2.0)
    assert np.isclose(probe.targets[-1].pose.position.z, 0.43)

    # one message on the stop topic: held, then everything refused
    probe.stop(True)
    assert probe.wait_status('franka_adapter', 'stopped: stop requested on /samrl/stop', 2.0)
    assert node.spin_until(lambda: len(probe.targets) == 15, 1.0)
    assert np.isclose(probe.targets[-1].pose.position.z, 0.43)
    probe.stream(5)
    node.spin_until(lambda: False, QUIET_S)
    assert len(probe.targets) == 15, 'a command moved the arm after the stop'
    assert 'refused end-effector command (1 so far): stopped (stop requested on /samrl/stop); refused until reset' \
        in adapter.output()

    # the documented reset: release the stop topic, then call the reset service
    answer = _reset(node, 'franka_adapter')
    assert not answer.success and 'the stop topic still holds a stop' in answer.message
    probe.stop(False)
    node.spin_until(lambda: False, 0.3)
    assert probe.latest('franka_adapter').startswith('stopped')    # released is not reset
    answer = _reset(node, 'franka_adapter')
    assert answer.success, answer.message
    assert probe.wait_status('franka_adapter', 'idle', 2.0)
    probe.stream(1)
    assert node.spin_until(lambda: len(probe.targets) == 16, 2.0)
    assert np.isclose(probe.targets[-1].pose.position.z, 0.44)
    assert adapter.alive() and 'Traceback' not in adapter.output()


def test_one_stop_halts_both_arms_and_the_calibration_is_on_tf_static(graph):
    start, node, _ = graph
    path = str(CALIBRATION_FILE)
    publisher = start(CALIBRATION, f'calibration_file:={path}')
    rizon = start(RIZON, f'calibration_file:={path}', 'planner:=fake')
    franka = start(FRANKA, 'fake_hardware:=true', f'controller_topic:={TARGET_TOPIC}')
    probe = Probe(node)
    tf = TransformListener(node, TransformBuffer())
    assert node.spin_until(lambda: probe.latest('franka_adapter') == 'idle' and probe.latest('rizon_adapter') == 'idle'
                           and probe.goals.get_subscription_count() and probe.commands.get_subscription_count(),
                           START_TIMEOUT_S), rizon.output() + franka.output()

    # the calibration's edges, latched for a late subscriber
    assert node.spin_until(lambda: tf.buffer.can_transform('world', 'rizon_world', 0.0) and
                           tf.buffer.can_transform('rizon_flange', 'camera_link', 0.0), 10.0), publisher.output()
    assert np.allclose(tf.buffer.lookup('world', 'rizon_world').position, [0.55, -0.65, 0.0])
    assert np.allclose(tf.buffer.lookup('world', 'base').position, 0.0)

    # the camera driver's intrinsics are checked against the calibration
    info_pub = node.create_publisher('sensor_msgs/msg/CameraInfo', COLOR_INFO_TOPIC, QOS_SENSOR_DATA)
    info = msgs.sensor_msgs.msg.CameraInfo(width=1280, height=720,
                                           k=[920.0, 0.0, 640.0, 0.0, 920.0, 360.0, 0.0, 0.0, 1.0])
    for _ in range(20):
        info_pub.publish(info)
        if publisher.wait_for_output('camera intrinsics differ', 0.1):
            break
    assert 'camera intrinsics differ from the calibration: the camera streams 1280x720 px' in publisher.output()

    # the Rizon moves the camera to a goal and reports it
    probe.goal((0.6, -0.3, 0.5))
    assert probe.wait_status('rizon_adapter', 'moving', 5.0), rizon.output()
    assert probe.wait_status('rizon_adapter', 'idle: reached the goal', 10.0), rizon.output()

    # both arms move; one stop halts both
    probe.stream(3)
    probe.goal((0.55, -0.35, 0.55))
    assert probe.wait_status('rizon_adapter', 'moving', 5.0)
    probe.stop(True)
    for name in ('franka_adapter', 'rizon_adapter'):
        assert probe.wait_status(name, 'stopped: stop requested on /samrl/stop', 3.0), name
    probe.goal((0.6, -0.3, 0.5))
    probe.stream(2)
    node.spin_until(lambda: False, QUIET_S)
    assert probe.latest('rizon_adapter').startswith('stopped') and probe.latest('franka_adapter').startswith('stopped')
    assert 'refused camera goal (1 so far): stopped (stop requested on /samrl/stop)' in rizon.output()
    for process in (publisher, rizon, franka):
        assert process.alive() and 'Traceback' not in process.output()
