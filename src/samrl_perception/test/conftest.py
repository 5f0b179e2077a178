"""Shared fixture of the process tests: start nodes as processes on an isolated DDS domain."""

from __future__ import annotations

import pytest

from samrl_common.runtime import Node
from samrl_common.testing import NodeProcess, isolated_environment


@pytest.fixture
def graph(tmp_path):
    """(start(module, *params) -> NodeProcess, a test-side Node); everything is stopped afterwards."""
    env = isolated_environment()
    started: list[NodeProcess] = []

    def start(module: str, *params: str) -> NodeProcess:
        args = ['--ros-args'] + [a for p in params for a in ('-p', p)]
        started.append(NodeProcess(module, args, env, tmp_path))
        return started[-1]

    node = Node('perception_test', argv=[])
    yield start, node
    node.destroy()
    for process in started:
        process.stop()
