"""The Real2Sim update loop, Eq. (5): psi <- psi - lambda_M dL/dpsi, until converged or out of budget.

Written as Mitsuba's inverse-rendering tutorials write theirs: the optimised values are named
latents (each with its own learning rate, in its own unit), `evaluate(latents)` maps them onto
the model, renders and returns the loss, and the loop is five commented steps with a loss
history and a progress line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from samrl_model.stopwatch import Stopwatch, timed

# Adam step sizes per kind of latent, in the latent's own unit per iteration.
LEARNING_RATES = {'translation': 2e-3,   # m
                  'rotation': 1e-2,      # rad (axis-angle)
                  'joint_angles': 2e-2,  # rad
                  'color': 2e-2}         # RGB in [0, 1]
DEFAULT_LEARNING_RATE = 1e-2


@dataclass(frozen=True)
class OptimiseConfig:
    """Stopping rules: `max_iterations`, `time_budget_s`, or a relative loss change below
    `tolerance` for `patience` consecutive iterations."""

    max_iterations: int = 100
    time_budget_s: float = 2.0
    tolerance: float = 1e-3
    patience: int = 5
    learning_rates: dict[str, float] = field(default_factory=lambda: dict(LEARNING_RATES))
    final_learning_rate_fraction: float = 0.1   # exponential decay to this fraction at max_iterations

    def __post_init__(self):
        if self.max_iterations < 1 or self.time_budget_s <= 0 or self.patience < 1:
            raise ValueError('max_iterations and patience must be >= 1 and time_budget_s > 0')


@dataclass
class OptimiseResult:
    latents: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    iterations: int
    converged: bool
    wall_time_s: float

    @property
    def final_loss(self) -> float:
        return self.history[-1]['loss']


def _optimiser(latents: dict[str, torch.Tensor], config: OptimiseConfig) -> torch.optim.Adam:
    groups = [{'params': [value], 'lr': config.learning_rates.get(name, DEFAULT_LEARNING_RATE)}
              for name, value in latents.items()]
    return torch.optim.Adam(groups)


def _settled(history: list[dict[str, float]], config: OptimiseConfig) -> bool:
    if len(history) <= config.patience:
        return False
    recent = [h['loss'] for h in history[-config.patience - 1:]]
    return all(abs(a - b) <= config.tolerance * max(abs(a), 1e-12) for a, b in zip(recent, recent[1:]))


def optimise(latents: dict[str, torch.Tensor], evaluate: Callable[[dict[str, torch.Tensor]], tuple],
             config: OptimiseConfig = OptimiseConfig(), log: Callable[[str], None] | None = None,
             stopwatch: Stopwatch | None = None, should_stop: Callable[[], bool] | None = None) -> OptimiseResult:
    """Minimise evaluate(latents) -> (loss tensor, terms dict) over the latents (updated in place);
    `stopwatch` gets the backward pass and the step (evaluate times its own stages). `should_stop()`
    true ends the loop after the iteration in progress (a node shutting down)."""
    for value in latents.values():
        value.requires_grad_(True)
    optimiser = _optimiser(latents, config)
    # Decay the step sizes so the estimate settles instead of orbiting the optimum at full step size.
    decay = config.final_learning_rate_fraction ** (1.0 / max(config.max_iterations - 1, 1))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=decay)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    converged = False
    for iteration in range(config.max_iterations):
        # 1-3. Apply the latents to the model, render it and compare with the camera: the loss.
        loss, terms = evaluate(latents)
        history.append({**terms, 'loss': loss.item()})
        if log is not None:
            log(f'iteration {iteration:3d}: ' + ', '.join(f'{k} {v:.5g}' for k, v in history[-1].items()))
        # 4. Backpropagate through the renderer to every latent.
        optimiser.zero_grad()
        with timed(stopwatch, 'backward'):
            loss.backward()
        # 5. Take a gradient step (Eq. 5, with Adam's per-latent step sizes).
        with timed(stopwatch, 'optimiser'):
            optimiser.step()
            scheduler.step()
        if _settled(history, config):
            converged = True
            break
        if time.perf_counter() - start > config.time_budget_s or (should_stop is not None and should_stop()):
            break
    detached = {name: value.detach().clone() for name, value in latents.items()}
    return OptimiseResult(detached, history, len(history), converged, time.perf_counter() - start)
