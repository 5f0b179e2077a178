"""`samrl bench real2sim` end to end on a tiny configuration (the full run is a benchmark, not a test)."""

import numpy as np
import pytest
import torch

from samrl_model.meshes import object_mesh
from samrl_model.real2sim.bench import (
    PERTURB_ROTATION_RAD,
    PERTURB_TRANSLATION_M,
    BenchConfig,
    errors,
    perturb,
    run_benchmark,
)
from samrl_model.render import ObjectParams


def _params(angles=None):
    mesh = object_mesh('thread' if angles is not None else 'peg')
    return ObjectParams(mesh, torch.tensor([0.4, 0.0, 0.2], dtype=torch.float64),
                        torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64),
                        torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64),
                        None if angles is None else torch.zeros(angles, dtype=torch.float64))


def test_perturbation_has_the_stated_size():
    truth = _params()
    moved = perturb(truth, np.random.default_rng(0))
    measured = errors(moved, truth)
    assert abs(measured['translation_mm'] - PERTURB_TRANSLATION_M * 1000) < 1e-6
    assert abs(measured['rotation_deg'] - np.degrees(PERTURB_ROTATION_RAD)) < 1e-6


def test_thread_error_is_zero_for_the_truth_and_grows_with_bends():
    truth = _params(angles=10)
    assert errors(truth, truth)['thread_mm'] < 1e-9
    bent = perturb(truth, np.random.default_rng(1))
    assert errors(bent, truth)['thread_mm'] > 1.0


@pytest.mark.parametrize('update', ['view', 'gradient'])
def test_bench_runs_and_reports_every_figure(update):
    results = run_benchmark(('peg_insertion',), range(1), BenchConfig(width=64, height=48, iterations=3, update=update),
                            progress=False)
    summary = results['peg_insertion']['summary']
    for key in ('translation_mm_mean', 'rotation_deg_mean', 'iterations_mean', 'wall_time_s_mean'):
        assert np.isfinite(summary[key])
    assert summary['iterations_mean'] in ((0, 3) if update == 'view' else (3,))    # view: kept if it agrees
    assert summary['seeds'] == 1


def test_track_mode_cli_writes_every_figure(tmp_path):
    """`samrl bench real2sim --mode track` on one short episode: per-step times, stages and errors."""
    import json
    import subprocess
    import sys
    out = tmp_path / 'track.json'
    done = subprocess.run([sys.executable, '-m', 'samrl_bringup.cli', 'bench', 'real2sim', '--mode', 'track',
                           '--tasks', 'peg_insertion', '--seeds', '1', '--size', '320x240', '--json', str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(out.read_text())['results']['peg_insertion']
    for key in ('time_s_mean', 'time_s_p95', 'first_frame_time_s_mean', 'translation_mm_mean', 'translation_mm_p95',
                'translation_mm_max', 'rotation_sym_deg_mean', 'stage_s_per_step', 'actions'):
        assert key in summary, key
    assert summary['steps'] > 5 and summary['translation_mm_max'] < 10.0
    steps = json.loads(out.read_text())['episodes']['peg_insertion'][0]['steps']
    assert {s['prediction'] for s in steps[1:]} <= {'left', 'carried', 'recentred'}     # which prediction was kept
    phases = summary['by_phase']
    assert phases['end']['steps'] == 3 and phases['before_end']['steps'] == summary['steps'] - 3
    assert 'last 3 steps' in done.stdout
    assert 'peg_insertion' in done.stdout and 's per step' in done.stdout
