"""The expert's curves as a PNG (`samrl train expert <task> --png`), from evaluate_expert's result.

The expert has no weights to train: its "training" is the trajectory optimisation of each plan. So
the figure shows, for the evaluated episodes,

1. the task's state cost along each episode (one line per seed, its end marked as success or not),
   how the receding-horizon plans drive the cost down in M;
2. each refinement's plan cost per Adam iteration through the differentiable physics, relative to
   the plan it started from (thin lines), and the median of the best plan so far (bold; a refinement
   that stopped early, at a plan that succeeds, keeps its last value): the optimisation curve;
3. the time per label (one act()), the cost DAgger pays per visited state.

Everything plotted is in the result dict, so the JSON of a run redraws it:

    python -m samrl_policy.expert_plot out/expert/spatula_flipping_random10.json expert.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FIGURE_DPI = 100
PANEL_SIZE_IN = (4.5, 3.6)
LABEL_TIME_BINS = 30
COST_FLOOR = 1e-4               # costs below it (a state at success) are drawn at it, on the log axis
SUCCESS_COLOUR, FAILURE_COLOUR = 'tab:green', 'tab:red'


def plot_expert(result: dict, out: str | Path) -> Path:
    """Draw evaluate_expert's `result` (with per-episode state costs) into the PNG `out`."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(3 * PANEL_SIZE_IN[0], PANEL_SIZE_IN[1]))
    _cost_along_episodes(axes[0], result['per_episode'])
    _refinement_curves(axes[1], result['refinement_costs'])
    _label_times(axes[2], result['per_episode'])
    figure.suptitle(f"expert in M, {result['task']}: {result['episodes']} episodes from seed {result['seed']}, "
                    f"success {result['success_rate']:.2f}, {100 * result['random_action_fraction']:.0f} % "
                    'random actions executed')
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=FIGURE_DPI)
    plt.close(figure)
    return out


def _cost_along_episodes(axis, episodes: list[dict]) -> None:
    for episode in episodes:
        costs = np.maximum(episode['state_costs'], COST_FLOOR)
        colour = SUCCESS_COLOUR if episode['success'] else FAILURE_COLOUR
        axis.plot(range(len(costs)), costs, color=colour, alpha=0.5, linewidth=0.8)
        axis.plot(len(costs) - 1, costs[-1], 'o' if episode['success'] else 'x', color=colour, markersize=4)
    successes = sum(e['success'] for e in episodes)
    axis.plot([], [], 'o', color=SUCCESS_COLOUR, label=f'success ({successes})')
    axis.plot([], [], 'x', color=FAILURE_COLOUR, label=f'failure ({len(episodes) - successes})')
    axis.set(xlabel='control step', ylabel=f'task state cost (floor {COST_FLOOR:g})', yscale='log',
             title='cost along each episode')
    axis.legend(fontsize=7)


def _refinement_curves(axis, curves: list[list[float]]) -> None:
    relative = [np.asarray(c) / c[0] for c in curves if len(c) > 0 and c[0] > 0.0]
    if not relative:
        axis.text(0.5, 0.7, 'no plan was refined:\nthe scripted guess was accepted\nat every label',
                  ha='center', va='center', transform=axis.transAxes)
    for curve in relative:
        axis.plot(range(len(curve)), curve, color='tab:blue', alpha=0.2, linewidth=0.6)
    if relative:
        best = [np.minimum.accumulate(c) for c in relative]        # the expert keeps the best plan seen
        longest = max(len(c) for c in best)
        median = [np.median([c[min(i, len(c) - 1)] for c in best]) for i in range(longest)]
        axis.plot(range(longest), median, color='tab:blue', linewidth=2.0,
                  label=f'best plan so far, median of {len(relative)}')
        axis.legend(fontsize=7)
    axis.axhline(1.0, color='grey', linewidth=0.5)
    axis.set(xlabel='Adam iteration', ylabel='plan cost / its start', yscale='log',
             title='refinement through the physics')


def _label_times(axis, episodes: list[dict]) -> None:
    times = np.concatenate([e['label_times_s'] for e in episodes])
    axis.hist(times, bins=np.geomspace(times.min(), times.max() * 1.01, LABEL_TIME_BINS), color='tab:grey')
    axis.axvline(float(np.mean(times)), color='black', linestyle='--', label=f'mean {np.mean(times):.3f} s')
    axis.set(xlabel='time per label (s)', ylabel='labels', xscale='log', title=f'{len(times)} labels')
    axis.legend(fontsize=7)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="redraw the expert's curves from `samrl train expert --json`")
    parser.add_argument('json', help='the results file of samrl train expert --json')
    parser.add_argument('png', help='the PNG to write')
    args = parser.parse_args(argv)
    try:
        result = json.loads(Path(args.json).read_text())['results']
        out = plot_expert(result, args.png)
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f'expert_plot: {args.json} is not a readable result of samrl train expert --json '
                         f'with per-episode costs ({type(exc).__name__}: {exc})') from None
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
