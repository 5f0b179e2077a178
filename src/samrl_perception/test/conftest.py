"""Shared fixture of the process tests: start nodes as processes on an isolated DDS domain."""

from __future__ import annotations

import pytest

from samrl_common.testing import node_graph


@pytest.fixture
def graph(tmp_path):
    """(start(module, *params) -> NodeProcess, a test-side Node); everything is stopped afterwards."""
    with node_graph(tmp_path, 'perception_test') as (start, node, _env):
        yield start, node
