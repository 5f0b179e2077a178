"""Point-to-plane alignment of a rigid target's model with the camera's depth (open3d's ICP).

The tracker's refit moves the latents by Adam steps of about one learning rate each, so a pose
several degrees off takes more iterations than a control step allows, and a target showing a few
dozen binned pixels constrains its tilt weakly through the mask. The camera's depth on the
target, at the frame's own pixels, fixes the visible surfaces' planes directly: ICP aligns them
with the model's surfaces that face the camera in a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d
from scipy import ndimage

from samrl_description.geometry import Pose
from samrl_model.real2sim.observation import Observation
from samrl_model.real2sim.surface import surface_samples
from samrl_model.real2sim.window import Window
from samrl_model.render import ObjectParams

MODEL_SAMPLES = 4000               # area-uniform samples of the model's surface (before culling back faces)
CAMERA_POINTS = 1000               # at most this many camera points of the target
MAX_CORRESPONDENCE_M = 0.006       # farther pairs are outliers (the mask's edge, another surface)
ICP_ITERATIONS = 20
MIN_POINTS = 60                    # fewer camera points: too little to align
MIN_FITNESS = 0.6                  # fraction of camera points that must find a model surface
ERODE_PX = 1                       # the mask's edge pixels may see the surface behind the target


@dataclass(frozen=True)
class Alignment:
    """A world motion that moves the model onto the camera's points, and how well they then agree."""

    motion: Pose
    fitness: float          # fraction of camera points with a model surface within MAX_CORRESPONDENCE_M
    rmse_m: float           # of those points' distances to the model's surface planes
    points: int


def camera_points(observation: Observation, window: Window, rng: np.random.Generator) -> np.ndarray:
    """The target's points (world frame, metres) in `window`, from the frame's own pixels."""
    rows, columns = window.frame_slices()
    mask = ndimage.binary_erosion(observation.mask[rows, columns], iterations=ERODE_PX)
    depth = observation.depth_m[rows, columns]
    v, u = np.nonzero(mask & (depth > 0))
    if len(v) > CAMERA_POINTS:
        keep = rng.choice(len(v), CAMERA_POINTS, replace=False)
        v, u = v[keep], u[keep]
    intrinsics, z = observation.intrinsics, depth[v, u].astype(float)
    optical = np.stack([(u + columns.start - intrinsics.cx) * z / intrinsics.fx,
                        (v + rows.start - intrinsics.cy) * z / intrinsics.fy, z], axis=1)
    return observation.camera_pose.apply(optical)


def model_surface(params: ObjectParams, camera_position: np.ndarray, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Samples (world, metres) and outward normals of the model's faces that face the camera."""
    vertices = params.world_vertices().detach().numpy()
    faces, weights = surface_samples(params.mesh, MODEL_SAMPLES, rng)
    corners = vertices[params.mesh.faces[faces]]
    points = (weights[..., None] * corners).sum(axis=1)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-12)
    facing = ((camera_position - points) * normals).sum(axis=1) > 0
    return points[facing], normals[facing]


def align(points: np.ndarray, params: ObjectParams, camera_position: np.ndarray,
          rng: np.random.Generator) -> Alignment | None:
    """Point-to-plane ICP of the camera's `points` onto the model's camera-facing surface; None if
    too few points or too few of them find the model. Both clouds are centred on the model's origin
    so the linearised rotation turns about the target, not about the world's origin."""
    if len(points) < MIN_POINTS:
        return None
    surface, normals = model_surface(params, camera_position, rng)
    centre = params.translation.detach().numpy().astype(float)
    source, target = o3d.geometry.PointCloud(), o3d.geometry.PointCloud()
    source.points = o3d.utility.Vector3dVector(points - centre)
    target.points = o3d.utility.Vector3dVector(surface - centre)
    target.normals = o3d.utility.Vector3dVector(normals)
    result = o3d.pipelines.registration.registration_icp(
        source, target, MAX_CORRESPONDENCE_M, np.eye(4),
        o3d.pipelines.registration.TransformationEstimationPointToPlane(),
        o3d.pipelines.registration.ICPConvergenceCriteria(max_iteration=ICP_ITERATIONS))
    if result.fitness < MIN_FITNESS:
        return None
    # result moves the camera's points onto the model; the model moves by its inverse (about centre)
    inverse = np.linalg.inv(np.asarray(result.transformation))
    rotation, shift = inverse[:3, :3], inverse[:3, 3]
    motion = Pose.from_matrix(_about(rotation, shift, centre))
    return Alignment(motion, float(result.fitness), float(result.inlier_rmse), len(points))


def _about(rotation: np.ndarray, shift: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The world transform x -> rotation (x - centre) + shift + centre, as a 4x4 matrix."""
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = rotation, shift + centre - rotation @ centre
    return matrix
