"""Timing of M's renderer against PyBullet's camera on the same scene (sim-side benchmark)."""

from __future__ import annotations

import time

import numpy as np
import torch

from samrl_model.render import Renderer
from samrl_model.sim_adapter import objects_from_world
from samrl_sim.world import World


def bench_render(size: int = 84, repeats: int = 10, task: str = 'peg_insertion') -> dict:
    """Timings (ms, median after JIT warm-up) at size x size: forward RGB-D render, one forward +
    backward step, and PyBullet's TinyRenderer camera image of the same scene in the same run."""
    world = World(task)
    try:
        world.reset(seed=0)
        intrinsics = world.camera_intrinsics(size, size)
        objects, camera = objects_from_world(world, requires_grad=True)
        renderer = Renderer(intrinsics)
        first = next(iter(objects))

        def forward() -> None:
            with torch.no_grad():
                renderer.render(objects, camera, target=first)

        def step() -> None:
            out = renderer.render(objects, camera, target=first)
            (out.rgb.mean() + out.mask.mean() + out.depth.mean()).backward()

        return {'size_px': size,
                'forward_ms': _median_ms(forward, repeats),
                'forward_backward_ms': _median_ms(step, repeats),
                'pybullet_render_ms': _median_ms(lambda: world.render(size, size), repeats)}
    finally:
        world.close()


def _median_ms(fn, repeats: int) -> float:
    fn()   # warm-up (JIT compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))
