"""Tests of samrl_common.launcher with real subprocesses (``python -c`` snippets)."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from samrl_common.launcher import Launcher, ProcessSpec

pytestmark = pytest.mark.timeout(30)

PACKAGE_DIR = Path(__file__).resolve().parents[1]
WAIT_S = 10.0
"""Upper bound (s) on anything a test waits for; a healthy run takes well under 1 s."""
STOP_TIMEOUT_S = 0.3
"""Grace period (s) given to the launcher in the escalation tests."""

# Prints 'ready <pid>', then sleeps until SIGINT and exits 0 after printing 'bye'.
GRACEFUL = """
import os, sys, time
print('ready', os.getpid(), flush=True)
try:
    time.sleep(30)
except KeyboardInterrupt:
    print('bye', flush=True)
    sys.exit(0)
"""
IGNORES_SIGINT = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print('ready', flush=True)
time.sleep(30)
"""
IGNORES_SIGINT_AND_SIGTERM = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('ready', flush=True)
time.sleep(30)
"""
# Runs one GRACEFUL node under a launcher; argv: stop_timeout_s.
LAUNCHER_SCRIPT = """
import sys
from samrl_common.launcher import Launcher, ProcessSpec
node = ProcessSpec('node', (sys.executable, '-c', sys.argv[1]))
sys.exit(Launcher([node], stop_timeout_s=float(sys.argv[2])).run())
"""


def python(name: str, code: str, **fields: object) -> ProcessSpec:
    """A spec running ``code`` with this interpreter."""
    return ProcessSpec(name, (sys.executable, '-c', code), **fields)


def make(specs: list[ProcessSpec], **options: object) -> tuple[Launcher, io.StringIO]:
    """A launcher writing to a fresh StringIO, with a short default stop timeout."""
    out = io.StringIO()
    options.setdefault('stop_timeout_s', 2.0)
    return Launcher(specs, stream=out, **options), out


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Polls ``condition`` until it holds; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'condition not met in time'
        time.sleep(0.02)


def printed(out: io.StringIO, text: str) -> Callable[[], bool]:
    """Condition: ``text`` appears in what the launcher printed."""
    return lambda: text in out.getvalue()


def is_alive(pid: int) -> bool:
    """True if a process with this pid exists (possibly as a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_line_is_prefixed_and_lines_never_interleave() -> None:
    chatty = ("import sys\nfor i in range(300): print('{c}' * 60, i)\n"
              "print('on stderr', file=sys.stderr)\nsys.stdout.write('no newline')")
    specs = [python(n, chatty.format(c=n[0]), required=False) for n in ('alpha', 'beta')]
    launcher, out = make(specs)
    assert launcher.run() == 0
    lines = out.getvalue().splitlines()
    pattern = re.compile(r'\[(alpha|beta)\] (([ab])\3{59} \d+|on stderr|no newline)$')
    node_lines = [line for line in lines if not line.startswith('[launch] ')]
    assert all(pattern.match(line) for line in node_lines), node_lines
    for name in ('alpha', 'beta'):
        assert sum(line.startswith(f'[{name}] ') for line in node_lines) == 302
    assert '[launch] all processes have exited' in lines


def test_required_process_failure_stops_the_graph() -> None:
    crasher = python('crasher', 'import time; time.sleep(0.3); raise SystemExit(3)')
    launcher, out = make([python('sleeper', GRACEFUL), crasher])
    start = time.monotonic()
    assert launcher.run() == 3
    assert time.monotonic() - start < 2.0  # the sleeper stopped on SIGINT, no escalation
    text = out.getvalue()
    assert "[launch] process 'crasher' exited with code 3; stopping the graph" in text
    assert "process 'sleeper' exited with code" in text
    assert "failed: 'crasher' (code 3)" in text
    assert 'sending SIGTERM' not in text


def test_all_processes_exiting_zero_return_zero() -> None:
    specs = [python('a', 'pass', required=False),
             python('b', 'import time; time.sleep(0.2)', required=False)]
    launcher, out = make(specs)
    assert launcher.run() == 0
    assert '[launch] all processes have exited' in out.getvalue()


def test_required_process_exiting_zero_ends_the_graph_with_success() -> None:
    evaluator = python('evaluator', 'import time; time.sleep(0.5); print("score 1.0")')
    launcher, out = make([python('sim', GRACEFUL), evaluator])
    assert launcher.run() == 0
    text = out.getvalue()
    assert "process 'evaluator' exited with code 0; stopping the graph" in text
    assert '[evaluator] score 1.0' in text
    assert '[launch] graph stopped cleanly' in text


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_signal_to_launcher_stops_children_cleanly(sig: signal.Signals) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(PACKAGE_DIR), os.environ.get('PYTHONPATH')])))
    launcher = subprocess.Popen([sys.executable, '-c', LAUNCHER_SCRIPT, GRACEFUL, '2.0'],
                                stdout=subprocess.PIPE, text=True, env=env)
    try:
        head = ''
        while '[node] ready' not in head:
            line = launcher.stdout.readline()
            assert line, f'launcher ended before the node was ready: {head}'
            head += line
        launcher.send_signal(sig)
        tail, _ = launcher.communicate(timeout=WAIT_S)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 0, head + tail
    assert f'[launch] received {sig.name}; stopping the graph' in tail
    assert '[node] bye' in tail
    child_pid = int(re.search(r'\[node\] ready (\d+)', head).group(1))
    assert not is_alive(child_pid)


@pytest.mark.parametrize('code, last_signal', [(IGNORES_SIGINT, 'SIGTERM'),
                                               (IGNORES_SIGINT_AND_SIGTERM, 'SIGKILL')],
                         ids=['to_sigterm', 'to_sigkill'])
def test_child_ignoring_sigint_is_escalated(code: str, last_signal: str) -> None:
    launcher, out = make([python('stubborn', code)], stop_timeout_s=STOP_TIMEOUT_S)
    launcher.start()
    wait_until(printed(out, '[stubborn] ready'))
    launcher.stop()
    assert launcher.wait(timeout=WAIT_S) == 1
    assert "process 'stubborn' still running after SIGINT" in out.getvalue()
    assert f'sending {last_signal}' in out.getvalue()
    assert not is_alive(launcher.pids['stubborn'])


@pytest.mark.parametrize('helper_code, graph_code', [(0, 0), (4, 4)])
def test_non_required_exit_keeps_the_graph_running(helper_code: int, graph_code: int) -> None:
    helper = python('helper', f'raise SystemExit({helper_code})', required=False)
    launcher, out = make([python('main', GRACEFUL), helper])
    launcher.start()
    wait_until(printed(out, '[main] ready'))
    wait_until(printed(out, "process 'helper' exited"))
    time.sleep(0.3)  # time enough for a wrong stop to show
    assert 'stopping the graph' not in out.getvalue()
    assert is_alive(launcher.pids['main']) and launcher.returncode is None
    launcher.stop()
    assert launcher.wait(timeout=WAIT_S) == graph_code
    assert '[main] bye' in out.getvalue()


def test_missing_executable_is_reported_and_stops_the_others() -> None:
    ghost = ProcessSpec('ghost', ('/nonexistent/samrl-ghost', '--flag'))
    never = python('never', 'print("should not run")')
    launcher, out = make([python('sleeper', GRACEFUL), ghost, never])
    assert launcher.run() == 127
    text = out.getvalue()
    assert "[launch] cannot start process 'ghost'" in text
    assert '/nonexistent/samrl-ghost' in text
    assert "process 'sleeper' exited with code" in text
    assert set(launcher.pids) == {'sleeper'}


def test_context_manager_starts_and_stops_the_graph() -> None:
    launcher, out = make([python('a', GRACEFUL), python('b', GRACEFUL, required=False)])
    with launcher:
        wait_until(lambda: all(printed(out, f'[{n}] ready')() for n in 'ab'))
        assert set(launcher.pids) == {'a', 'b'}
        assert launcher.returncode is None
    assert launcher.returncode == 0
    assert not any(is_alive(pid) for pid in launcher.pids.values())


def test_wait_with_timeout_raises_while_running() -> None:
    launcher, _ = make([python('a', GRACEFUL)])
    with launcher:
        with pytest.raises(TimeoutError):
            launcher.wait(timeout=0.1)


def test_env_is_merged_and_cwd_is_used(tmp_path: Path) -> None:
    code = 'import os; print(os.environ["SAMRL_X"], os.environ["PATH"] != "", os.getcwd())'
    spec = python('probe', code, env={'SAMRL_X': 'hello'}, cwd=str(tmp_path))
    launcher, out = make([spec])
    assert launcher.run() == 0
    assert f'[probe] hello True {tmp_path}' in out.getvalue()


@pytest.mark.parametrize('color', [True, False])
def test_colour_tags_per_node(color: bool) -> None:
    specs = [python(n, 'print("x")', required=False) for n in ('a', 'b')]
    launcher, out = make(specs, color=color)
    assert launcher.run() == 0
    colours = set(re.findall(r'\033\[(\d+)m\[[ab]\]', out.getvalue()))
    assert len(colours) == (2 if color else 0)
    assert ('\033[' in out.getvalue()) == color


def test_spec_validation() -> None:
    assert python('a', 'pass').argv == (sys.executable, '-c', 'pass')
    assert ProcessSpec('a', ['ls']).argv == ('ls',)
    with pytest.raises(ValueError):
        ProcessSpec('a', ())
    with pytest.raises(TypeError):
        ProcessSpec('a', 'ls -l')
    with pytest.raises(ValueError):
        Launcher([python('a', 'pass'), python('a', 'pass')])
    with pytest.raises(ValueError):
        Launcher([])


RESPAWN_DELAY_S = 0.2
"""Respawn delay (s) in the respawn tests: short, but long enough to be measured."""


def respawning(name: str, code: str, delay_s: float = RESPAWN_DELAY_S) -> ProcessSpec:
    """A non-required spec the launcher restarts ``delay_s`` after each exit."""
    return python(name, code, required=False, respawn=True, respawn_delay_s=delay_s)


def test_killed_respawning_process_is_restarted_and_counted() -> None:
    launcher, out = make([python('main', GRACEFUL), respawning('worker', GRACEFUL)])
    launcher.start()
    wait_until(printed(out, '[worker] ready'))
    first = launcher.pids['worker']
    killed_at = time.monotonic()
    os.kill(first, signal.SIGKILL)
    wait_until(printed(out, "process 'worker' respawned (respawn 1) with pid"))
    assert time.monotonic() - killed_at >= RESPAWN_DELAY_S
    assert launcher.pids['worker'] != first and is_alive(launcher.pids['worker'])
    wait_until(lambda: out.getvalue().count('[worker] ready') == 2)
    assert "process 'worker' exited with code -9 (SIGKILL); respawning it in 0.2 s" in out.getvalue()
    assert launcher.returncode is None and is_alive(launcher.pids['main'])
    launcher.stop()
    assert launcher.wait(timeout=WAIT_S) == 0  # the respawned exit does not fail the graph
    assert launcher.respawns == {'main': 0, 'worker': 1}
    assert "[launch] respawns: 'worker' 1" in out.getvalue()
    assert out.getvalue().count('[worker] bye') == 1


def test_crash_loop_stops_respawning_and_fails_the_graph_at_the_end() -> None:
    crasher = respawning('crasher', 'raise SystemExit(3)', delay_s=0.0)
    launcher, out = make([python('main', GRACEFUL), crasher], respawn_limit=3, respawn_window_s=WAIT_S)
    launcher.start()
    wait_until(printed(out, "3 exits within 10 s: not respawning it"))
    time.sleep(0.3)  # time enough for a wrong respawn or stop to show
    assert launcher.respawns['crasher'] == 2 and launcher.returncode is None
    launcher.stop()
    assert launcher.wait(timeout=WAIT_S) == 3
    assert "failed: 'crasher' (code 3, crash loop)" in out.getvalue()


def test_crash_loop_of_clean_exits_still_fails() -> None:
    quitter = respawning('quitter', 'pass', delay_s=0.0)
    launcher, out = make([quitter], respawn_limit=2, respawn_window_s=WAIT_S)
    assert launcher.run() == 1
    assert "failed: 'quitter' (code 0, crash loop)" in out.getvalue()
    assert '[launch] all processes have exited' in out.getvalue()


def test_no_respawn_while_the_graph_stops() -> None:
    sleeper = respawning('sleeper', GRACEFUL)
    launcher, out = make([python('main', GRACEFUL), sleeper, respawning('dead', 'pass', delay_s=WAIT_S)])
    launcher.start()
    wait_until(printed(out, "process 'dead' exited with code 0; respawning it"))
    wait_until(printed(out, '[sleeper] ready'))
    launcher.stop()
    assert launcher.wait(timeout=WAIT_S) == 0  # a pending respawn is dropped, not a failure
    assert 'respawned' not in out.getvalue() and '[launch] respawns' not in out.getvalue()
    assert launcher.respawns == {'main': 0, 'sleeper': 0, 'dead': 0}


def test_required_exit_still_ends_a_graph_with_respawning_nodes() -> None:
    launcher, out = make([respawning('worker', GRACEFUL), python('sim', 'import time; time.sleep(0.5)')])
    assert launcher.run() == 0
    assert "process 'sim' exited with code 0; stopping the graph" in out.getvalue()
    assert '[worker] bye' in out.getvalue()


def test_respawn_spec_validation() -> None:
    with pytest.raises(ValueError, match='cannot be required'):
        python('a', 'pass', respawn=True)
    with pytest.raises(ValueError, match='respawn_delay_s'):
        python('a', 'pass', required=False, respawn=True, respawn_delay_s=-1.0)
    with pytest.raises(ValueError, match='respawn_limit'):
        Launcher([python('a', 'pass')], respawn_limit=0)
