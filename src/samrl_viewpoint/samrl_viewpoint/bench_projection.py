"""How long the view step's projection onto reachable views takes (ViewSpace.project).

From reachable views drawn from the task's distribution, a step of `--scale` times the view step's
per-step bounds with random signs; the steps that leave the reachable set are projected back. Prints
the time per projection of those (mean, p95, max) and of a reachable IK check, and writes JSON.

    python -m samrl_viewpoint.bench_projection [--task peg_insertion] [--views 300] [--scale 3] [--json F]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from samrl_common.reports import write_json
from samrl_viewpoint.view_step import ViewStepBounds
from samrl_viewpoint.views import ViewSpace

BENCH_SEED = 1


def bench(task: str, views: int, scale: float) -> dict:
    space, rng = ViewSpace(task), np.random.default_rng(BENCH_SEED)
    bounds = ViewStepBounds().as_tensor()
    projections, checks = [], []
    for start in space.sample(rng, views):
        target = start + scale * bounds * torch.tensor(rng.choice([-1.0, 1.0], bounds.shape))
        clock = time.perf_counter()
        reachable = space.is_reachable(target)
        checks.append(time.perf_counter() - clock)
        if not reachable:
            clock = time.perf_counter()
            space.project(target, anchor=start)
            projections.append(time.perf_counter() - clock)
    ms = 1e3 * np.array(projections) if projections else np.zeros(1)
    return {'task': task, 'views': views, 'scale': scale, 'unreachable_steps': len(projections),
            'projection_ms': {'mean': float(ms.mean()), 'p95': float(np.percentile(ms, 95)), 'max': float(ms.max())},
            'reachability_check_ms': float(1e3 * np.mean(checks))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m samrl_viewpoint.bench_projection',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--task', default='peg_insertion')
    parser.add_argument('--views', type=int, default=300, help='start views drawn (default 300)')
    parser.add_argument('--scale', type=float, default=3.0, help='step length in per-step bounds (default 3)')
    parser.add_argument('--json', type=Path, help='also write the figures here')
    args = parser.parse_args(argv)
    if args.views < 1 or args.scale <= 0:
        parser.error(f'--views must be >= 1 and --scale > 0, got {args.views} and {args.scale}')
    report = bench(args.task, args.views, args.scale)
    projection = report['projection_ms']
    print(f"{report['task']}: {report['unreachable_steps']} of {report['views']} steps unreachable; projection "
          f"{projection['mean']:.1f} / {projection['p95']:.1f} / {projection['max']:.1f} ms (mean / p95 / max); "
          f"reachability check {report['reachability_check_ms']:.1f} ms")
    write_json(args.json, report)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
