"""Random and adversarial commands through both cores, 10,000 per core as the issue asks (about 40 s; `python -m
samrl_hardware.stress` runs the same with other seeds and counts), and proof that the auditor would notice a core
that let one through."""

from __future__ import annotations

import json

import pytest
from samrl_hardware.stress import FRANKA_KINDS, RIZON_KINDS, FrankaStress, RizonStress, example_calibration

from samrl_hardware import franka, rizon, stress
from samrl_sim.safety import EeLimits, WorkspaceBox, validate_ee_delta

COUNT = 10_000


@pytest.fixture(scope='module')
def result() -> dict:
    return stress.run(COUNT, seed=7)


@pytest.mark.parametrize('arm', ['franka', 'rizon'])
def test_nothing_outside_the_limits_is_accepted_and_every_refusal_says_why(result, arm):
    summary = result[arm]
    assert summary['commands'] >= COUNT              # a burst or a stop episode may finish past it
    assert summary['accepted_outside_limits'] == 0, summary['violations']
    assert summary['refusals_without_reason'] == 0
    assert summary['passed'] and summary['accepted'] + summary['refused'] == summary['commands']
    assert summary['accepted'] > COUNT // 5            # valid commands do get through


def test_every_adversarial_kind_is_sent_and_the_invalid_ones_all_refused(result):
    franka_kinds, rizon_kinds = result['franka']['by_kind'], result['rizon']['by_kind']
    assert set(FRANKA_KINDS) - {'stop'} <= set(franka_kinds)
    assert set(RIZON_KINDS) - {'stop'} <= set(rizon_kinds)
    never = {'franka': ('nan', 'inf', 'huge', 'malformed', 'gripper', 'too_large'),
             'rizon': ('nan', 'inf', 'bad_quaternion', 'out_of_box', 'out_of_reach', 'huge_turn', 'plan_fails',
                       'plan_fails_silently', 'plan_nan', 'plan_leaves_box', 'plan_too_fast', 'plan_sparse',
                       'plan_ends_elsewhere', 'plan_starts_elsewhere', 'plan_bad_times')}
    for arm, kinds in never.items():
        for kind in kinds:
            assert result[arm]['by_kind'][kind]['accepted'] == 0, (arm, kind)
        stopped = [k for k in result[arm]['by_kind'] if k.startswith('after_stop_')]
        assert stopped and all(result[arm]['by_kind'][k]['accepted'] == 0 for k in stopped)


def test_the_watchdog_and_the_stop_were_exercised(result):
    assert result['franka']['events']['watchdog_holds'] > 10 and result['rizon']['events']['watchdog_stops'] > 5
    for arm in ('franka', 'rizon'):
        events = result[arm]['events']
        assert events['stops'] > 5 and events['resets_refused'] == events['resets_accepted'] == events['stops']


def test_the_auditor_catches_a_franka_core_without_its_limits(monkeypatch):
    # still refuses malformed numbers, but with per-step and workspace limits far too wide
    loose = EeLimits(max_translation_m=0.5, max_rotation_rad=1.0, workspace=WorkspaceBox((-9.0,) * 3, (9.0,) * 3))
    monkeypatch.setattr(franka, 'validate_ee_delta',
                        lambda command, tcp, _limits: validate_ee_delta(command, tcp, loose))
    summary = FrankaStress(seed=3).run(400)
    assert summary['accepted_outside_limits'] > 0 and not summary['passed']


def test_the_auditor_catches_a_rizon_core_without_its_plan_check(monkeypatch):
    monkeypatch.setattr(rizon, 'check_plan', lambda *args: '')
    summary = RizonStress(seed=3, calibration=example_calibration()).run(400)
    assert summary['accepted_outside_limits'] > 0 and not summary['passed']


def test_the_module_entry_prints_json_and_writes_it(tmp_path, capsys):
    out = tmp_path / 'stress.json'
    assert stress.main(['--count', '200', '--seed', '1', '--json', str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text()) and printed['passed']
    assert printed['franka']['commands'] >= 200 and printed['rizon']['commands'] >= 200
