"""run_node: how every node's process ends."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

NODE_SCRIPT = textwrap.dedent('''
    import sys, threading
    from samrl_common.runtime.main import run_node

    class SleepyNode:
        def __init__(self):
            self.stopped = threading.Event()

        def spin(self):
            print('spinning', flush=True)
            while not self.stopped.wait(0.05):
                pass

        def shutdown(self):
            self.stopped.set()

        def destroy(self):
            print('destroyed', flush=True)

    class StubbornNode(SleepyNode):
        def shutdown(self):
            print('asked to stop', flush=True)

    class FailingNode(SleepyNode):
        exit_code = 3

        def destroy(self):
            print('destroyed, unflushed')     # the fast exit must still deliver it

    NODES = {'sleepy': SleepyNode, 'stubborn': StubbornNode, 'failing': FailingNode}
    sys.exit(run_node(lambda argv: NODES[sys.argv[1]]()))
''')
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # as nohup'd and CI jobs start their children


@pytest.mark.timeout(2 * (START_TIMEOUT_S + STOP_TIMEOUT_S))
def test_sigint_ends_a_node_through_destroy_even_when_its_parent_ignored_sigint():
    out, returncode = interrupt('sleepy', times=1)
    assert 'destroyed' in out and returncode == 0


@pytest.mark.timeout(2 * (START_TIMEOUT_S + STOP_TIMEOUT_S))
def test_a_second_sigint_stops_a_node_that_did_not_stop_on_the_first():
    out, returncode = interrupt('stubborn', times=2)
    assert 'asked to stop' in out and 'destroyed' in out and returncode == 0


@pytest.mark.timeout(2 * (START_TIMEOUT_S + STOP_TIMEOUT_S))
def test_the_process_ends_with_the_nodes_exit_code_and_its_last_output():
    out, returncode = interrupt('failing', times=1)
    assert 'destroyed, unflushed' in out and returncode == 3


def interrupt(kind: str, times: int) -> tuple[str, int]:
    """Start a node of `kind` as the graphs do (SIGINT ignored by its parent), SIGINT it `times` times."""
    process = subprocess.Popen([sys.executable, '-c', NODE_SCRIPT, kind], stdout=subprocess.PIPE, text=True,
                               preexec_fn=ignore_sigint)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert process.stdout.readline().strip() == 'spinning' and time.monotonic() < deadline
        for _ in range(times):
            process.send_signal(signal.SIGINT)
            time.sleep(0.5)
        out, _ = process.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        process.kill()
    return out, process.returncode
