"""Speed of the PyBullet world: physics step rate, control step rate and camera render rates."""
from __future__ import annotations

import time

import pybullet as pb

from samrl_sim.commands import EeDeltaCommand
from samrl_sim.world import World

RENDER_SIZES = ((84, 84), (640, 480))      # (width, height) in pixels


def _rate(function, repetitions: int) -> float:
    """Calls per second of `function` over `repetitions` calls."""
    start = time.perf_counter()
    for _ in range(repetitions):
        function()
    return repetitions / (time.perf_counter() - start)


def run_benchmark(task: str = 'peg_insertion', physics_steps: int = 2000, control_steps: int = 50,
                  renders: int = 20, seed: int = 0) -> dict:
    """Measure one world of `task`; returns rates in steps/s and frames/s (Hz)."""
    world = World(task)
    world.reset(seed=seed)
    physics = _rate(lambda: pb.stepSimulation(physicsClientId=world.client), physics_steps)
    hold = EeDeltaCommand.zero(world.task.gripper_width_m)
    control = _rate(lambda: world.step(hold), control_steps)
    result = {'task': task, 'physics_steps_per_s': physics, 'control_steps_per_s': control,
              'physics_rate_hz': world.config.physics_rate_hz, 'control_rate_hz': world.config.control_rate_hz}
    for width, height in RENDER_SIZES:
        result[f'render_hz_{width}x{height}'] = _rate(lambda: world.render(width, height), renders)
    world.close()
    return result
