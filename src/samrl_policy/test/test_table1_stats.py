"""Table I's statistics: Wilson intervals, McNemar's exact test, the summary over paired episodes."""
import pytest

from samrl_policy.table1 import CONDITIONS, format_summary, mcnemar_p, read_records, summarise, wilson_interval


def test_wilson_interval_matches_the_textbook_case():
    low, high = wilson_interval(82, 100)          # 0.82 of 100: Wilson 95 % [0.733, 0.883]
    assert low == pytest.approx(0.7330, abs=1e-3) and high == pytest.approx(0.8829, abs=1e-3)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_mcnemar_counts_only_discordant_pairs():
    same = [True, False, True]
    assert mcnemar_p(same, same) == 1.0
    first = [True] * 12 + [False] * 8
    second = [False] * 12 + [False] * 8           # 12 discordant, all for the first: p = 2 * 0.5^12
    assert mcnemar_p(first, second) == pytest.approx(2 * 0.5 ** 12)


def test_summary_pairs_episodes_and_skips_unfinished_seeds(tmp_path):
    seconds = {'view step': 0.1, 'render': 0.02, 'actor': 0.001, 'physics': 0.01}
    records = [{'condition': c, 'seed': s, 'success': c == 'ours' or s % 2 == 0, 'steps': 10,
                'view_steps_accepted': 3, 'seconds': seconds} for s in range(6) for c in CONDITIONS]
    records.append({'condition': 'ours', 'seed': 99, 'success': True, 'steps': 5, 'view_steps_accepted': 0,
                    'seconds': seconds})                     # no other condition finished seed 99
    summary = summarise(records, 'needle_threading')
    assert summary['episodes'] == 6
    assert summary['conditions']['ours']['success_rate'] == 1.0
    assert summary['conditions']['fixed_view']['success_rate'] == 0.5
    assert summary['conditions']['fixed_view']['mcnemar_p_vs_ours'] == pytest.approx(0.25)
    assert summary['conditions']['ours']['seconds_per_step']['view step'] == pytest.approx(0.01)
    assert 'Fixed View' in format_summary(summary)
    path = tmp_path / 'episodes.jsonl'
    path.write_text('{"condition": "ours", "seed": 1}\n{"torn')        # a stop mid-write
    assert read_records(path) == [{'condition': 'ours', 'seed': 1}]
