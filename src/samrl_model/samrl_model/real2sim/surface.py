"""The model's point cloud X_sim of Eq. (3): points on the target's visible surface.

Back-projecting the rendered depth would give points whose only gradient is along each pixel's
ray (the pixel grid is fixed), so a sideways error is nearly invisible to the EMD. Instead, fixed
samples on the mesh's triangles are moved with the latents (differentiable in every direction)
and only those the renderer sees are kept (visibility is a selection, without gradient).
"""

from __future__ import annotations

import numpy as np
import torch

from samrl_model.meshes import Mesh
from samrl_model.render import ObjectParams
from samrl_model.rotations import invert_pose

VISIBILITY_TOLERANCE_M = 0.004   # a sample is seen if it lies this close to the rendered depth
MASK_THRESHOLD = 0.5


def surface_samples(mesh: Mesh, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted triangle indices (count,) and barycentric weights (count, 3), fixed per model."""
    v = mesh.vertices[mesh.faces]
    areas = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    faces = rng.choice(len(areas), size=count, p=areas / areas.sum())
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    weights = np.stack([1.0 - r1, r1 * (1.0 - r2), r1 * r2], axis=1)
    return faces, weights


def visible_surface_points(params: ObjectParams, samples: tuple[np.ndarray, np.ndarray],
                           camera_pose_world: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor,
                           fx: float, fy: float, cx: float, cy: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples of the object's surface seen by the camera, in the optical frame (N, 3, metres),
    and their weights (N,), summing to 1.

    A camera's cloud has one point per pixel, so its density on a surface is the pixels that
    surface covers; area-uniform samples are reweighted to match it: a patch at range r, seen at
    incidence cos(i) and off-axis cos(o) = z / r, covers pixels in proportion to cos(i) / (r^2 cos(o)^3).
    Without this the EMD is biased towards surfaces seen obliquely.
    """
    faces, weights = samples
    vertices = params.world_vertices()
    corners = vertices[torch.as_tensor(params.mesh.faces[faces], dtype=torch.long)]      # (n, 3, 3)
    points_world = (torch.as_tensor(weights, dtype=vertices.dtype)[..., None] * corners).sum(dim=1)
    camera_world = invert_pose(camera_pose_world).to(vertices.dtype)
    points = points_world @ camera_world[:3, :3].T + camera_world[:3, 3]
    with torch.no_grad():
        z = points[:, 2]
        u = torch.round(fx * points[:, 0] / z + cx).long()
        v = torch.round(fy * points[:, 1] / z + cy).long()
        height, width = depth.shape
        inside = (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        u, v = u.clamp(0, width - 1), v.clamp(0, height - 1)
        seen = inside & (mask[v, u] > MASK_THRESHOLD) & ((depth[v, u] - z).abs() < VISIBILITY_TOLERANCE_M)
        corners_camera = corners[seen] @ camera_world[:3, :3].T
        normals = torch.linalg.cross(corners_camera[:, 1] - corners_camera[:, 0],
                                     corners_camera[:, 2] - corners_camera[:, 0])
        rays = points[seen]
        distance = rays.norm(dim=1)
        incidence = (normals * rays).sum(dim=1).abs() / (normals.norm(dim=1) * distance).clamp_min(1e-12)
        weights = incidence * distance / rays[:, 2].clamp_min(1e-6) ** 3
        weights = weights / weights.sum().clamp_min(1e-12)
    return points[seen], weights
