"""Wall time per named stage of a loop, for profiling an update without a profiler's overhead."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager


class Stopwatch:
    """Accumulates seconds and counts per stage name; `timed(name)` is a context manager."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    @contextmanager
    def timed(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.counts[name] += 1

    def merge(self, other: Stopwatch) -> None:
        for name, seconds in other.seconds.items():
            self.seconds[name] += seconds
            self.counts[name] += other.counts[name]


def timed(stopwatch: Stopwatch | None, name: str):
    """`stopwatch.timed(name)`, or a context that does nothing when there is no stopwatch."""
    return stopwatch.timed(name) if stopwatch is not None else _NOTHING


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NOTHING = _Nothing()
