"""The node's executor: timers keep their phase, a slow timer cannot starve other work or shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from samrl_common.runtime import Node
from samrl_common.testing import isolated_environment


@pytest.fixture
def node():
    isolated_environment()
    node = Node('executor_test', argv=[])
    yield node
    node.destroy()


def test_timer_rate(node):
    ticks = []
    node.create_timer(0.02, lambda: ticks.append(time.monotonic()))
    node.spin_until(lambda: len(ticks) >= 26, timeout_s=5.0)
    periods = [b - a for a, b in zip(ticks, ticks[1:])]
    assert 0.015 < sum(periods) / len(periods) < 0.03


def test_slow_timer_does_not_starve_other_work_or_shutdown(node):
    slow = []
    node.create_timer(0.001, lambda: (slow.append(1), time.sleep(0.005)))
    fast = []
    node.create_timer(0.01, lambda: fast.append(1))
    threading.Timer(0.5, node.shutdown).start()
    start = time.monotonic()
    node.spin()
    assert time.monotonic() - start < 2.0
    assert len(fast) > 10 and len(slow) > 10


def test_failing_callback_is_logged_and_spinning_goes_on(node, capsys):
    calls = []

    def failing():
        calls.append(1)
        raise RuntimeError('boom')

    node.create_timer(0.01, failing)
    node.spin_until(lambda: len(calls) >= 3, timeout_s=3.0)
    assert len(calls) >= 3
    assert 'timer callback failed: boom' in capsys.readouterr().err


def test_bad_timer_period_is_refused(node):
    with pytest.raises(ValueError, match='timer period must be > 0'):
        node.create_timer(0.0, lambda: None)
