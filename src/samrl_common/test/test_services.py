"""Every service request is answered: a failing handler answers success=false, a burst gets "busy"."""

from __future__ import annotations

import threading
import time

import pytest

from samrl_common import msgs
from samrl_common.runtime import Node
from samrl_common.testing import isolated_environment

pytestmark = pytest.mark.processes
START_TIMEOUT_S = 20.0
SLOW_HANDLER_S = 0.3
BURST = 40               # more than the wire default of 10 requests kept: the server takes them all
MAX_PENDING = 2


@pytest.fixture
def server_and_client():
    isolated_environment()
    server, client = Node('test_server', argv=[]), Node('test_client', argv=[])
    stop = threading.Event()
    thread = threading.Thread(target=lambda: server.spin_until(stop.is_set, 120.0), daemon=True)
    yield server, client, thread
    stop.set()
    thread.join(5.0)
    client.destroy()
    server.destroy()


def _slow_or_failing(request):
    if request.data:
        raise RuntimeError('the handler broke')
    time.sleep(SLOW_HANDLER_S)
    return msgs.get_service('std_srvs/srv/SetBool').Response(success=True, message='done')


def test_failing_handler_is_answered_and_a_burst_gets_busy_replies(server_and_client):
    server, client, thread = server_and_client
    stats = server.create_service('std_srvs/srv/SetBool', '/test/set', _slow_or_failing, max_pending=MAX_PENDING)
    thread.start()
    proxy = client.create_client('std_srvs/srv/SetBool', '/test/set')
    assert proxy.wait_for_service(START_TIMEOUT_S)
    Request = msgs.get_service('std_srvs/srv/SetBool').Request
    failed = proxy.call(Request(data=True), timeout_s=10.0)
    assert not failed.success and 'internal error: RuntimeError: the handler broke' in failed.message
    futures = [proxy.call_async(Request(data=False)) for _ in range(BURST)]
    answers = [future.result(timeout=BURST * SLOW_HANDLER_S + 10.0) for future in futures]
    done = [a for a in answers if a.success]
    busy = [a for a in answers if not a.success]
    assert len(done) + len(busy) == BURST and done and busy
    assert all(a.message.startswith('busy') for a in busy)
    assert stats.failed == 1 and stats.busy == len(busy) and stats.pending == 0
