"""Labelled RGB-D images of the three tasks from the PyBullet world, with domain randomisation.

No pretrained weights or data sets can be downloaded for Mask R-CNN, so the project renders its
own: every sample is one task scene at its own seed, advanced by a random number of oracle steps
(so objects are seen grasped, mid-task and done), then randomised before rendering:

* object colours jittered around their nominal colours, the table and both arms recoloured freely;
* lighting: direction, colour, ambient/diffuse/specular coefficients and shadows;
* the camera anywhere on a shell around the task objects (and sometimes exactly the task's
  default view, which the running graph uses);
* sensor noise: Gaussian RGB noise, depth noise growing with distance and depth dropouts.

Labels come from PyBullet's segmentation buffer (samrl_description.objects.label_image): 0 background,
i + 1 for OBJECT_CLASSES[i]. Each task has one instance of each of its objects, so a label image
is also an instance map. Samples are written as compressed .npz shards (shards.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet as pb

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose, look_at
from samrl_description.tasks import TASK_NAMES
from samrl_perception.segmentation.shards import SHARD_SIZE, Sample, write_shard
from samrl_sim.camera import depth_buffer_to_metres, label_image, projection_matrix, view_matrix
from samrl_sim.oracles import make_oracle
from samrl_sim.world import World

DEPTH_MM_PER_M = 1000.0


@dataclass(frozen=True)
class Randomisation:
    """Ranges of the domain randomisation (uniform unless stated)."""

    max_oracle_steps: int = 60                     # oracle steps before the picture
    default_view_fraction: float = 0.25            # share of pictures from the task's default view
    camera_distance_m: tuple[float, float] = (0.25, 0.75)
    camera_elevation_deg: tuple[float, float] = (20.0, 75.0)
    camera_azimuth_deg: tuple[float, float] = (-150.0, 30.0)   # from +x; the camera arm stands at -y
    look_at_jitter_m: float = 0.05
    object_color_jitter: float = 0.15              # per RGB channel, around the nominal colour
    rgb_noise_std: float = 4.0                     # 0..255 scale
    depth_noise_std_m_per_m: float = 0.002         # std grows linearly with distance (stereo-like)
    depth_dropout: float = 0.01                    # fraction of pixels with no return
    light_distance_m: tuple[float, float] = (1.0, 3.0)
    ambient: tuple[float, float] = (0.3, 0.7)
    diffuse: tuple[float, float] = (0.3, 0.8)
    specular: tuple[float, float] = (0.0, 0.4)


class SceneRenderer:
    """Keeps one World per task and renders randomised samples from it."""

    def __init__(self, width: int, height: int, randomisation: Randomisation = Randomisation()):
        self.intrinsics = CameraIntrinsics.d435(width, height)
        self.randomisation = randomisation
        self._worlds: dict[str, World] = {}
        self._nominal: dict[str, dict[tuple[int, int], np.ndarray]] = {}   # task -> (body, link) -> rgb

    def close(self) -> None:
        for world in self._worlds.values():
            world.close()
        self._worlds.clear()

    def sample(self, task: str, seed: int) -> Sample:
        """The sample of (task, seed): the same pair always gives the same images."""
        rng = np.random.default_rng([TASK_NAMES.index(task), seed])
        world = self._world(task)
        world.reset(seed)
        self._advance(world, int(rng.integers(0, self.randomisation.max_oracle_steps + 1)))
        self._recolour(world, rng)
        rgb, depth_m, seg = self._render(world, self._camera_pose(world, rng), rng)
        labels = label_image(seg, world.task.object_bodies())
        rgb, depth_mm = self._add_noise(rgb, depth_m, rng)
        return Sample(rgb, depth_mm, labels, task, seed)

    def _world(self, task: str) -> World:
        if task not in self._worlds:
            world = World(task)
            self._worlds[task] = world
            self._nominal[task] = {(body, link): np.asarray(_link_rgba(world.client, body, link)[:3])
                                   for body in world.task.object_bodies().values()
                                   for link in _links(world.client, body)}
        return self._worlds[task]

    @staticmethod
    def _advance(world: World, steps: int) -> None:
        oracle = make_oracle(world.task.name)
        oracle.reset(world)
        for _ in range(steps):
            if world.step(oracle.act(world)).state.success:
                break

    def _recolour(self, world: World, rng: np.random.Generator) -> None:
        jitter = self.randomisation.object_color_jitter
        for (body, link), nominal in self._nominal[world.task.name].items():
            colour = np.clip(nominal + rng.uniform(-jitter, jitter, 3), 0.0, 1.0)
            pb.changeVisualShape(body, link, rgbaColor=[*colour, 1.0], physicsClientId=world.client)
        for body in (world.table, world.panda.body, world.camera_arm.body):
            colour = rng.uniform(0.05, 0.95, 3)     # one colour per body: background can be anything
            for link in _links(world.client, body):
                pb.changeVisualShape(body, link, rgbaColor=[*colour, 1.0], physicsClientId=world.client)

    def _camera_pose(self, world: World, rng: np.random.Generator) -> Pose:
        r = self.randomisation
        if rng.random() < r.default_view_fraction:
            return world.task.default_camera_pose()
        centre = np.mean([pose.position for pose in world.object_poses().values()], axis=0)
        target = centre + rng.uniform(-r.look_at_jitter_m, r.look_at_jitter_m, 3)
        distance = rng.uniform(*r.camera_distance_m)
        elevation = np.radians(rng.uniform(*r.camera_elevation_deg))
        azimuth = np.radians(rng.uniform(*r.camera_azimuth_deg))
        offset = distance * np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                      np.sin(elevation)])
        return look_at(eye=target + offset, target=target)

    def _render(self, world: World, camera: Pose, rng: np.random.Generator):
        r, k = self.randomisation, self.intrinsics
        light_direction = rng.normal(size=3) * [1.0, 1.0, 0.3] + [0.0, 0.0, 1.0]   # mostly from above
        _, _, rgba, depth_buffer, seg = pb.getCameraImage(
            k.width, k.height, viewMatrix=view_matrix(camera), projectionMatrix=projection_matrix(k),
            renderer=pb.ER_TINY_RENDERER, shadow=int(rng.random() < 0.5),
            lightDirection=light_direction.tolist(), lightColor=rng.uniform(0.7, 1.0, 3).tolist(),
            lightDistance=float(rng.uniform(*r.light_distance_m)),
            lightAmbientCoeff=float(rng.uniform(*r.ambient)), lightDiffuseCoeff=float(rng.uniform(*r.diffuse)),
            lightSpecularCoeff=float(rng.uniform(*r.specular)), physicsClientId=world.client)
        rgb = np.asarray(rgba, np.uint8).reshape(k.height, k.width, 4)[:, :, :3]
        seg = np.asarray(seg, np.int32).reshape(k.height, k.width)
        depth = depth_buffer_to_metres(np.asarray(depth_buffer, np.float64).reshape(k.height, k.width))
        depth[seg < 0] = 0.0
        return rgb, depth, seg

    def _add_noise(self, rgb: np.ndarray, depth_m: np.ndarray, rng: np.random.Generator):
        r = self.randomisation
        noisy = rgb.astype(np.float32) + rng.normal(0.0, r.rgb_noise_std, rgb.shape)
        depth = depth_m * (1.0 + rng.normal(0.0, r.depth_noise_std_m_per_m, depth_m.shape))
        depth[rng.random(depth_m.shape) < r.depth_dropout] = 0.0
        depth_mm = np.clip(np.round(depth * DEPTH_MM_PER_M), 0, np.iinfo(np.uint16).max).astype(np.uint16)
        return np.clip(noisy, 0, 255).round().astype(np.uint8), depth_mm


def _links(client: int, body: int) -> range:
    return range(-1, pb.getNumJoints(body, physicsClientId=client))


def _link_rgba(client: int, body: int, link: int) -> tuple:
    for shape in pb.getVisualShapeData(body, physicsClientId=client):
        if shape[1] == link:
            return shape[7]
    return (0.5, 0.5, 0.5, 1.0)


def sample_keys(tasks: tuple[str, ...], count: int, first_seed: int) -> list[tuple[str, int]]:
    """(task, seed) pairs, the tasks in turn: seeds first_seed .. first_seed + count - 1."""
    return [(tasks[i % len(tasks)], first_seed + i) for i in range(count)]


def write_dataset(out_dir: Path, keys: list[tuple[str, int]], width: int, height: int, workers: int = 1,
                  progress: bool = True) -> list[Path]:
    """Render every (task, seed) into shards of SHARD_SIZE samples under out_dir; returns the shard paths.

    Shards are independent (a sample depends only on its task and seed), so `workers` processes
    render them in parallel and the result does not depend on the number of workers.
    """
    from multiprocessing import get_context

    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(out_dir / f'shard_{i // SHARD_SIZE:04d}.npz', keys[i:i + SHARD_SIZE], width, height)
            for i in range(0, len(keys), SHARD_SIZE)]
    bar = tqdm(total=len(keys), desc=f'rendering {out_dir.name}', unit='image', disable=not progress)
    shards = []
    with get_context('spawn').Pool(max(1, workers)) as pool:
        for path, count in pool.imap(_render_shard, jobs):
            shards.append(path)
            bar.update(count)
    bar.close()
    return shards


def _render_shard(job: tuple[Path, list[tuple[str, int]], int, int]) -> tuple[Path, int]:
    path, keys, width, height = job
    renderer = SceneRenderer(width, height)
    try:
        samples = [renderer.sample(task, seed) for task, seed in keys]
    finally:
        renderer.close()
    return write_shard(path, samples), len(samples)
