"""Real2Sim for one view (paper Sec. III-B): fit the target object's latents psi to a segmented RGB-D frame.

The latents are the model's own parameters of the target object: its translation (m) and
rotation vector (rad) in the world and, for the thread, its joint angles (rad). Every other
object, the table and the camera pose stay as they are (the robot and camera poses are known).

Pixels where the camera sees something nearer than anything the model has there (an occluder
the model lacks, such as the Panda's hand in front of the thread it holds) are left out of both
loss terms: the model cannot explain them, and comparing there pulls the object out of view.

Two losses (`Real2SimConfig.loss`):
- 'raycast' (default): the point-cloud term of Eq. (3) plus the mean depth residual on the pixels
  where both masks see the target, through one ray per pixel (Renderer.raycast: depth with
  gradients and the object seen), with no image passes: an iteration costs a few tens of ms;
- 'images': Eqs. (2)-(4) as the paper writes them, Mitsuba's RGB and mask passes plus the EMD
  (250-400 ms an iteration on 2 cores; its flat shading differs from the camera's, so the RGB
  term has a floor of its own).

The update starts from the model's current latents (`initial='current'`) or from a coarse
model fitted to the same view (`initial='coarse'`, coarse.py): the paper's initial model
built from an RGB-D view, which gradient descent on the render alone could not reach from far.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from samrl_model.real2sim.coarse import CoarseConfig, coarse_model
from samrl_model.real2sim.losses import (
    CLOUD_WEIGHT,
    DEPTH_WEIGHT,
    LossWeights,
    depth_residual,
    depth_to_points,
    emd,
    masked_image_l1,
    subsample,
)
from samrl_model.real2sim.observation import Observation
from samrl_model.real2sim.optimise import OptimiseConfig, OptimiseResult, optimise
from samrl_model.real2sim.surface import surface_samples, visible_surface_points
from samrl_model.render import ObjectParams, Renderer
from samrl_model.stopwatch import Stopwatch, timed

DEFAULT_CLOUD_POINTS = 500
SURFACE_SAMPLES = 1500      # on the whole mesh; about a third to a half are visible
INITIAL_MODELS = ('current', 'coarse')
LOSSES = ('raycast', 'images')
OCCLUSION_MARGIN_M = 0.005  # the camera's surface must be this much nearer than the model's to hide it


@dataclass(frozen=True)
class Real2SimConfig:
    weights: LossWeights = field(default_factory=LossWeights)
    cloud_points: int = DEFAULT_CLOUD_POINTS
    optimise: OptimiseConfig = field(default_factory=OptimiseConfig)
    seed: int = 0
    initial: str = 'current'        # start from the model's latents, or from a coarse fit to the view
    ignore_unmodelled_occluders: bool = True
    coarse: CoarseConfig = field(default_factory=CoarseConfig)
    loss: str = 'raycast'           # LOSSES: ray-cast depth + EMD, or the paper's RGB + mask + EMD

    def __post_init__(self):
        if self.initial not in INITIAL_MODELS:
            raise ValueError(f'initial must be one of {", ".join(INITIAL_MODELS)}, got {self.initial!r}')
        if self.loss not in LOSSES:
            raise ValueError(f'loss must be one of {", ".join(LOSSES)}, got {self.loss!r}')


@dataclass(frozen=True)
class RealTargets:
    """The camera's side of Eqs. (2)-(3) as torch tensors (and its depth, to find occluders)."""

    rgb: torch.Tensor
    mask: torch.Tensor
    cloud: torch.Tensor
    depth: torch.Tensor


def real_targets(observation: Observation, cloud_points: int, generator: torch.Generator) -> RealTargets:
    if not observation.mask.any():
        raise ValueError(f'the mask of {observation.target} is empty: nothing to fit')
    k = observation.intrinsics
    rgb = torch.as_tensor(observation.rgb, dtype=torch.float32)
    mask = torch.as_tensor(observation.mask, dtype=torch.float32)
    cloud = depth_to_points(torch.as_tensor(observation.depth_m, dtype=torch.float64), mask, k.fx, k.fy, k.cx, k.cy)
    if len(cloud) == 0:
        raise ValueError(f'no valid depth on the mask of {observation.target}')
    depth = torch.as_tensor(observation.depth_m, dtype=torch.float64)
    return RealTargets(rgb, mask, subsample(cloud, cloud_points, generator), depth)


def unmodelled_occlusion(mask: torch.Tensor, depth: torch.Tensor, model_depth: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: pixels off the camera's target `mask` where its `depth` is nearer than the model's."""
    return ((mask < 0.5) & (depth > 0) & (model_depth > 0)
            & (depth < model_depth.to(depth.dtype) - OCCLUSION_MARGIN_M))


def latents_of(params: ObjectParams) -> dict[str, torch.Tensor]:
    latents = {'translation': params.translation.detach().clone(), 'rotation': params.rotation.detach().clone(),
               'color': params.color.detach().clone()}
    if params.joint_angles is not None:
        latents['joint_angles'] = params.joint_angles.detach().clone()
    return latents


def with_latents(params: ObjectParams, latents: dict[str, torch.Tensor]) -> ObjectParams:
    return replace(params, translation=latents['translation'], rotation=latents['rotation'],
                   color=latents.get('color', params.color),
                   joint_angles=latents.get('joint_angles', params.joint_angles))


def _principal_point(renderer: Renderer, k) -> tuple[float, float] | None:
    """The observation's principal point if the renderer must shift to it (a window of a frame)."""
    own = renderer.intrinsics
    if (own.width, own.height) != (k.width, k.height) or not np.allclose((own.fx, own.fy), (k.fx, k.fy)):
        raise ValueError(f'the renderer draws {own.width}x{own.height} px at f = {own.fx:.1f}, {own.fy:.1f} px, the '
                         f'observation is {k.width}x{k.height} px at f = {k.fx:.1f}, {k.fy:.1f} px')
    return None if (own.cx, own.cy) == (k.cx, k.cy) else (k.cx, k.cy)


def update_model(observation: Observation, objects: dict[str, ObjectParams], camera_pose: torch.Tensor,
                 renderer: Renderer, config: Real2SimConfig = Real2SimConfig(), log=None,
                 stopwatch: Stopwatch | None = None) -> tuple[dict[str, ObjectParams], OptimiseResult]:
    """Fit objects[observation.target] to the observation; returns the updated objects and the run.

    With config.initial == 'coarse' the target's current latents are first replaced by a coarse fit
    to the view (they still settle its symmetric yaw and the thread's grasp); a view too poor for
    that fit raises ValueError.
    """
    target = observation.target
    generator = torch.Generator().manual_seed(config.seed)
    with timed(stopwatch, 'camera cloud'):
        real = real_targets(observation, config.cloud_points, generator)
    if config.initial == 'coarse':
        fit = coarse_model(observation, objects[target], config.coarse)
        objects = {**objects, target: fit.params}
        if log is not None:
            log(f'coarse initial model of {target}: {fit.method}, {fit.points} points, '
                f'mean residual {fit.residual_m * 1000:.2f} mm')
    principal_point = _principal_point(renderer, observation.intrinsics)
    samples = surface_samples(objects[target].mesh, SURFACE_SAMPLES, np.random.default_rng(config.seed))
    if config.loss == 'raycast':
        evaluate = raycast_evaluator(objects, target, camera_pose, renderer, real, samples, observation.intrinsics,
                                     stopwatch)
    else:
        evaluate = _image_evaluator(objects, target, camera_pose, renderer, real, samples, observation.intrinsics,
                                    config, principal_point, stopwatch)
    result = optimise(latents_of(objects[target]), evaluate, config.optimise, log, stopwatch)
    return {**objects, target: with_latents(objects[target], result.latents)}, result


def raycast_evaluator(objects: dict[str, ObjectParams], target: str, camera_pose: torch.Tensor, renderer: Renderer,
                      real: RealTargets, samples, k, stopwatch: Stopwatch | None = None,
                      shape_anchor: torch.Tensor | None = None, shape_weight: float = 0.0):
    """evaluate(latents) -> (loss, terms) of the ray-cast loss: EMD (Eq. 3) + the depth residual.

    The renderer draws the observation's intrinsics `k` (a window keeps its size and focal lengths
    and moves the principal point). With `shape_anchor`, a thread's joints are pulled towards it
    by `shape_weight` (m of loss per rad^2 of mean squared change).
    """
    index = list(objects).index(target)

    def evaluate(latents):
        # 1. Apply the latents to the model.
        model = {**objects, target: with_latents(objects[target], latents)}
        # 2. Ray-cast it: depth with gradients and which object each pixel sees.
        with timed(stopwatch, 'raycast depth'):
            depth, hits = renderer.raycast(model, camera_pose, (k.cx, k.cy))
        model_mask = torch.as_tensor(hits == index) & ~unmodelled_occlusion(real.mask, real.depth, depth.detach())
        # 3. Compare with the camera: depth where both see the target, and the EMD of the clouds.
        residual = depth_residual(depth, real.depth, model_mask & (real.mask > 0.5))
        loss, terms = DEPTH_WEIGHT * residual, {'depth_m': residual.item()}
        with timed(stopwatch, 'surface samples'):
            cloud, weights = visible_surface_points(model[target], samples, camera_pose, depth.detach(),
                                                    model_mask.float(), k.fx, k.fy, k.cx, k.cy)
        if len(cloud):      # an object ray-cast out of view has no cloud: the depth term has nothing either
            with timed(stopwatch, 'emd'):
                distance = emd(cloud, real.cloud, weights)
            loss, terms['emd_m'] = loss + CLOUD_WEIGHT * distance, distance.item()
        if shape_anchor is not None and 'joint_angles' in latents:
            bend = (latents['joint_angles'] - shape_anchor).square().mean()
            loss, terms['shape_rad2'] = loss + shape_weight * bend, bend.item()
        return loss, terms

    return evaluate


def _image_evaluator(objects, target, camera_pose, renderer, real, samples, k, config: Real2SimConfig,
                     principal_point, stopwatch):
    """evaluate(latents) of Eqs. (2)-(4): Mitsuba's masked RGB L1 plus the EMD."""
    iteration = [0]

    def evaluate(latents):
        model = {**objects, target: with_latents(objects[target], latents)}
        with timed(stopwatch, 'render (rgb, mask, depth)'):
            out = renderer.render(model, camera_pose, target=target, seed=config.seed + iteration[0],
                                  principal_point=principal_point)
        iteration[0] += 1
        compared = torch.ones_like(real.mask)
        if config.ignore_unmodelled_occluders:
            compared = compared * ~unmodelled_occlusion(real.mask, real.depth, out.depth.detach())
        image = masked_image_l1(real.rgb, real.mask * compared, out.rgb, out.mask * compared)
        loss, terms = config.weights.image * image, {'image_l1': image.item()}
        with timed(stopwatch, 'surface samples'):
            cloud, weights = visible_surface_points(model[target], samples, camera_pose, out.depth.detach(),
                                                    out.mask.detach() * compared, k.fx, k.fy, k.cx, k.cy)
        if len(cloud):  # an object rendered out of view has no cloud: the image term pulls it back
            with timed(stopwatch, 'emd'):
                distance = emd(cloud, real.cloud, weights)
            loss = loss + config.weights.cloud * distance
            terms['emd_m'] = distance.item()
        return loss, terms

    return evaluate
