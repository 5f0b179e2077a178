"""The one `main()` shape of every samrl node: build, spin, end quietly on Ctrl-C."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from samrl_common.params import ParameterError

EXIT_BAD_PARAMETERS = 2


def run_node(build: Callable[[list[str] | None], object], argv: list[str] | None = None) -> int:
    """Build the node with `build(argv)` and spin it until Ctrl-C/SIGTERM or node.shutdown().

    A bad parameter stops start-up with a message naming it and exit code 2.
    """
    # A process started in the background (nohup, CI) inherits SIGINT ignored; Ctrl-C and the
    # launcher's SIGINT must still end the node through destroy(), which logs its summary.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        node = build(argv)
    except (ParameterError, ValueError) as exc:
        print(f'[FATAL] start-up failed: {exc}', file=sys.stderr, flush=True)
        return EXIT_BAD_PARAMETERS
    signal.signal(signal.SIGTERM, lambda *_: node.shutdown())
    try:
        node.spin()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy()
    return getattr(node, 'exit_code', 0)
