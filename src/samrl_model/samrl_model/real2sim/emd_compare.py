"""Eq. (3)'s EMD: POT's exact solver against geomloss's Sinkhorn, at equal accuracy (`samrl bench emd`).

The clouds are those a tracking refit compares: the camera's points of the target at the task's
view (CAMERA_POINTS of them, as TrackConfig.cloud_points) and the model's surface samples that face
the camera, at the truth moved by a small tracking error (MODEL_POINTS, about what a refit sees of
SURFACE_SAMPLES). Per solver: seconds per value and gradient, the value's relative error against the
exact EMD, and the cosine between its gradient (on the model's points) and the exact one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from samrl_description.geometry import Pose, axis_angle_to_quat
from samrl_description.tasks import TARGETS
from samrl_model.real2sim.align import camera_points, model_surface
from samrl_model.real2sim.losses import emd

CAMERA_POINTS = 300
MODEL_POINTS = 600
OFFSET_M = 0.003                   # the model's points are the truth moved this far ...
OFFSET_RAD = np.radians(3.0)       # ... and turned this much, a tracking step's error
SINKHORN_BLURS_M = (0.01, 0.003, 0.001)
SINKHORN_SCALING = 0.9             # geomloss's annealing ratio: closer to 1 is more accurate and slower
REPEATS = 5                        # timed calls per pair and solver (the first, untimed, warms up)
# "Equal accuracy": a Sinkhorn setting counts as accurate if it is this close to the exact EMD.
MAX_VALUE_ERROR = 0.01
MIN_GRADIENT_COSINE = 0.99


@dataclass(frozen=True)
class CloudPair:
    task: str
    seed: int
    model: torch.Tensor      # (n, 3) float64, metres
    camera: torch.Tensor     # (m, 3)


def cloud_pairs(task: str, seeds: range) -> list[CloudPair]:
    """One pair per seed from the task's first frame in the PyBullet world."""
    from samrl_model.real2sim.track import Tracker, moved, pose_of
    from samrl_model.sim_adapter import objects_from_world, snapshot
    from samrl_sim.world import World
    target, pairs, world = TARGETS[task], [], World(task)
    try:
        for seed in seeds:
            world.reset(seed)
            frame, truth = snapshot(world, target, 640, 480), objects_from_world(world)[0]
            rng = np.random.default_rng(seed)
            tracker = Tracker(task)
            tracker.objects = truth
            window = tracker.window(frame)
            seen = camera_points(frame, window, rng)
            turn = axis_angle_to_quat(OFFSET_RAD * _unit(rng))
            centre = pose_of(truth[target]).position
            motion = Pose(centre + OFFSET_M * _unit(rng), turn).compose(Pose(-centre, np.array([0, 0, 0, 1.0])))
            surface, _ = model_surface(moved(truth[target], motion), frame.camera_pose.position, rng)
            if len(seen) < CAMERA_POINTS or len(surface) < MODEL_POINTS:
                continue
            pairs.append(CloudPair(task, seed, torch.as_tensor(surface[rng.choice(len(surface), MODEL_POINTS, False)]),
                                   torch.as_tensor(seen[rng.choice(len(seen), CAMERA_POINTS, False)])))
    finally:
        world.close()
    return pairs


def _unit(rng: np.random.Generator) -> np.ndarray:
    vector = rng.normal(size=3)
    return vector / np.linalg.norm(vector)


def solvers() -> dict:
    """name -> f(model, camera) -> scalar tensor; the exact EMD first."""
    try:
        from geomloss import SamplesLoss
    except ImportError as error:
        raise RuntimeError('geomloss is missing: run tools/setup_env.sh (requirements.txt pins it)') from error
    table = {'exact (POT)': emd}
    for blur in SINKHORN_BLURS_M:
        loss = SamplesLoss('sinkhorn', p=1, blur=blur, scaling=SINKHORN_SCALING, debias=True, backend='tensorized')
        table[f'sinkhorn blur {blur * 1000:g} mm'] = lambda x, y, loss=loss: loss(x, y)
    return table


def _value_and_gradient(solver, pair: CloudPair) -> tuple[float, np.ndarray, float]:
    seconds = []
    for repeat in range(REPEATS + 1):
        model = pair.model.clone().requires_grad_(True)
        start = time.perf_counter()
        value = solver(model, pair.camera)
        value.backward()
        if repeat:
            seconds.append(time.perf_counter() - start)
    return float(value.detach()), model.grad.numpy().ravel(), float(np.mean(seconds))


def compare(pairs: list[CloudPair]) -> dict[str, dict[str, float]]:
    """Per solver: mean seconds per call, mean |value / exact - 1|, mean gradient cosine with the exact."""
    results, exact = {}, {}
    for name, solver in solvers().items():
        times, errors, cosines = [], [], []
        for index, pair in enumerate(pairs):
            value, gradient, seconds = _value_and_gradient(solver, pair)
            exact.setdefault(index, (value, gradient))
            reference, reference_gradient = exact[index]
            times.append(seconds)
            errors.append(abs(value / reference - 1.0))
            cosines.append(float(gradient @ reference_gradient
                                 / max(np.linalg.norm(gradient) * np.linalg.norm(reference_gradient), 1e-30)))
        results[name] = {'seconds_per_call': float(np.mean(times)), 'value_error_mean': float(np.mean(errors)),
                         'gradient_cosine_mean': float(np.mean(cosines)), 'gradient_cosine_min': float(np.min(cosines)),
                         'pairs': len(pairs)}
    return results


def verdict(results: dict[str, dict[str, float]]) -> str:
    """Which solver to keep: the fastest of those at the exact EMD's accuracy."""
    accurate = {name: r for name, r in results.items()
                if r['value_error_mean'] <= MAX_VALUE_ERROR and r['gradient_cosine_min'] >= MIN_GRADIENT_COSINE}
    best = min(accurate, key=lambda name: accurate[name]['seconds_per_call'])
    return (f'fastest at equal accuracy (value within {MAX_VALUE_ERROR:.0%}, gradient cosine >= '
            f'{MIN_GRADIENT_COSINE}): {best}')
