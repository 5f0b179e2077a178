"""`samrl train learn-at-sim`, `eval table1` and `viewpoint heatmap` on a tiny configuration, as processes."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import torch

TINY = ['--rounds', '1', '--episodes-per-round', '1', '--views', '2', '--epochs', '1', '--eval-episodes', '1',
        '--q-episodes', '2', '--q-epochs', '1', '--max-steps', '3']


def _samrl(*args, timeout=600):
    done = subprocess.run([sys.executable, '-m', 'samrl_bringup.cli', *args], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _weights(path):
    return {k: v for k, v in torch.load(path, weights_only=True)['state_dict'].items()}


def test_the_cli_offers_exactly_the_networks_encoders():
    from samrl_bringup.learning_commands import ENCODER_NAMES
    from samrl_policy.networks import ENCODERS
    assert ENCODER_NAMES == ENCODERS


def test_the_cli_offers_exactly_the_fits_learning_rate_schedules():
    from samrl_bringup.learning_commands import LR_SCHEDULE_NAMES
    from samrl_policy.training import LEARNING_RATE_SCHEDULES
    assert LR_SCHEDULE_NAMES == LEARNING_RATE_SCHEDULES


def test_beta_rounds_and_no_tool_position_reach_the_configs():
    from samrl_bringup.cli import build_parser
    from samrl_bringup.learning_commands import _dagger_config
    from samrl_policy.dagger import beta_schedule
    args = build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', '--rounds', '3', '--beta-rounds', '1'])
    config = _dagger_config(args)
    schedule = beta_schedule(config.beta, config.beta_parameter)
    assert [schedule(r) for r in range(config.rounds)] == [1.0, 0.0, 0.0]
    assert config.network is None                                  # NetworkConfig's defaults
    assert not config.pin_constant_actions and config.learning_rate_schedule == 'constant'
    cosine = build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', '--lr-schedule', 'cosine'])
    assert _dagger_config(cosine).learning_rate_schedule == 'cosine'
    assert build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', '--size', '128x96']).size == (128, 96)
    args = build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', '--no-tool-position',
                                      '--pin-actions'])
    assert not _dagger_config(args).network.tool_position and _dagger_config(args).pin_constant_actions


def test_q_branching_and_ranking_reach_the_config_and_ranking_without_views_is_refused(capsys):
    import pytest

    from samrl_bringup.cli import build_parser
    from samrl_bringup.learning_commands import _q_config
    args = build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', '--q-views-per-state', '8',
                                      '--q-branch-steps', '10', '--q-ranking-weight', '0.5'])
    config = _q_config(args)
    assert (config.views_per_state, config.branch_steps, config.ranking_weight) == (8, 10, 0.5)
    defaults = _q_config(build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion']))
    assert (defaults.branch_steps, defaults.ranking_weight) == (0, 0.0)
    for flag, bad in (('--q-branch-steps', '-1'), ('--q-ranking-weight', '-0.1'), ('--q-ranking-weight', 'x')):
        with pytest.raises(SystemExit):
            build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', flag, bad])
        assert 'must be' in capsys.readouterr().err
    alone = build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', '--q-ranking-weight', '1'])
    with pytest.raises(SystemExit, match='views_per_state >= 2'):
        _q_config(alone)
    one = build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', '--q-episodes', '1'])
    with pytest.raises(SystemExit, match='episodes 1 must be >= 2'):     # none would be left to measure Q on
        _q_config(one)


def test_a_q_training_fraction_reaches_the_config_and_runs_begun_before_it_keep_their_config(capsys):
    import pytest

    from samrl_bringup.cli import build_parser
    from samrl_bringup.learning_commands import _q_config
    from samrl_policy.learn_at_sim import LearnAtSimConfig, _stage_config

    def q_config(*flags):
        return _q_config(build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', *flags]))

    part, whole = q_config('--q-training-fraction', '0.25'), q_config()
    assert (part.training_fraction, whole.training_fraction) == (0.25, 1.0)
    run = LearnAtSimConfig(task='peg_insertion')
    assert _stage_config(run, 'q', part)['training_fraction'] == 0.25
    assert 'training_fraction' not in _stage_config(run, 'q', whole)    # as in a run directory begun before it
    for bad in ('0', '1.5', 'x'):
        with pytest.raises(SystemExit):
            q_config('--q-training-fraction', bad)
        assert 'must be' in capsys.readouterr().err


def test_zoom_reaches_the_renders_and_the_networks_and_a_bad_one_is_refused(capsys):
    import pytest

    from samrl_bringup.cli import build_parser
    from samrl_bringup.learning_commands import _dagger_config, _q_config
    from samrl_policy.learn_at_sim import LearnAtSimConfig, _check_zoom
    args = build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', '--zoom', '2'])
    assert args.zoom == 2.0 and _dagger_config(args).network.image_zoom == 2.0
    assert _q_config(args).network.image_zoom == 2.0
    for bad in ('0.5', 'x', '100'):
        with pytest.raises(SystemExit):
            build_parser().parse_args(['train', 'learn-at-sim', 'peg_insertion', '--zoom', bad])
        assert 'zoom must' in capsys.readouterr().err
    with pytest.raises(ValueError, match='image_zoom'):         # networks told 1, renders zoomed 2
        _check_zoom(LearnAtSimConfig('peg_insertion', image_zoom=2.0))


def test_a_killed_run_does_not_skip_the_episode_it_was_in(tmp_path):
    run = tmp_path / 'run'
    process = subprocess.Popen([sys.executable, '-m', 'samrl_bringup.cli', 'train', 'learn-at-sim', 'peg_insertion',
                                '--run-dir', str(run), *TINY], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list(run.glob('actor/data/*.running')) and time.monotonic() < deadline:
            time.sleep(0.2)
        ledgers = list(run.glob('actor/data/*.running'))
        assert ledgers, 'no episode started within 300 s'
        process.terminate()
        assert process.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        process.kill()
    assert json.loads(ledgers[0].read_text()) == {'skipped': [], 'running': None}


def test_learn_at_sim_then_table1_and_fig4(tmp_path):
    run = tmp_path / 'run'
    out = _samrl('train', 'learn-at-sim', 'peg_insertion', '--run-dir', str(run), *TINY, '--encoder', 'world_keypoints',
                 '--size', '48x40')
    assert 'actor.pt, fixed_actor.pt, q.pt' in out
    assert json.loads((run / 'actor' / 'config.json').read_text())['image_size'] == [40, 48]   # (height, width)
    for name in ('actor', 'fixed_actor', 'q'):
        assert (run / f'{name}.pt').exists() and (run / f'{name}_card.json').exists()
        assert torch.load(run / f'{name}.pt', weights_only=True)
    card = json.loads((run / 'actor_card.json').read_text())
    assert 'learn-at-sim' in json.dumps(card)                      # the exact command is in the card
    for name in ('actor', 'q'):                                    # --encoder reaches every network
        assert torch.load(run / f'{name}.pt', weights_only=True)['config']['encoder'] == 'world_keypoints'
    before = _weights(run / 'actor.pt')
    _samrl('train', 'learn-at-sim', 'peg_insertion', '--run-dir', str(run), *TINY, '--encoder', 'world_keypoints',
           '--size', '48x40')
    after = _weights(run / 'actor.pt')
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)

    q_only = tmp_path / 'q_only'                                  # Q alone, on the finished run's actors
    _samrl('train', 'learn-at-sim', 'peg_insertion', '--run-dir', str(q_only), '--actors-from', str(run), *TINY,
           '--size', '48x40')
    assert _weights(q_only / 'actor.pt').keys() == after.keys() and not (q_only / 'actor' / 'checkpoints').exists()
    assert (q_only / 'q.pt').exists() and (q_only / 'actor' / 'config.json').exists()
    assert '--actors-from' in json.loads((q_only / 'q_card.json').read_text())['command']
    refused = subprocess.run([sys.executable, '-m', 'samrl_bringup.cli', 'train', 'learn-at-sim', 'peg_insertion',
                              '--run-dir', str(tmp_path / 'q_64'), '--actors-from', str(run), *TINY],
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and '48x40 renders' in refused.stderr and 'Traceback' not in refused.stderr

    table = tmp_path / 'table1.json'
    out = _samrl('eval', 'table1', '--tasks', 'peg_insertion', '--runs', str(run), '--episodes', '1',
                 '--json', str(table), '--png', str(tmp_path / 'table1.png'))
    summary = json.loads(table.read_text())['results'][0]
    assert summary['episodes'] == 1 and set(summary['conditions']) == {'ours', 'no_pose_optimisation', 'fixed_view'}
    assert summary['conditions']['ours']['seconds_per_step']['view step'] > 0
    assert (tmp_path / 'table1.png').stat().st_size > 1000 and 'Fixed View' in out

    png = tmp_path / 'fig4.png'
    _samrl('viewpoint', 'heatmap', 'peg_insertion', '--run-dir', str(run), '--grid', '3x2', '--png', str(png))
    assert png.stat().st_size > 1000 and png.with_suffix('.json').exists()

    saved = tmp_path / 'refit' / 'actor.pt'                        # the diagnostic refit, kept for evaluation
    done = subprocess.run([sys.executable, '-m', 'samrl_policy.refit_rounds', str(run / 'actor'), '--rounds', '0',
                           '--epochs', '1', '--eval-episodes', '1', '--save', str(saved)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert torch.load(saved, weights_only=True)['config']['encoder'] == report['encoder'] == 'keypoints'
    card = json.loads(saved.with_name('actor_card.json').read_text())
    assert card['metrics']['success_rate'] == report['success_rate'] and '--save' in card['command']

    trace = tmp_path / 'trace.json'                                # the learner beside the expert, step by step
    done = subprocess.run([sys.executable, '-m', 'samrl_policy.action_trace', str(run), '--steps', '2',
                           '--json', str(trace)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(trace.read_text())['rows']
    assert [row['step'] for row in rows] == [0, 1] and 'cos' in done.stdout
    assert all(len(row['actor']) == len(row['expert']) == 7 and -1 <= row['translation_cosine'] <= 1 for row in rows)


def test_the_trace_cosine_compares_directions():
    from samrl_policy.action_trace import cosine
    assert cosine(np.array([1.0, 0, 0]), np.array([-2.0, 0, 0])) == -1.0
    assert cosine(np.array([1.0, 1.0, 0]), np.array([0, 0, 3.0])) == 0.0
    assert cosine(np.zeros(3), np.array([1.0, 0, 0])) == 0.0          # no move has no direction
