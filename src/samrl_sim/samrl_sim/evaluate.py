"""Seeded evaluation of a controller on a task in the PyBullet world (`samrl eval` calls this)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from samrl_sim.oracles import Oracle, make_oracle
from samrl_sim.world import World


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    episode_return: float
    rejected_commands: int


def run_episode(world: World, controller: Oracle, seed: int) -> EpisodeResult:
    """One episode from `seed` until success or the task's step budget."""
    state = world.reset(seed=seed)
    controller.reset(world)
    episode_return, rejected = 0.0, 0
    while not state.success and not state.truncated:
        result = world.step(controller.act(world))
        if not result.accepted:
            rejected += 1
            if rejected > world.task.max_episode_steps:
                break
            continue
        state = result.state
        episode_return += state.reward
    return EpisodeResult(seed, state.success, state.step, episode_return, rejected)


def evaluate(task: str, controller: str = 'oracle', episodes: int = 50, seed: int = 0,
             progress: bool = False) -> dict:
    """Run `episodes` episodes of the task's oracle with seeds seed, seed + 1, ...; returns the success
    rate and details. Learned controllers come from their own packages, through evaluate_agent."""
    if controller != 'oracle':
        raise ValueError(f'unknown controller {controller!r}; samrl_sim provides only "oracle"')
    return evaluate_agent(task, make_oracle(task), controller, episodes, seed, progress)


def evaluate_agent(task: str, agent: Oracle, controller: str, episodes: int = 50, seed: int = 0,
                   progress: bool = False) -> dict:
    """`evaluate` for any controller with the oracles' reset(world) / act(world); `controller` names it."""
    world = World(task)
    seeds = range(seed, seed + episodes)
    if progress:
        from tqdm import tqdm
        seeds = tqdm(seeds, desc=f'{task} ({controller})', unit='episode')
    start = time.perf_counter()
    try:
        results = [run_episode(world, agent, s) for s in seeds]
    finally:
        world.close()
    elapsed = time.perf_counter() - start
    return {'task': task, 'controller': controller, 'episodes': episodes, 'seed': seed,
            'success_rate': sum(r.success for r in results) / max(episodes, 1),
            'mean_return': sum(r.episode_return for r in results) / max(episodes, 1),
            'mean_steps': sum(r.steps for r in results) / max(episodes, 1),
            'returns': [r.episode_return for r in results],
            'steps': [r.steps for r in results],
            'wall_time_s': elapsed,
            'results': [asdict(r) for r in results]}
