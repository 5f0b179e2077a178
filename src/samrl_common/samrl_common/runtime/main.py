"""The one `main()` shape of every samrl node: build, spin, end quietly on Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable

from samrl_common.params import ParameterError

EXIT_BAD_PARAMETERS = 2


def run_node(build: Callable[[list[str] | None], object], argv: list[str] | None = None) -> int:
    """Build the node with `build(argv)`, spin it until Ctrl-C/SIGTERM or node.shutdown(), destroy it
    and end the process with the node's `exit_code` (0 by default).

    A bad parameter stops start-up with a message naming it and returns exit code 2.
    """
    # A process started in the background (nohup, CI) inherits SIGINT ignored; Ctrl-C and the
    # launcher's SIGINT must still end it. During start-up Ctrl-C interrupts at once.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        node = build(argv)
    except (ParameterError, ValueError) as exc:
        print(f'[FATAL] start-up failed: {exc}', file=sys.stderr, flush=True)
        return EXIT_BAD_PARAMETERS
    signal.signal(signal.SIGTERM, lambda *_: node.shutdown())
    signal.signal(signal.SIGINT, stop_handler(node))
    try:
        node.spin()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy()
    exit_now(getattr(node, 'exit_code', 0))


def exit_now(code: int) -> None:
    """End the process once the node has closed what it owns: flush the streams and skip the
    interpreter's teardown, in which torch alone spends about 1 s here (Dr.Jit and nimble add to it).
    That second would come out of the launcher's grace between SIGINT and SIGTERM (5 s, as ros2 launch)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe: nothing left to save
            pass
    os._exit(code)


def stop_handler(node) -> Callable[[int, object], None]:
    """SIGINT while spinning: the first asks the node to stop after the callback it is in (so a render
    or a network is never interrupted halfway, inside Dr.Jit or torch), a second stops it at once."""
    received = []

    def on_sigint(_signum: int, _frame: object) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(True)
        node.shutdown()
    return on_sigint
