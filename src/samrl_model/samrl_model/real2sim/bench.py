"""`samrl bench real2sim`: how well one Real2Sim update recovers a perturbed model from a PyBullet view.

Per task and seed: the PyBullet world (TinyRenderer, a different renderer from the model's
Mitsuba) gives a segmented RGB-D close view of the task's object; the model starts from the
true state with the object's pose perturbed by PERTURB_TRANSLATION_M in a random direction and
PERTURB_ROTATION_RAD about a random axis, and the thread's joints by a random bend; one update
runs; errors are measured against the true state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from samrl_model.meshes import axis_angle_matrix, pose_matrix, thread_link_poses
from samrl_model.real2sim.capture import TARGETS, capture
from samrl_model.real2sim.optimise import OptimiseConfig
from samrl_model.real2sim.update import Real2SimConfig, update_model
from samrl_model.render import ObjectParams, Renderer, objects_from_world

PERTURB_TRANSLATION_M = 0.02
PERTURB_ROTATION_RAD = np.radians(10.0)
THREAD_BEND_RAD = 0.15          # each joint of the thread bent by up to this much
M_TO_MM = 1000.0
MIN_VISIBLE_PIXELS = 50         # fewer target pixels than this: the view shows too little to fit


@dataclass(frozen=True)
class BenchConfig:
    width: int = 128
    height: int = 96
    iterations: int = 40
    time_budget_s: float = 60.0


def _unit(rng: np.random.Generator) -> np.ndarray:
    vector = rng.normal(size=3)
    return vector / np.linalg.norm(vector)


def perturb(params: ObjectParams, rng: np.random.Generator) -> ObjectParams:
    """The true latents moved 2 cm and turned 10 deg (composed on the left, about a random axis)."""
    translation = params.translation + torch.as_tensor(PERTURB_TRANSLATION_M * _unit(rng))
    turn = axis_angle_matrix(torch.as_tensor(PERTURB_ROTATION_RAD * _unit(rng)))
    rotation = _matrix_to_rotvec(turn @ axis_angle_matrix(params.rotation))
    angles = params.joint_angles
    if angles is not None:
        angles = angles + torch.as_tensor(rng.uniform(-THREAD_BEND_RAD, THREAD_BEND_RAD, len(angles)))
    return replace(params, translation=translation.detach(), rotation=rotation.detach(),
                   joint_angles=None if angles is None else angles.detach())


def _matrix_to_rotvec(matrix: torch.Tensor) -> torch.Tensor:
    from scipy.spatial.transform import Rotation
    return torch.as_tensor(Rotation.from_matrix(matrix.detach().numpy()).as_rotvec())


def errors(estimate: ObjectParams, truth: ObjectParams) -> dict[str, float]:
    relative = axis_angle_matrix(truth.rotation).T @ axis_angle_matrix(estimate.rotation)
    cos_angle = float(((torch.trace(relative) - 1.0) / 2.0).clamp(-1.0, 1.0))
    result = {'translation_mm': float((estimate.translation - truth.translation).norm()) * M_TO_MM,
              'rotation_deg': float(np.degrees(np.arccos(cos_angle)))}
    if truth.joint_angles is not None:
        links = [thread_link_poses(p.joint_angles, pose_matrix(p.translation, p.rotation), p.thread_spec)[:, :3, 3]
                 for p in (estimate, truth)]
        result['thread_mm'] = float((links[0] - links[1]).norm(dim=1).mean()) * M_TO_MM
    return result


def run_case(world, task: str, seed: int, config: BenchConfig) -> dict:
    """One seed; a seed whose object cannot be seen from the close view is reported as skipped."""
    world.reset(seed)
    target = TARGETS[task]
    observation = capture(world, target, config.width, config.height)
    if observation.mask.sum() < MIN_VISIBLE_PIXELS:
        return {'task': task, 'seed': seed, 'skipped': f'{target} shows {int(observation.mask.sum())} pixels'}
    objects, camera = objects_from_world(world)
    truth = objects[target]
    start_params = perturb(truth, np.random.default_rng(seed))
    renderer = Renderer(observation.intrinsics)
    r2s = Real2SimConfig(optimise=OptimiseConfig(max_iterations=config.iterations,
                                                 time_budget_s=config.time_budget_s), seed=seed)
    start = time.perf_counter()
    updated, result = update_model(observation, {**objects, target: start_params}, camera, renderer, r2s)
    wall = time.perf_counter() - start
    return {'task': task, 'seed': seed, 'initial': errors(start_params, truth), 'final': errors(updated[target], truth),
            'iterations': result.iterations, 'wall_time_s': wall, 'final_loss': result.final_loss}


def summarise(all_cases: list[dict]) -> dict:
    cases = [c for c in all_cases if 'skipped' not in c]
    if not cases:
        return {'seeds': 0, 'skipped': len(all_cases)}
    keys = cases[0]['final'].keys()
    summary = {f'{k}_{stat}': float(fn([c['final'][k] for c in cases]))
               for k in keys for stat, fn in (('mean', np.mean), ('median', np.median), ('max', np.max))}
    summary.update({f'initial_{k}_mean': float(np.mean([c['initial'][k] for c in cases])) for k in keys})
    summary['iterations_mean'] = float(np.mean([c['iterations'] for c in cases]))
    summary['wall_time_s_mean'] = float(np.mean([c['wall_time_s'] for c in cases]))
    summary['seeds'] = len(cases)
    summary['skipped'] = len(all_cases) - len(cases)
    return summary


def run_benchmark(tasks: tuple[str, ...], seeds: range, config: BenchConfig = BenchConfig(),
                  progress: bool = True) -> dict:
    from samrl_sim.world import World
    torch.set_num_threads(2)
    results = {}
    for task in tasks:
        world = World(task)
        iterator = seeds
        if progress:
            from tqdm import tqdm
            iterator = tqdm(seeds, desc=f'real2sim {task}', unit='seed')
        try:
            cases = [run_case(world, task, seed, config) for seed in iterator]
        finally:
            world.close()
        results[task] = {'summary': summarise(cases), 'cases': cases}
    return results
