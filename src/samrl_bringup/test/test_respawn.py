"""Task graphs survive a crashed node: the bridge is required, every other node respawns."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from samrl_bringup.graph import NodeSpec, process_specs
from samrl_bringup.graphs import get_graph
from samrl_bringup.graphs.tasks import RESPAWN_DELAY_S
from samrl_bringup.ros_launch import node_arguments
from samrl_common.testing import isolated_environment

EPISODES = 20
"""Episodes of the process test: ~1 s each at 10 Hz control, so ~30 s, long enough for both respawns."""
RUN_TIMEOUT_S = 80.0
"""Upper bound (s) on the whole `samrl launch` run in the process test."""
STOP_TIMEOUT_S = 15.0
"""Time (s) a failed test grants the launcher to stop its graph before it is killed."""
KILLED = {'segmentation_node': 'samrl_perception.segmentation_node', 'model_node': 'samrl_model.model_node'}
"""Nodes the process test kills, with the module each runs (found in its command line)."""


def test_task_graphs_respawn_every_node_but_the_bridge():
    nodes = get_graph('peg_insertion').nodes({'segmentation': 'mask_rcnn', 'controller': 'oracle'})
    assert [n.name for n in nodes] == ['sim_bridge', 'capture_node', 'segmentation_node', 'model_node',
                                       'oracle_controller']
    bridge, *others = nodes
    assert bridge.required and not bridge.respawn
    for node in others:
        assert node.respawn and not node.required and node.respawn_delay_s == RESPAWN_DELAY_S
    specs = process_specs(nodes)
    assert [(s.required, s.respawn, s.respawn_delay_s) for s in specs] == [
        (n.required, n.respawn, n.respawn_delay_s) for n in nodes]


def test_demo_nodes_stay_required():
    assert all(n.required and not n.respawn for n in get_graph('demo').nodes())


def test_a_node_is_either_required_or_respawning():
    with pytest.raises(ValueError, match='cannot be required'):
        NodeSpec('p', 'e', 'p.e', 'n', respawn=True)
    with pytest.raises(ValueError, match='respawn_delay_s'):
        NodeSpec('p', 'e', 'p.e', 'n').respawning(-1.0)


def test_ros2_node_arguments_mirror_launch_ros():
    node = NodeSpec('pkg', 'exe', 'pkg.exe', 'cam', param_files=('/p.yaml',), parameters={'a': 1},
                    remappings=(('x', '/y'),))
    assert node_arguments(node) == dict(package='pkg', executable='exe', name='cam', namespace=None,
                                        output='screen', parameters=['/p.yaml', {'a': 1}],
                                        remappings=[('x', '/y')], respawn=False)
    respawning = node_arguments(node.respawning(1.5))
    assert respawning['respawn'] is True and respawning['respawn_delay'] == 1.5


class LaunchRun:
    """`samrl launch` as a child process; a thread collects its output so the pipe never fills."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, '-m', 'samrl_bringup.cli', 'launch', *args],
                                        env=isolated_environment(), text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip('\n'))

    def output(self) -> str:
        return '\n'.join(self.lines)

    def wait_for(self, pattern: str, deadline: float, start: int = 0) -> tuple[int, re.Match]:
        """(index, match) of the first line from `start` on matching `pattern`; fails at `deadline`."""
        while time.monotonic() < deadline:
            ended = not self._reader.is_alive()
            for index in range(start, len(self.lines)):
                if match := re.search(pattern, self.lines[index]):
                    return index, match
            assert not ended, f'launcher ended without {pattern!r}:\n{self.output()}'
            time.sleep(0.1)
        raise AssertionError(f'no {pattern!r} in time:\n{self.output()}')

    def stop(self) -> None:
        """Stops a launcher still running as Ctrl-C would, then kills it if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(1.0)


def node_pid(run: LaunchRun, name: str, event: str, deadline: float) -> tuple[int, int]:
    """(line index, pid) of the node's `event` ('started' or 'respawned'); the pid runs its module."""
    index, match = run.wait_for(rf"process '{name}' {event}\b.* with pid (\d+)", deadline)
    pid = int(match.group(1))
    assert any(KILLED[name] in part for part in psutil.Process(pid).cmdline()), name
    return index, pid


@pytest.mark.processes
@pytest.mark.timeout(RUN_TIMEOUT_S + 2 * STOP_TIMEOUT_S)
def test_killed_nodes_respawn_and_the_episodes_finish():
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run = LaunchRun('peg_insertion', f'episodes:={EPISODES}', 'seed:=0', 'segmentation:=mask_rcnn', '--local')
    try:
        killed = {}
        for name in KILLED:
            _, killed[name] = node_pid(run, name, 'started', deadline)
            run.wait_for(rf'^\[{name}\] ', deadline)  # up: it has logged
        for name, pid in killed.items():
            psutil.Process(pid).send_signal(signal.SIGKILL)
        for name, old_pid in killed.items():
            run.wait_for(rf"process '{name}' exited with code -9 \(SIGKILL\); respawning it", deadline)
            index, pid = node_pid(run, name, 'respawned', deadline)
            assert pid != old_pid and not psutil.pid_exists(old_pid)
            run.wait_for(rf'^\[{name}\] ', deadline, start=index)  # the new process is up
        run.wait_for(rf'{EPISODES} episodes done', deadline)
        code = run.process.wait(max(deadline - time.monotonic(), 1.0))
    finally:
        run.stop()
    text = run.output()
    assert code == 0, text
    assert "respawns: 'segmentation_node' 1, 'model_node' 1" in text
    assert 'graph stopped cleanly' in text
