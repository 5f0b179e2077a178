"""Where a loop's time goes: named stage durations per tick, summarised as count, mean and p95 (ROS-free).

policy_node, viewpoint_node and model_node each feed one with the stage timings of their cores and log
its summary every so many ticks and when they stop, so that `samrl launch` output says what a control
step costs, stage by stage. The sim bridge keeps its command latencies in a `Durations` too.

Every duration is kept (8 bytes each, in an array) so that p95 is exact rather than estimated: a 10 Hz
loop running for a day holds under 7 MB per stage.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MS_PER_S = 1e3
SUMMARY_QUANTILE = 0.95         # the "p95" of the summaries
TOTAL_STAGE = 'total'           # a stage of this name is the tick's total (cores that time the whole tick report it)
PROGRESS_PERIOD_TICKS = 50      # how often a long run's nodes log the summary so far


def quantile(values: Iterable[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of `values`, linear between order statistics (numpy's default);
    nan when there are none."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def checked_duration(seconds: float) -> float:
    """`seconds` if it is a duration; ValueError for a negative or non-finite one (a clock misused)."""
    if not (math.isfinite(seconds) and seconds >= 0.0):
        raise ValueError(f'a duration must be finite and >= 0 s, got {seconds}')
    return float(seconds)


@dataclass(frozen=True)
class Spread:
    """Count, mean, p95 and max of a series of durations (s); nan statistics when it is empty."""

    count: int
    mean_s: float
    p95_s: float
    max_s: float

    def text_ms(self) -> str:
        """'mean 12.3 ms, p95 15.1 ms, max 20.0 ms'."""
        return (f'mean {self.mean_s * MS_PER_S:.1f} ms, p95 {self.p95_s * MS_PER_S:.1f} ms, '
                f'max {self.max_s * MS_PER_S:.1f} ms')


class Durations:
    """One series of durations (s), e.g. one stage of a loop or the latency of commands."""

    def __init__(self):
        self._seconds = array('d')

    def __len__(self) -> int:
        return len(self._seconds)

    def add(self, seconds: float) -> None:
        self._seconds.append(checked_duration(seconds))

    def spread(self) -> Spread:
        if not self._seconds:
            return Spread(0, math.nan, math.nan, math.nan)
        return Spread(len(self._seconds), sum(self._seconds) / len(self._seconds),
                      quantile(self._seconds, SUMMARY_QUANTILE), max(self._seconds))


class StageTimes:
    """Stage durations per tick of one loop, with the total per tick.

    `tick` names one tick in the summaries ('control step', 'view step', 'tracking update'). A stage
    may be missing from some ticks (a coarse model only at an episode's start): each stage counts the
    ticks it ran in.
    """

    def __init__(self, tick: str = 'tick', progress_period: int = PROGRESS_PERIOD_TICKS):
        if progress_period < 1:
            raise ValueError(f'progress_period must be >= 1 tick, got {progress_period}')
        self.tick, self.progress_period = tick, progress_period
        self._stages: dict[str, Durations] = {}      # in the order first seen, as the cores report them
        self._total = Durations()

    @property
    def ticks(self) -> int:
        return len(self._total)

    def record(self, stages_s: Mapping[str, float]) -> bool:
        """Add one tick's stage durations (s); True when a progress summary is due (every
        `progress_period` ticks). The tick's total is the TOTAL_STAGE entry when there is one (the stages
        may then overlap or leave gaps), else the stages' sum. A bad duration (ValueError) records nothing."""
        for seconds in stages_s.values():
            checked_duration(seconds)
        self._total.add(stages_s.get(TOTAL_STAGE, sum(stages_s.values())))
        for stage, seconds in stages_s.items():
            if stage != TOTAL_STAGE:
                self._stages.setdefault(stage, Durations()).add(seconds)
        return self.ticks % self.progress_period == 0

    def spreads(self) -> dict[str, Spread]:
        """Each stage's spread in the order first seen, then TOTAL_STAGE's."""
        return {**{stage: d.spread() for stage, d in self._stages.items()}, TOTAL_STAGE: self._total.spread()}

    def line(self) -> str:
        """One line: 'stage times over 50 control steps (mean / p95 ms): render 12.3 / 15.1, ..., total ...'."""
        if not self.ticks:
            return f'stage times: no {self.tick} timed'
        parts = ', '.join(f'{stage} {s.mean_s * MS_PER_S:.1f} / {s.p95_s * MS_PER_S:.1f}'
                          for stage, s in self.spreads().items())
        return f'stage times over {self.ticks} {self.tick}s (mean / p95 ms): {parts}'

    def table(self) -> str:
        """A table with a row per stage and one for the total: count, mean and p95 in ms."""
        if not self.ticks:
            return f'stage times: no {self.tick} timed'
        spreads = self.spreads()
        width = max(len(stage) for stage in spreads)
        rows = [f'  {"stage":<{width}}  {"count":>6}  {"mean ms":>9}  {"p95 ms":>9}']
        rows += [f'  {stage:<{width}}  {s.count:>6}  {s.mean_s * MS_PER_S:>9.1f}  {s.p95_s * MS_PER_S:>9.1f}'
                 for stage, s in spreads.items()]
        return f'stage times per {self.tick} over {self.ticks} {self.tick}s:\n' + '\n'.join(rows)
