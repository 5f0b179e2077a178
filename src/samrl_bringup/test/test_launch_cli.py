"""`samrl launch` runs a graph as separate processes and stops it when a node dies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from samrl_common.testing import isolated_environment

pytestmark = pytest.mark.processes
TIMEOUT_S = 60


def _samrl(*args: str, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'samrl_bringup.cli', *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_demo_graph_runs_to_the_end():
    env = isolated_environment()
    out, _ = _samrl('launch', 'demo', 'images:=45', '--local', env=env).communicate(timeout=TIMEOUT_S)
    assert '[listener]' in out and 'received 45 images' in out
    assert 'answered: counter reset' in out  # the service call crossed processes
    assert 'graph stopped cleanly' in out


def test_killing_a_node_stops_the_graph_with_failure():
    env = isolated_environment()
    launcher = _samrl('launch', 'demo', 'images:=0', '--local', '--stop-timeout', '3', env=env)
    lines: list[str] = []
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        lines.append(launcher.stdout.readline())
        if 'images of 640x480' in lines[-1]:
            break
    talker_pid = int(re.search(r"process 'talker' started with pid (\d+)", ''.join(lines)).group(1))
    os.kill(talker_pid, signal.SIGKILL)
    out, _ = launcher.communicate(timeout=TIMEOUT_S)
    assert launcher.returncode != 0
    assert "process 'talker'" in out and 'stopping the graph' in out


def test_unknown_launch_argument_fails_before_starting_anything():
    result = subprocess.run([sys.executable, '-m', 'samrl_bringup.cli', 'launch', 'demo', 'speed:=3'],
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 2
    assert "unknown launch argument 'speed'" in result.stderr


def test_transport_benchmark_small_configuration(tmp_path):
    isolated_environment()
    from samrl_common.bench_transport import measure
    result = measure('rgb8', rate_hz=30.0, seconds=1.0, width=64, height=48, domain=int(os.environ['ROS_DOMAIN_ID']))
    assert result.received > 10 and 0 < result.latency_mean_ms < 1000
