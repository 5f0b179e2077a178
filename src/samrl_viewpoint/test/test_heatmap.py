"""Fig. 4: Q over azimuth x elevation written as a PNG heat map and JSON, unreachable views left blank."""
import json
import math

import numpy as np
import torch

from samrl_viewpoint.heatmap import evaluate_q_grid, q_heatmap
from samrl_viewpoint.views import DTYPE, default_view_params

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
GRID = (10, 6)
PEAK = (math.radians(-60.0), math.radians(40.0))      # azimuth, elevation of the best view (rad)


def _peaked_q(params: torch.Tensor) -> torch.Tensor:
    return torch.exp(-((params[0] - PEAK[0]) ** 2 + (params[1] - PEAK[1]) ** 2))


def test_the_heat_map_marks_the_argmax_and_writes_png_and_json(tmp_path, view_spaces):
    views = view_spaces['needle_threading']
    default = default_view_params('needle_threading')
    heatmap = q_heatmap(_peaked_q, views, default, tmp_path / 'fig4.png', GRID, default_params=default)
    assert (tmp_path / 'fig4.png').read_bytes()[:8] == PNG_SIGNATURE
    data = json.loads((tmp_path / 'fig4.json').read_text())
    assert len(data['q']) == GRID[1] and len(data['q'][0]) == GRID[0]
    azimuth_step, elevation_step = np.diff(heatmap.azimuth_rad)[0], np.diff(heatmap.elevation_rad)[0]
    assert abs(data['argmax']['azimuth_rad'] - PEAK[0]) <= azimuth_step
    assert abs(data['argmax']['elevation_rad'] - PEAK[1]) <= elevation_step
    assert data['default_params'] == default.tolist()


def test_unreachable_cells_are_blank(view_spaces):
    views = view_spaces['peg_insertion']
    far = default_view_params('peg_insertion').clone()
    far[2] = 0.9                                                  # at the arm's reach: some directions fail
    azimuth = np.radians(np.linspace(-170.0, 10.0, 7))
    heatmap = evaluate_q_grid(_peaked_q, far, azimuth, np.radians([10.0, 60.0]), views)
    reachable = np.array([[views.is_reachable(torch.tensor([a, e, *far[2:]], dtype=DTYPE)) for a in azimuth]
                          for e in np.radians([10.0, 60.0])])
    assert np.array_equal(np.isfinite(heatmap.q), reachable) and 0 < reachable.sum() < reachable.size
