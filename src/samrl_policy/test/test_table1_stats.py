"""Table I's statistics: Wilson intervals, McNemar's exact test, the summary over paired episodes."""
import math

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


def test_view_step_summary_reports_q_gain_acceptance_and_how_far_the_camera_went():
    from samrl_policy.table1 import view_step_summary
    start = [0.0, 0.5, 0.6, 0.5, 0.0, 0.1]
    rows = [{'view_steps_accepted': 2, 'q_start': 1.0, 'q_gains': [0.5, 0.5, 0.0], 'view_start': start,
             'view_end': [math.radians(10), 0.5 - math.radians(4), 0.7, 0.5, 0.03, 0.14]},
            {'view_steps_accepted': 0, 'q_start': 3.0, 'q_gains': [0.0], 'view_start': start, 'view_end': start},
            {'view_steps_accepted': 0, 'seconds': {}}]                 # a record from before: skipped
    moves = view_step_summary(rows)
    assert moves['episodes'] == 2 and moves['accepted_share'] == pytest.approx(2 / 4)
    assert moves['mean_q_gain_per_accepted_step'] == pytest.approx(0.5)
    assert moves['mean_q_gain_per_episode'] == pytest.approx(0.5)
    assert moves['mean_abs_azimuth_change_deg'] == pytest.approx(5.0)
    assert moves['mean_abs_elevation_change_deg'] == pytest.approx(2.0)
    assert moves['mean_abs_distance_change_m'] == pytest.approx(0.05)
    assert moves['mean_distance_change_m'] == pytest.approx(0.05)          # the first went 0.1 m farther
    assert moves['mean_look_at_move_m'] == pytest.approx(0.025)
    assert view_step_summary(rows[2:]) == {'episodes': 0}


def test_start_q_auc_is_the_chance_that_a_winning_start_view_has_the_higher_q():
    from samrl_policy.table1 import start_q_auc
    ours = [{'q_start': q, 'q_gains': [0.0]} for q in (1.0, 2.0, 3.0, 4.0)]
    assert start_q_auc(ours, [False, False, True, True]) == 1.0
    assert start_q_auc(ours, [True, True, False, False]) == 0.0
    assert start_q_auc(ours, [True, False, True, False]) == pytest.approx(0.25)   # of 1, 3 against 2, 4: only 3 > 2
    assert math.isnan(start_q_auc(ours, [True] * 4))


def test_start_view_aucs_say_which_view_parameter_goes_with_the_camera_still_outcome():
    from samrl_policy.table1 import start_view_aucs
    views = [[0.1 * i, 0.5, 0.6 - 0.1 * i, 0.5, 0.0, 0.1] for i in range(4)]      # azimuth up, distance down
    aucs = start_view_aucs([{'view_start': v} for v in views], [False, False, True, True])
    assert aucs['azimuth_rad'] == 1.0 and aucs['distance_m'] == 0.0 and aucs['elevation_rad'] == 0.5
    assert list(aucs) == ['azimuth_rad', 'elevation_rad', 'distance_m', 'look_at_x_m', 'look_at_y_m', 'look_at_z_m']
    assert math.isnan(start_view_aucs([{'view_start': v} for v in views], [True] * 4)['azimuth_rad'])


def test_a_worker_crash_records_its_episode_as_an_aborted_failure_and_a_new_worker_goes_on(tmp_path, monkeypatch):
    import json
    import signal

    from samrl_policy import table1
    records = tmp_path / 'table1.jsonl'
    workers = []

    def worker(command):            # stands in for `python -m samrl_policy.table1`: the first one aborts
        workers.append(command)
        for seed, condition in table1.pending_jobs(2, 0, records):
            table1.running_path(records).write_text(json.dumps([condition, seed]))
            if len(workers) == 1 and condition == 'no_pose_optimisation':
                return -signal.SIGABRT
            success = {key: value for key, value in table1.aborted_record(condition, seed, '').items()
                       if key != 'aborted'}
            table1._append(records, {**success, 'success': True, 'steps': 3})
        return 0

    monkeypatch.setattr(table1.subprocess, 'call', worker)
    rows = table1.evaluate_task_isolated('peg_insertion', tmp_path, 2, 0, records, progress=False)
    assert len(workers) == 2 and len(rows) == 6
    aborted = [r for r in rows if not r['success']]
    assert len(aborted) == 1 and aborted[0]['condition'] == 'no_pose_optimisation'
    assert aborted[0]['aborted'] == 'SIGABRT'
    summary = table1.summarise(rows, 'peg_insertion')
    assert summary['conditions']['no_pose_optimisation']['aborted'] == 1


def test_a_worker_that_fails_otherwise_stops_the_evaluation(tmp_path, monkeypatch):
    import pytest

    from samrl_policy import table1
    monkeypatch.setattr(table1.subprocess, 'call', lambda command: 2)
    with pytest.raises(RuntimeError, match='exited with code 2'):
        table1.evaluate_task_isolated('peg_insertion', tmp_path, 1, 0, tmp_path / 'r.jsonl', progress=False)
