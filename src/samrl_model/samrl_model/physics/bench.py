"""Timing of one control step of M (forward, and forward + backward) per task."""
from __future__ import annotations

import time

import torch

from samrl_model.physics.model import ModelConfig, build_model
from samrl_model.physics.step import control_step
from samrl_model.sim_adapter import state_from_sim

BENCH_REPEATS = 5
BENCH_ACTION = (0.005, 0.0, -0.005, 0.0, 0.0, 0.02)   # m, m, m, rad, rad, rad: a small generic move
SIM_SEED = 0


def bench_physics(task: str, repeats: int = BENCH_REPEATS, config: ModelConfig = ModelConfig()) -> dict:
    """Mean wall time (ms) of one control step from the sim's first state of a seeded episode.

    Returns {'task', 'substeps', 'forward_ms', 'forward_backward_ms'}.
    """
    from samrl_sim.world import World  # the sim supplies a realistic starting state
    sim = World(task)
    try:
        sim.reset(seed=SIM_SEED)
        model = build_model(task, config)
        start = state_from_sim(model, sim)
    finally:
        sim.close()
    action = torch.tensor(BENCH_ACTION, dtype=torch.float64)
    forward = _mean_ms(lambda: control_step(model, start, action), repeats)
    forward_backward = _mean_ms(lambda: _forward_backward(model, start, action), repeats)
    return {'task': task, 'substeps': config.substeps, 'forward_ms': forward, 'forward_backward_ms': forward_backward}


def _forward_backward(model, start: torch.Tensor, action: torch.Tensor) -> None:
    state = start.clone().requires_grad_(True)
    act = action.clone().requires_grad_(True)
    control_step(model, state, act).sum().backward()


def _mean_ms(fn, repeats: int) -> float:
    fn()   # warm-up
    begin = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1e3 * (time.perf_counter() - begin) / repeats
