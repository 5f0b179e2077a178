"""ROS-free process supervisor behind ``samrl launch <task>`` (standard library only).

Each node of a graph runs as its own OS process in its own process group, so Ctrl-C
reaches the launcher only and the launcher decides how the graph stops. The merged
stdout/stderr of each process is printed line by line as ``[name] text``.

The graph stops on SIGINT, SIGTERM or SIGHUP to the launcher (when :meth:`Launcher.run`
runs in the main thread), on :meth:`Launcher.stop`, when a required process exits (with
any code), when a process cannot be started, or once every process has exited (and none
is waiting to be respawned). Stopping sends SIGINT to each process group still running,
then SIGTERM after ``stop_timeout_s``, then SIGKILL after another ``stop_timeout_s``. A
second stop request (a second Ctrl-C) cuts the current grace period short.

A respawning process (``ProcessSpec.respawn``, as launch_ros' ``respawn``) that exits
while the graph runs, with any code, is started again with the same command line after
its ``respawn_delay_s``; never while the graph stops. One that exits ``respawn_limit``
times within ``respawn_window_s`` is in a crash loop: it is not respawned again, the rest
of the graph keeps running and it counts as failed.

Return code: 0 when every process exited 0, or exited on the SIGINT we sent (-2 or 130).
Otherwise the code of the first process to fail if it is > 0, else 1. A process fails
when it exits non-zero on its own (required or not) without being respawned, when it
only went down after SIGTERM or SIGKILL, when it cannot be started (127: not found, 126:
not executable), or when it was given up on in a crash loop (whatever its codes).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO

POLL_INTERVAL_S = 0.05
"""Period (s) at which the supervisor checks for exited processes and stop requests."""
READER_JOIN_TIMEOUT_S = 0.5
"""Time (s) granted to an exited process's output to drain before its exit is logged."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
"""Escalation sent to each process group, ``stop_timeout_s`` apart."""
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals to the launcher that stop the graph."""
EXIT_NOT_FOUND = 127
"""Code recorded for a process whose executable does not exist (shell convention)."""
EXIT_NOT_EXECUTABLE = 126
"""Code recorded for a process that exists but cannot be executed (shell convention)."""
LAUNCH_NAME = 'launch'
"""Prefix of the launcher's own messages."""
RESPAWN_LIMIT = 5
"""Exits of one respawning process within ``RESPAWN_WINDOW_S`` that make a crash loop."""
RESPAWN_WINDOW_S = 60.0
"""Window (s) in which ``RESPAWN_LIMIT`` exits stop further respawns of a process."""

_SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
_PALETTE = (36, 32, 33, 35, 34, 96, 92, 93, 95, 94)  # ANSI foreground colour codes
_BOLD = 1


@dataclass(frozen=True)
class ProcessSpec:
    """One node of the graph, started as its own OS process.

    Attributes:
        name: Node name; prefixes the process's output lines as ``[name]``.
        argv: Program and arguments, no shell; a list is accepted and stored as a tuple.
        env: Variables merged over ``os.environ`` for this process; None adds none.
        required: If True, the graph stops as soon as this process exits, whatever its
            code (exit 0 ends the graph with success, e.g. an evaluation node finishing).
        cwd: Working directory; None keeps the launcher's.
        respawn: If True, the process is started again whenever it exits while the
            graph runs (a node that may crash without taking the graph down); excludes
            ``required``.
        respawn_delay_s: Wait (s) between the exit and the respawn, so that a process
            crashing at start does not spin.
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    required: bool = True
    cwd: str | None = None
    respawn: bool = False
    respawn_delay_s: float = 0.0

    def __post_init__(self) -> None:
        """Checks the fields and freezes ``argv`` and ``env`` into immutable copies."""
        if not self.name:
            raise ValueError('ProcessSpec.name must not be empty')
        if isinstance(self.argv, (str, bytes)):
            raise TypeError(f"ProcessSpec '{self.name}': argv must be a sequence, not a string")
        if not self.argv:
            raise ValueError(f"ProcessSpec '{self.name}': argv must not be empty")
        if self.respawn and self.required:
            raise ValueError(f"ProcessSpec '{self.name}': a respawning process cannot be required")
        if self.respawn_delay_s < 0:
            raise ValueError(f"ProcessSpec '{self.name}': respawn_delay_s must be >= 0")
        object.__setattr__(self, 'argv', tuple(self.argv))
        if self.env is not None:
            object.__setattr__(self, 'env', types.MappingProxyType(dict(self.env)))


class _Output:
    """Writes whole prefixed lines to one stream from any thread, never interleaving them."""

    def __init__(self, stream: TextIO, color: bool) -> None:
        self._stream = stream
        self._color = color
        self._lock = threading.Lock()

    def line(self, name: str, text: str, colour: int) -> None:
        """Writes ``[name] text`` and a newline, the tag in ANSI ``colour`` if enabled."""
        tag = f'\033[{colour}m[{name}]\033[0m' if self._color else f'[{name}]'
        with self._lock:
            try:
                self._stream.write(f'{tag} {text}\n')
                self._stream.flush()
            except (OSError, ValueError):
                pass  # closed or broken stream (e.g. piped into `head`): keep draining pipes


@dataclass
class _Child:
    """What the supervisor knows about one spec while the graph runs."""

    spec: ProcessSpec
    colour: int
    proc: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    returncode: int | None = None
    signal_sent: int | None = None  # strongest stop signal sent while it still ran
    respawns: int = 0
    respawn_at: float | None = None  # time.monotonic() of a pending respawn
    exit_times: deque[float] = field(default_factory=deque)  # recent exits (crash loop)
    gave_up: bool = False  # a crash loop: no more respawns, counted as failed

    @property
    def pid(self) -> int | None:
        """The process id, or None if it was never started."""
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        """True from a successful start until its exit has been noticed."""
        return self.proc is not None and self.returncode is None

    @property
    def clean(self) -> bool:
        """True if it exited 0, or on the SIGINT we sent before any escalation."""
        if self.returncode == 0:
            return True
        sigint_codes = (-signal.SIGINT, 128 + signal.SIGINT)
        return self.signal_sent == signal.SIGINT and self.returncode in sigint_codes

    def forget_process(self) -> None:
        """Clears what belonged to the exited process, before it is respawned."""
        self.proc = self.reader = self.returncode = self.signal_sent = None

    def poll(self) -> bool:
        """Records the exit code; True only on the call that notices the exit."""
        if self.proc is None or self.returncode is not None:
            return False
        self.returncode = self.proc.poll()
        return self.returncode is not None

    def send(self, sig: signal.Signals) -> None:
        """Sends ``sig`` to the process group (its pgid is its pid: start_new_session)."""
        if self.proc is None:
            return
        self.signal_sent = sig
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass  # the whole group is already gone; poll() will notice the exit


class Launcher:
    """Starts a graph of processes, prefixes their output and stops them all together.

    Use :meth:`run` from a command-line entry point; use :meth:`start`, :meth:`stop`
    and :meth:`wait`, or ``with Launcher(specs) as launcher:``, to drive a graph from
    another thread (tests). A launcher runs its graph once.
    """

    def __init__(self, specs: Iterable[ProcessSpec], *, stop_timeout_s: float = 5.0,
                 stream: TextIO | None = None, color: bool | None = None,
                 respawn_limit: int = RESPAWN_LIMIT,
                 respawn_window_s: float = RESPAWN_WINDOW_S) -> None:
        """Prepares the graph; starts nothing.

        Args:
            specs: The processes, started in this order; names must be unique.
            stop_timeout_s: Grace period (s) after SIGINT, and again after SIGTERM.
            stream: Where prefixed lines go; None means ``sys.stdout`` at call time.
            color: Colour each node's tag; None colours when ``stream`` is a tty and
                ``NO_COLOR`` is unset.
            respawn_limit: Exits of a respawning process within ``respawn_window_s``
                after which it is given up on (a crash loop).
            respawn_window_s: The crash-loop window (s).
        """
        specs = tuple(specs)
        _check_specs(specs)
        if stop_timeout_s <= 0:
            raise ValueError(f'stop_timeout_s must be > 0, got {stop_timeout_s}')
        if respawn_limit < 1 or respawn_window_s <= 0:
            raise ValueError('respawn_limit must be >= 1 and respawn_window_s > 0')
        stream = sys.stdout if stream is None else stream
        self._children = [_Child(spec, _PALETTE[i % len(_PALETTE)],
                                 exit_times=deque(maxlen=respawn_limit))
                          for i, spec in enumerate(specs)]
        self._stop_timeout_s = stop_timeout_s
        self._respawn_window_s = respawn_window_s
        self._out = _Output(stream, _use_color(stream, color))
        self._requests: queue.SimpleQueue[str] = queue.SimpleQueue()  # put() is reentrant
        self._exits: list[_Child] = []  # in the order the exits were noticed
        self._supervisor: threading.Thread | None = None
        self._returncode: int | None = None

    @property
    def pids(self) -> dict[str, int]:
        """Process id of the latest process of each node started so far, by node name."""
        return {c.spec.name: c.pid for c in self._children if c.pid is not None}

    @property
    def respawns(self) -> dict[str, int]:
        """How many times each process has been respawned so far, by node name."""
        return {c.spec.name: c.respawns for c in self._children}

    @property
    def returncode(self) -> int | None:
        """The graph's return code once it has fully stopped, else None."""
        return self._returncode

    def run(self) -> int:
        """Runs the graph to the end and returns its return code.

        In the main thread, SIGINT, SIGTERM and SIGHUP stop the graph while it runs;
        the previous handlers are restored afterwards.
        """
        previous = self._install_signal_handlers()
        try:
            self.start()
            return self.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def start(self) -> None:
        """Starts every process, then a supervisor thread; returns at once."""
        if self._supervisor is not None:
            raise RuntimeError('a Launcher runs its graph only once')
        for child in self._children:
            if not self._spawn(child):
                break  # do not start the rest; the supervisor stops those already running
        self._supervisor = threading.Thread(target=self._supervise, name='samrl-launch',
                                            daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        """Asks the graph to stop; returns at once. Safe from any thread or signal handler.

        Called again while stopping, skips the rest of the current grace period.
        """
        self._requests.put('stop requested')

    def wait(self, timeout: float | None = None) -> int:
        """Blocks until the graph has fully stopped and returns its return code.

        Raises:
            TimeoutError: if it is still running after ``timeout`` seconds.
        """
        if self._supervisor is None:
            raise RuntimeError('Launcher.wait() called before start()')
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._supervisor.is_alive():  # short joins let signal handlers run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f'the graph is still running after {timeout} s')
            self._supervisor.join(POLL_INTERVAL_S)
        assert self._returncode is not None  # _supervise always sets it
        return self._returncode

    def __enter__(self) -> Launcher:
        """Starts the graph."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stops the graph and waits for it; exceptions propagate."""
        self.stop()
        self.wait()

    # Starting processes and printing their output.

    def _install_signal_handlers(self) -> dict[signal.Signals, _SignalHandler]:
        """Routes HANDLED_SIGNALS to stop(); returns the previous handlers.

        Installed before any process starts: a handled signal resets to the default in
        children on exec, so they handle SIGINT even if the launcher was started ignoring it.
        """
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._on_signal) for sig in HANDLED_SIGNALS}

    def _on_signal(self, signum: int, _frame: object) -> None:
        """Signal handler: queues a stop request naming the signal."""
        self._requests.put(f'received {signal.Signals(signum).name}')

    def _spawn(self, child: _Child) -> bool:
        """Starts one process and its output reader; False if it could not be started."""
        spec = child.spec
        try:
            child.proc = subprocess.Popen(
                spec.argv, cwd=spec.cwd, env=_environment(spec.env),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)
        except OSError as error:
            self._record_start_failure(child, error)
            return False
        started = f'respawned (respawn {child.respawns})' if child.respawns else 'started'
        self._log(f"process '{spec.name}' {started} with pid {child.proc.pid}")
        child.reader = threading.Thread(target=self._pump, args=(child,),
                                        name=f'samrl-launch-{spec.name}', daemon=True)
        child.reader.start()
        return True

    def _record_start_failure(self, child: _Child, error: OSError) -> None:
        """Logs why a process could not start, records it as failed, asks for a stop."""
        name = child.spec.name
        missing = isinstance(error, FileNotFoundError)
        child.returncode = EXIT_NOT_FOUND if missing else EXIT_NOT_EXECUTABLE
        self._exits.append(child)
        what = error.filename if error.filename is not None else child.spec.argv[0]
        self._log(f"cannot start process '{name}': {error.strerror}: {what!r}")
        self._requests.put(f"process '{name}' could not be started")

    def _pump(self, child: _Child) -> None:
        """Reader thread: prints each output line of one process until end of file."""
        assert child.proc is not None and child.proc.stdout is not None  # set by _spawn
        with child.proc.stdout as pipe:
            for raw in iter(pipe.readline, b''):
                text = raw.decode('utf-8', errors='replace').rstrip('\r\n')
                self._out.line(child.spec.name, text, child.colour)

    def _log(self, text: str) -> None:
        """Prints one of the launcher's own messages as ``[launch] text``."""
        self._out.line(LAUNCH_NAME, text, _BOLD)

    # Supervising and stopping the graph (supervisor thread).

    def _supervise(self) -> None:
        """Waits for a reason to stop, stops the graph and records its return code."""
        try:
            self._watch()
            self._shutdown()
            self._returncode = self._result()
        finally:
            if self._returncode is None:  # a bug above: leave no process behind
                for child in self._children:
                    if child.running:
                        child.send(signal.SIGKILL)
                self._returncode = 1

    def _watch(self) -> None:
        """Returns, having logged why, once the graph must stop."""
        while (cause := self._next_cause()) is None:
            time.sleep(POLL_INTERVAL_S)
        self._log(cause)

    def _next_cause(self) -> str | None:
        """The reason to stop the graph now, or None to keep it running (respawning)."""
        for child in self._reap():
            if child.spec.required:
                self._exits.append(child)
                return f'{_exit_message(child)}; stopping the graph'
            if child.spec.respawn:
                self._after_respawning_exit(child)
                continue
            self._exits.append(child)
            self._log(f'{_exit_message(child)} (not required; the graph keeps running)')
        try:
            return f'{self._requests.get_nowait()}; stopping the graph'
        except queue.Empty:
            pass
        self._respawn_due()
        if not any(child.running or child.respawn_at is not None for child in self._children):
            return 'all processes have exited'
        return None

    def _after_respawning_exit(self, child: _Child) -> None:
        """Schedules the respawn of an exited process, or gives up on it in a crash loop."""
        now = time.monotonic()
        child.exit_times.append(now)
        if _crash_loop(child.exit_times, self._respawn_window_s):
            child.gave_up = True
            self._exits.append(child)
            self._log(f'{_exit_message(child)}; {len(child.exit_times)} exits within '
                      f'{self._respawn_window_s:g} s: not respawning it (the graph keeps running)')
            return
        child.respawn_at = now + child.spec.respawn_delay_s
        self._log(f'{_exit_message(child)}; respawning it in {child.spec.respawn_delay_s:g} s')

    def _respawn_due(self) -> None:
        """Starts again each process whose respawn delay has passed."""
        now = time.monotonic()
        for child in self._children:
            if child.respawn_at is not None and now >= child.respawn_at:
                child.respawn_at = None
                child.forget_process()
                child.respawns += 1
                self._spawn(child)

    def _shutdown(self) -> None:
        """Sends each stop signal in turn to every group still running, then waits."""
        _drain(self._requests)  # requests made before the stop must not escalate it
        previous = None
        for sig in STOP_SIGNALS:
            alive = [child for child in self._children if child.running]
            for child in alive:
                if previous is not None:
                    self._log(f"process '{child.spec.name}' still running after "
                              f'{previous.name}; sending {sig.name}')
                child.send(sig)
            if alive:
                self._await_exits(time.monotonic() + self._stop_timeout_s)
            previous = sig
        for child in self._children:
            if child.running:
                self._log(f"process '{child.spec.name}' (pid {child.pid}) survived SIGKILL")

    def _await_exits(self, deadline: float) -> None:
        """Logs exits until none is running, the deadline passes, or a new stop request."""
        while time.monotonic() < deadline:
            for child in self._reap():
                self._exits.append(child)
                self._log(_exit_message(child))
            if not any(child.running for child in self._children):
                return
            try:
                self._log(f'{self._requests.get_nowait()} again; escalating')
                return
            except queue.Empty:
                time.sleep(POLL_INTERVAL_S)

    def _reap(self) -> Iterator[_Child]:
        """Yields each process whose exit is noticed now, after its output has drained.

        The caller records in ``_exits`` the exits that count towards the return code.
        """
        for child in self._children:
            if child.poll():
                if child.reader is not None:
                    child.reader.join(READER_JOIN_TIMEOUT_S)
                yield child

    def _result(self) -> int:
        """Logs the respawns and the outcome; returns the graph's return code (module doc)."""
        respawned = [c for c in self._children if c.respawns]
        if respawned:
            self._log('respawns: ' + ', '.join(f"'{c.spec.name}' {c.respawns}" for c in respawned))
        failed = [c for c in self._exits if c.gave_up or not c.clean]
        failed += [c for c in self._children if c.running]
        if not failed:
            self._log('graph stopped cleanly')
            return 0
        code = failed[0].returncode
        code = code if code is not None and code > 0 else 1
        names = ', '.join(f"'{c.spec.name}' ({_failure(c)})" for c in failed)
        self._log(f'graph stopped with code {code}; failed: {names}')
        return code


def _crash_loop(exit_times: deque[float], window_s: float) -> bool:
    """True once the deque of recent exit times is full and spans at most ``window_s``."""
    full = exit_times.maxlen is not None and len(exit_times) == exit_times.maxlen
    return full and exit_times[-1] - exit_times[0] <= window_s


def _check_specs(specs: tuple[ProcessSpec, ...]) -> None:
    """Raises ValueError for an empty graph or a repeated node name."""
    if not specs:
        raise ValueError('a graph needs at least one ProcessSpec')
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f'node names must be unique; repeated: {repeated}')


def _use_color(stream: TextIO, color: bool | None) -> bool:
    """Resolves the ``color`` argument: None means a tty and no ``NO_COLOR`` variable."""
    if color is not None:
        return color
    isatty = getattr(stream, 'isatty', None)
    return 'NO_COLOR' not in os.environ and isatty is not None and isatty()


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    """``os.environ`` with ``extra`` merged over it, for one process."""
    env = dict(os.environ)
    env.setdefault('PYTHONUNBUFFERED', '1')  # Python nodes: each line reaches the pipe now
    env.update(extra or {})
    return env


def _signal_name(returncode: int) -> str | None:
    """``'SIGINT'`` for -2: the signal that ended a process, or None if none did."""
    try:
        return signal.Signals(-returncode).name if returncode < 0 else None
    except ValueError:
        return None


def _describe(returncode: int | None) -> str:
    """``code 3``, ``code -2 (SIGINT)``, or ``still running``."""
    if returncode is None:
        return 'still running'
    name = _signal_name(returncode)
    return f'code {returncode}' if name is None else f'code {returncode} ({name})'


def _outcome(returncode: int | None) -> str:
    """``code 3``, ``SIGKILL``, or ``still running``: how a failed process ended."""
    name = None if returncode is None else _signal_name(returncode)
    return _describe(returncode) if name is None else name


def _failure(child: _Child) -> str:
    """How a failed process ended, e.g. ``SIGKILL`` or ``code 3, crash loop``."""
    return f'{_outcome(child.returncode)}, crash loop' if child.gave_up else _outcome(child.returncode)


def _exit_message(child: _Child) -> str:
    """``process 'x' exited with code 3``."""
    return f"process '{child.spec.name}' exited with {_describe(child.returncode)}"


def _drain(requests: queue.SimpleQueue[str]) -> None:
    """Discards every queued stop request."""
    while not requests.empty():
        requests.get_nowait()
