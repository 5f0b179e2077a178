"""The paper's Fig. 4: the sensing-aware Q over camera azimuth and elevation, as a PNG heat map.

Q(I(P), pi(I(P))) is evaluated on a grid of azimuths x elevations, the other view parameters
(distance, look-at point) held at a given view; views the camera arm cannot reach are left blank
(when a ViewSpace is given). The grid is also written as JSON, so the figure can be redrawn and
its numbers quoted.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samrl_viewpoint.views import DTYPE, ViewBox, ViewSpace

DEFAULT_GRID = (24, 12)          # azimuths x elevations (the paper's Fig. 4 is a coarse grid too)
FIGURE_SIZE_IN = (6.4, 3.6)
FIGURE_DPI = 120
UNREACHABLE_COLOUR = '0.85'      # light grey


@dataclass(frozen=True)
class QHeatMap:
    """Q (elevations, azimuths) on the grid (NaN: unreachable), the fixed view and the marked views."""

    azimuth_rad: np.ndarray
    elevation_rad: np.ndarray
    q: np.ndarray
    base_params: np.ndarray
    default_params: np.ndarray | None

    def argmax(self) -> tuple[float, float, float]:
        """(azimuth rad, elevation rad, Q) of the best reachable cell."""
        row, column = np.unravel_index(np.nanargmax(self.q), self.q.shape)
        return float(self.azimuth_rad[column]), float(self.elevation_rad[row]), float(self.q[row, column])

    def to_json(self) -> dict:
        azimuth, elevation, q = self.argmax()
        return {'azimuth_rad': self.azimuth_rad.tolist(), 'elevation_rad': self.elevation_rad.tolist(),
                'q': [[None if math.isnan(v) else float(v) for v in row] for row in self.q],
                'base_params': self.base_params.tolist(),
                'default_params': None if self.default_params is None else self.default_params.tolist(),
                'argmax': {'azimuth_rad': azimuth, 'elevation_rad': elevation, 'q': q}}


def grid_axes(box: ViewBox, grid: tuple[int, int] = DEFAULT_GRID) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced azimuths and elevations (rad) spanning the box."""
    return np.linspace(*box.azimuth_rad, grid[0]), np.linspace(*box.elevation_rad, grid[1])


def evaluate_q_grid(q_of_view: Callable[[torch.Tensor], torch.Tensor], base_params: torch.Tensor,
                    azimuth_rad: np.ndarray, elevation_rad: np.ndarray, views: ViewSpace | None = None,
                    default_params: torch.Tensor | None = None) -> QHeatMap:
    """Q at every (azimuth, elevation) with the rest of `base_params` fixed; NaN where `views` says
    the camera arm cannot reach."""
    base = torch.as_tensor(base_params, dtype=DTYPE).detach()
    q = np.full((len(elevation_rad), len(azimuth_rad)), np.nan)
    with torch.no_grad():
        for row, elevation in enumerate(elevation_rad):
            for column, azimuth in enumerate(azimuth_rad):
                params = base.clone()
                params[0], params[1] = float(azimuth), float(elevation)
                if views is None or views.is_reachable(params):
                    q[row, column] = float(q_of_view(params))
    default = None if default_params is None else torch.as_tensor(default_params, dtype=DTYPE).numpy()
    return QHeatMap(np.asarray(azimuth_rad, dtype=float), np.asarray(elevation_rad, dtype=float), q,
                    base.numpy(), default)


def write_heatmap(heatmap: QHeatMap, png_path: Path, json_path: Path | None = None, title: str = 'Q(I(P), pi(I(P)))'
                  ) -> Path:
    """Draw the heat map (degrees on both axes), marking the default view and the argmax; write the JSON beside."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    azimuth, elevation = np.degrees(heatmap.azimuth_rad), np.degrees(heatmap.elevation_rad)
    figure, axis = plt.subplots(figsize=FIGURE_SIZE_IN)
    axis.set_facecolor(UNREACHABLE_COLOUR)             # NaN cells are not drawn: the background shows
    image = axis.pcolormesh(azimuth, elevation, np.ma.masked_invalid(heatmap.q), shading='nearest', cmap='viridis')
    figure.colorbar(image, ax=axis, label='Q')
    best_azimuth, best_elevation, best_q = heatmap.argmax()
    axis.plot(np.degrees(best_azimuth), np.degrees(best_elevation), 'rx', markersize=10, mew=2,
              label=f'argmax (Q = {best_q:.3g})')
    if heatmap.default_params is not None:
        axis.plot(*np.degrees(heatmap.default_params[:2]), 'w*', markersize=12, markeredgecolor='k',
                  label='default view')
    if np.isnan(heatmap.q).any():
        axis.fill_between([], [], color=UNREACHABLE_COLOUR, label='unreachable')
    axis.set(xlabel='camera azimuth (deg)', ylabel='camera elevation (deg)', title=title)
    axis.legend(fontsize=7, loc='upper right')
    figure.tight_layout()
    figure.savefig(png_path, dpi=FIGURE_DPI)
    plt.close(figure)
    json_path = png_path.with_suffix('.json') if json_path is None else Path(json_path)
    json_path.write_text(json.dumps(heatmap.to_json(), indent=1))
    return png_path


def q_heatmap(q_of_view: Callable[[torch.Tensor], torch.Tensor], views: ViewSpace, base_params: torch.Tensor,
              png_path: Path, grid: tuple[int, int] = DEFAULT_GRID, default_params: torch.Tensor | None = None
              ) -> QHeatMap:
    """Fig. 4 for one state: Q over the box's azimuths x elevations at `base_params`' distance and
    look-at point, written to `png_path` (and the same name .json)."""
    heatmap = evaluate_q_grid(q_of_view, base_params, *grid_axes(views.box, grid), views, default_params)
    write_heatmap(heatmap, png_path, title=f'{views.task}: Q over camera azimuth and elevation')
    return heatmap
