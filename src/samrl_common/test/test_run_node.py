"""run_node: how every node's process ends."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

NODE_SCRIPT = textwrap.dedent('''
    import sys, time
    from samrl_common.runtime.main import run_node

    class SleepyNode:
        def spin(self):
            print('spinning', flush=True)
            while True:
                time.sleep(0.05)

        def shutdown(self):
            pass

        def destroy(self):
            print('destroyed', flush=True)

    sys.exit(run_node(lambda argv: SleepyNode()))
''')
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # as nohup'd and CI jobs start their children


@pytest.mark.timeout(2 * (START_TIMEOUT_S + STOP_TIMEOUT_S))
def test_sigint_ends_a_node_through_destroy_even_when_its_parent_ignored_sigint():
    process = subprocess.Popen([sys.executable, '-c', NODE_SCRIPT], stdout=subprocess.PIPE, text=True,
                               preexec_fn=ignore_sigint)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert process.stdout.readline().strip() == 'spinning' and time.monotonic() < deadline
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        process.kill()
    assert 'destroyed' in out
    assert process.returncode == 0
