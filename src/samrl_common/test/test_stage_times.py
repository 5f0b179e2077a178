"""stage_times: per-tick stage durations summarised as count, mean and p95 (ms), with the total per tick."""
import math

import numpy as np
import pytest

from samrl_common.stage_times import TOTAL_STAGE, Durations, StageTimes, quantile

MS = 1e-3      # one millisecond (s)


@pytest.mark.parametrize('values', [[1.0], [3.0, 1.0], [5.0, 1.0, 4.0, 2.0, 3.0], list(np.linspace(0, 1, 37) ** 2)])
@pytest.mark.parametrize('q', [0.0, 0.5, 0.95, 1.0])
def test_quantile_is_numpys_linear_quantile(values, q):
    assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))


def test_an_empty_series_has_nan_statistics():
    spread = Durations().spread()
    assert spread.count == 0 and math.isnan(spread.mean_s) and math.isnan(spread.p95_s) and math.isnan(spread.max_s)


@pytest.mark.parametrize('bad', [-MS, math.nan, math.inf])
def test_a_negative_or_non_finite_duration_is_refused(bad):
    with pytest.raises(ValueError, match='duration'):
        Durations().add(bad)


def test_a_series_gives_count_mean_p95_and_max():
    durations = Durations()
    for ms in range(1, 101):                       # 1..100 ms
        durations.add(ms * MS)
    spread = durations.spread()
    assert spread.count == 100
    assert spread.mean_s == pytest.approx(50.5 * MS)
    assert spread.p95_s == pytest.approx(95.05 * MS)
    assert spread.max_s == pytest.approx(100 * MS)
    assert spread.text_ms() == 'mean 50.5 ms, p95 95.0 ms, max 100.0 ms'


def test_the_total_per_tick_is_the_sum_of_its_stages():
    times = StageTimes('control step')
    times.record({'render': 10 * MS, 'actor': 2 * MS})
    times.record({'render': 20 * MS, 'actor': 4 * MS})
    spreads = times.spreads()
    assert list(spreads) == ['render', 'actor', TOTAL_STAGE]
    assert spreads['render'].mean_s == pytest.approx(15 * MS)
    assert spreads[TOTAL_STAGE].mean_s == pytest.approx(18 * MS)
    assert times.ticks == 2


def test_a_total_stage_is_the_ticks_total_not_a_stage():
    """Cores whose stages nest or leave gaps (the tracker, a view step) report the tick's wall time."""
    times = StageTimes()
    times.record({'optimise': 30 * MS, 'backward': 20 * MS, TOTAL_STAGE: 35 * MS})
    spreads = times.spreads()
    assert list(spreads) == ['optimise', 'backward', TOTAL_STAGE]
    assert spreads[TOTAL_STAGE].mean_s == pytest.approx(35 * MS)


def test_a_stage_counts_only_the_ticks_it_ran_in():
    times = StageTimes()
    times.record({'coarse model': 100 * MS, 'refit': 10 * MS})
    for _ in range(3):
        times.record({'refit': 10 * MS})
    spreads = times.spreads()
    assert (spreads['coarse model'].count, spreads['refit'].count, spreads[TOTAL_STAGE].count) == (1, 4, 4)
    assert spreads[TOTAL_STAGE].mean_s == pytest.approx(35 * MS)


def test_a_tick_with_a_bad_duration_records_nothing():
    times = StageTimes()
    with pytest.raises(ValueError):
        times.record({'render': 10 * MS, 'actor': -1 * MS})
    assert times.ticks == 0 and list(times.spreads()) == [TOTAL_STAGE]


def test_a_progress_summary_is_due_every_period():
    times = StageTimes(progress_period=3)
    assert [times.record({'a': MS}) for _ in range(7)] == [False, False, True, False, False, True, False]
    with pytest.raises(ValueError, match='progress_period'):
        StageTimes(progress_period=0)


def test_the_line_and_the_table_give_each_stage_and_the_total_in_ms():
    times = StageTimes('control step')
    for ms in (10, 20):
        times.record({'render': ms * MS, 'actor': 2 * MS})
    assert times.line() == ('stage times over 2 control steps (mean / p95 ms): render 15.0 / 19.5, '
                            'actor 2.0 / 2.0, total 17.0 / 21.5')
    assert times.table().splitlines() == [
        'stage times per control step over 2 control steps:',
        '  stage    count    mean ms     p95 ms',
        '  render       2       15.0       19.5',
        '  actor        2        2.0        2.0',
        '  total        2       17.0       21.5']


def test_a_loop_that_never_ticked_says_so():
    times = StageTimes('view step')
    assert times.line() == times.table() == 'stage times: no view step timed'
