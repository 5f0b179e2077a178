"""The model M as a service keeps it: the current latents of every object, updated by Real2Sim.

ROS-free; model_node.py is the shell. Requests arrive as plain arrays and are checked here, so a
malformed one is refused with its reason before anything is rendered.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose
from samrl_description.objects import SceneObjects
from samrl_description.tasks import TARGETS, check_task, nominal_scene
from samrl_model.real2sim.observation import Observation
from samrl_model.real2sim.optimise import OptimiseConfig
from samrl_model.real2sim.update import Real2SimConfig, update_model
from samrl_model.render import ObjectParams, Renderer, RenderOutput, objects_from_placements
from samrl_model.rotations import pose_matrix_from_quat

QUATERNION_NORM_TOLERANCE = 1e-3
MIN_MASK_PIXELS = 10
MAX_IMAGE_PIXELS = 1280 * 960     # twice the D435's 640x480 a side; a render's memory grows with its pixels
MAX_CAMERA_RANGE_M = 10.0         # a camera pose further from the world origin is not of this robot cell
MAX_RENDERERS = 4                 # renderers (one per distinct intrinsics) kept, least recently used dropped


class RequestError(ValueError):
    """A request the model cannot use; the message says why."""


@dataclass(frozen=True)
class UpdateOutcome:
    final_loss: float
    iterations: int
    converged: bool
    wall_time_s: float


def check_pose(pose: Pose, name: str) -> Pose:
    """`pose` with its quaternion normalised if it is finite, has a unit quaternion (within
    QUATERNION_NORM_TOLERANCE) and lies within MAX_CAMERA_RANGE_M of the origin; RequestError otherwise."""
    if not (np.all(np.isfinite(pose.position)) and np.all(np.isfinite(pose.quaternion))):
        raise RequestError(f'{name} is not finite')
    norm = float(np.linalg.norm(pose.quaternion))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise RequestError(f'{name} quaternion has norm {norm:.4g}, not 1')
    if float(np.linalg.norm(pose.position)) > MAX_CAMERA_RANGE_M:
        raise RequestError(f'{name} position {pose.position.tolist()} is more than {MAX_CAMERA_RANGE_M:g} m from the '
                           'world origin')
    return Pose(np.asarray(pose.position, dtype=float), np.asarray(pose.quaternion, dtype=float) / norm)


def check_camera(camera_pose: Pose, intrinsics: CameraIntrinsics) -> None:
    """Raise RequestError unless the camera pose is finite with a unit quaternion and the
    intrinsics are usable (samrl_description.camera.CameraIntrinsics.validate)."""
    check_pose(camera_pose, 'camera pose')
    try:
        intrinsics.validate()
    except ValueError as exc:
        raise RequestError(f'camera_info: {exc}') from exc
    if intrinsics.width * intrinsics.height > MAX_IMAGE_PIXELS:
        raise RequestError(f'image {intrinsics.width}x{intrinsics.height} is larger than {MAX_IMAGE_PIXELS} pixels')


def check_observation(rgb: np.ndarray, depth_m: np.ndarray, mask: np.ndarray, intrinsics: CameraIntrinsics,
                      camera_pose: Pose, target: str, known: list[str],
                      min_mask_pixels: int = MIN_MASK_PIXELS) -> None:
    """Raise RequestError naming the first problem of an update request. A tracking step passes
    `min_mask_pixels=0`: a target hidden in one frame is predicted, not refused."""
    check_camera(camera_pose, intrinsics)
    size = (intrinsics.height, intrinsics.width)
    shapes = {'rgb': rgb.shape[:2], 'depth': depth_m.shape, 'mask': mask.shape}
    for name, shape in shapes.items():
        if tuple(shape) != size:
            raise RequestError(f'{name} is {shape[1]}x{shape[0]} but camera_info says {size[1]}x{size[0]}')
    if target not in known:
        raise RequestError(f'unknown target {target!r}; the model has {", ".join(known)}')
    if int(mask.sum()) < min_mask_pixels:
        raise RequestError(f'the mask has {int(mask.sum())} pixels (fewer than {min_mask_pixels}): nothing to fit')
    if not np.all(np.isfinite(depth_m)):
        raise RequestError('depth contains NaN or inf')
    if mask.any() and not np.any(depth_m[mask] > 0):
        raise RequestError('no valid depth inside the mask')


class SceneModel:
    """The task's objects as latents, a Real2Sim update and renders from any camera pose.

    The initial model is the task's nominal scene (samrl_description.tasks.nominal_scene): a prior
    that Real2Sim corrects, either directly or after replacing the target by a coarse fit to the
    view (`initial='coarse'`). No simulator is involved.
    """

    def __init__(self, task: str, spp: int = 4, specs: SceneObjects = SceneObjects()):
        self.objects = objects_from_placements(nominal_scene(check_task(task), specs), specs)
        self.task, self.spp = task, spp
        self.default_target = TARGETS[task]
        self.hand: dict[str, ObjectParams] = {}     # the Panda's hand where tracking last saw it (rendered, not fitted)
        self._renderers: OrderedDict[tuple, Renderer] = OrderedDict()

    def object_names(self) -> list[str]:
        return [name for name in self.objects if name != 'table']

    def _renderer(self, intrinsics: CameraIntrinsics) -> Renderer:
        key = (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy, intrinsics.width, intrinsics.height)
        if key not in self._renderers:
            self._renderers[key] = Renderer(intrinsics, spp=self.spp)
            while len(self._renderers) > MAX_RENDERERS:
                self._renderers.popitem(last=False)
        self._renderers.move_to_end(key)
        return self._renderers[key]

    def update(self, observation: Observation, config: OptimiseConfig, initial: str = 'current') -> UpdateOutcome:
        """Real2Sim on one view, from the current model or from a coarse fit to the view (`initial`
        'current' or 'coarse'); the model keeps the result."""
        check_observation(observation.rgb, observation.depth_m, observation.mask, observation.intrinsics,
                          observation.camera_pose, observation.target, self.object_names())
        camera = pose_matrix_from_quat(observation.camera_pose.position, observation.camera_pose.quaternion)
        try:
            updated, result = update_model(observation, self.objects, camera, self._renderer(observation.intrinsics),
                                           Real2SimConfig(optimise=config, initial=initial))
        except ValueError as exc:       # an unknown `initial`, or a view too poor for the coarse fit
            raise RequestError(str(exc)) from exc
        self.objects = {name: _detached(params) for name, params in updated.items()}
        return UpdateOutcome(result.final_loss, result.iterations, result.converged, result.wall_time_s)

    def render(self, camera_pose: Pose, intrinsics: CameraIntrinsics, target: str) -> RenderOutput:
        check_camera(camera_pose, intrinsics)
        if target not in self.objects:
            raise RequestError(f'unknown target {target!r}; the model has {", ".join(self.object_names())}')
        camera = pose_matrix_from_quat(camera_pose.position, camera_pose.quaternion)
        with torch.no_grad():
            return self._renderer(intrinsics).render({**self.objects, **self.hand}, camera, target=target)


def _detached(params: ObjectParams) -> ObjectParams:
    from dataclasses import replace
    return replace(params, translation=params.translation.detach(), rotation=params.rotation.detach(),
                   color=params.color.detach(),
                   joint_angles=None if params.joint_angles is None else params.joint_angles.detach())
