"""Helpers for tests that run real node processes over DDS (used by every package's tests)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from samrl_common.runtime.dds_config import loopback_environment

# Domains 100..199 for tests, so a developer's graph on domain 0 is never disturbed.
_DOMAINS = itertools.count(100 + os.getpid() % 50)


NO_SIMULATOR_DIR = Path(__file__).resolve().parent / 'no_simulator'   # its sitecustomize blocks the simulator


def without_simulator(env: dict[str, str]) -> dict[str, str]:
    """`env` for a child interpreter in which pybullet and samrl_sim cannot be imported (a robot PC)."""
    paths = [str(NO_SIMULATOR_DIR), *filter(None, env.get('PYTHONPATH', '').split(os.pathsep))]
    return {**env, 'PYTHONPATH': os.pathsep.join(paths)}


def isolated_environment() -> dict[str, str]:
    """Loopback-only DDS on a domain no other test uses; also applied to this process."""
    env = loopback_environment()
    env['ROS_DOMAIN_ID'] = str(next(_DOMAINS))
    env['PYTHONUNBUFFERED'] = '1'
    for key in ('CYCLONEDDS_URI', 'ROS_DOMAIN_ID', 'SAMRL_DDS_LOOPBACK'):
        os.environ[key] = env[key]
    return env


class NodeProcess:
    """A node started as `python -m module args...`, its output captured to a file."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.log_path = log_dir / f'{module.rsplit(".", 1)[-1]}-{time.monotonic_ns()}.log'
        self._log = self.log_path.open('wb')
        self.process = subprocess.Popen([sys.executable, '-m', module, *args], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text(errors='replace')

    def wait_for_output(self, text: str, timeout_s: float) -> bool:
        return wait_until(lambda: text in self.output(), timeout_s)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.alive():
            self.process.send_signal(2)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def wait_until(condition: Callable[[], bool], timeout_s: float, period_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(period_s)
    return True


@contextmanager
def node_graph(log_dir: Path, test_node: str) -> Iterator[tuple[Callable[..., NodeProcess], object, dict[str, str]]]:
    """Nodes started as processes on an isolated DDS domain, and a test-side node on the same domain.

    Yields (start(module, *params) -> NodeProcess, the test node, the environment); every process is
    stopped and the test node destroyed afterwards. Params are 'name:=value' strings.
    """
    from samrl_common.runtime import Node
    env = isolated_environment()
    started: list[NodeProcess] = []

    def start(module: str, *params: str) -> NodeProcess:
        args = ['--ros-args'] + [a for p in params for a in ('-p', p)]
        started.append(NodeProcess(module, args, env, log_dir))
        return started[-1]

    node = Node(test_node, argv=[])
    try:
        yield start, node, env
    finally:
        node.destroy()
        for process in started:
            process.stop()
