"""Coarse initial model from one segmented RGB-D view (paper Sec. III-B.1, "build the initial model").

The paper builds its initial model with RGB-D reconstruction or a CAD model and only asks that
it be roughly right; Real2Sim (update.py) then refines it. Here the object's shape is known (its
spec is the CAD model), so building the initial model means fitting that known shape to the view:

1. Cloud: the masked depth is back-projected and moved into the world frame with the camera's
   pose (calibrated, on the robot's wrist); open3d's statistical outlier removal drops flying
   pixels at the mask's edge and a voxel grid evens out the density.
2. Rigid objects resting on the table (hole block, pancake):
   a. Yaw from the minimum-area rectangle around the cloud's xy footprint. The principal axes
      that PCA would give are undefined for these shapes (a square's and a disc's xy covariance
      is isotropic); the tightest rectangle is not, and for a square it is the square.
   b. Position: the rectangle's centre; height: the object's rest height on the plane z = 0.
   c. Refinement: point-to-plane ICP of the cloud against samples of the object's own mesh,
      restricted to the table's three freedoms (x, y, yaw) so the result stays upright and
      resting, and matched only against samples the camera can see at the current estimate
      (open3d ray casting; one view shows front surfaces only, and internal faces of compound
      meshes would attract wrong matches). open3d's 6-DoF ICP is not used: on a view that is
      mostly one plane (a pancake under the spatula) it slides along that plane (tried: 0.3 m).
   d. A partly hidden object fits many poses, so ICP runs from a grid of starts around the
      footprint's centre and keeps the pose most consistent with the view: close to the
      cloud, and with none of its visible surface where the camera sees past it (free space).
   e. Symmetry: the block looks the same every quarter turn and the pancake under any turn
      about its axis, so the view cannot tell these yaws apart: the one nearest the prior's
      yaw is kept (the pancake keeps the prior's yaw).
3. The thread (a chain held by the Panda): its grasped segment is where the gripper is (the
   robot's pose is known), so the prior's base pose anchors the chain and the joint angles are
   fitted by robust least squares so the chain's centreline runs through the cloud, with a
   weak pull towards straight for the links the view does not show (in the close view the
   hand hides the grasp and the tail; the tip is seen).
4. Colour: the median of the masked pixels (the model shades each object flat).

Each step fails with a ValueError naming the reason when the view holds too few points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import open3d as o3d
import torch
from scipy.optimize import least_squares
from scipy.spatial import ConvexHull, cKDTree
from scipy.spatial.transform import Rotation

from samrl_model.meshes import thread_link_poses
from samrl_model.real2sim.observation import Observation
from samrl_model.real2sim.surface import surface_samples
from samrl_model.render import ObjectParams
from samrl_model.rotations import pose_matrix

QUARTER_TURN_RAD = 0.5 * np.pi
# How the view constrains each target's yaw about the world z axis (None: not symmetric).
YAW_PERIOD_RAD = {'hole_block': QUARTER_TURN_RAD, 'pancake': 0.0, 'thread': None}
START_GRID_SIDE = 5             # ICP starts per side of the square grid around the footprint's centre
POINT_TO_POINT_WEIGHT = 0.1     # of the point-to-point rows against the point-to-plane ones
ICP_CONVERGED_M = 1e-5
ICP_CONVERGED_RAD = 1e-4


@dataclass(frozen=True)
class CoarseConfig:
    """Cloud cleaning, ICP and thread-fit settings (lengths in metres)."""

    voxel_m: float = 0.002              # about one pixel at the close views' range
    start_voxel_m: float = 0.005        # sparser cloud to rank the ICP starts
    outlier_neighbours: int = 12
    outlier_std_ratio: float = 2.0
    min_points: int = 30                # fewer cleaned points than this: nothing to fit
    min_thread_points: int = 10         # the thread is a few pixels wide
    model_samples: int = 6000           # surface samples of the object's mesh for ICP
    icp_distances_m: tuple[float, ...] = (0.010, 0.005, 0.003)   # correspondence radius per round
    icp_iterations: int = 20
    visibility_tolerance_m: float = 0.001
    consistency_cap_m: float = 0.010    # a cloud point further than this from the model counts as this far
    free_space_tolerance_m: float = 0.003   # the camera sees past the model only beyond this depth
    # Thread least squares: a cloud point this far from the chain's surface costs as much as a
    # joint bent by thread_bend_prior_rad (about the task's bend range); unseen links stay straight.
    thread_point_scale_m: float = 0.001
    thread_bend_prior_rad: float = 0.3


@dataclass(frozen=True)
class CoarseFit:
    """The fitted latents and how well they explain the view."""

    params: ObjectParams
    points: int                 # cleaned cloud points fitted
    residual_m: float           # mean distance of those points from the fitted surface
    see_through: float          # fraction of the fitted surface the camera sees past (rigid objects)
    method: str


# --- the cloud ----------------------------------------------------------------------------------

def world_cloud(observation: Observation) -> np.ndarray:
    """(N, 3) world points of the masked pixels with depth (metres)."""
    k = observation.intrinsics
    v, u = np.nonzero(observation.mask & (observation.depth_m > 0))
    z = observation.depth_m[v, u]
    optical = np.stack([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z], axis=1)
    camera = observation.camera_pose
    return optical @ camera.rotation.T + camera.position


def clean_cloud(points: np.ndarray, config: CoarseConfig, voxel: bool = True) -> np.ndarray:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    if len(points) > config.outlier_neighbours:
        cloud, _ = cloud.remove_statistical_outlier(config.outlier_neighbours, config.outlier_std_ratio)
    points = np.asarray(cloud.points)
    return _voxel(points, config.voxel_m) if voxel else points


def _voxel(points: np.ndarray, size_m: float) -> np.ndarray:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    return np.asarray(cloud.voxel_down_sample(size_m).points)


def _require(points: np.ndarray, minimum: int, target: str, stage: str) -> None:
    if len(points) < minimum:
        raise ValueError(f'{target}: {len(points)} points {stage} (need {minimum}); the view shows too little to fit')


# --- rigid objects on the table ----------------------------------------------------------------

def footprint_rectangle(xy: np.ndarray) -> tuple[float, np.ndarray]:
    """Yaw in [0, pi/2) and centre of the minimum-area rectangle around 2-D points.

    One side of the tightest rectangle lies along an edge of the convex hull, so trying the
    hull's edge directions is exact.
    """
    hull = xy[ConvexHull(xy).vertices]
    edges = np.roll(hull, -1, axis=0) - hull
    best = (np.inf, 0.0, np.zeros(2))
    for yaw in np.unique(np.arctan2(edges[:, 1], edges[:, 0]) % QUARTER_TURN_RAD):
        c, s = np.cos(yaw), np.sin(yaw)
        local = hull @ np.array([[c, -s], [s, c]])          # points in the rectangle's axes
        low, high = local.min(axis=0), local.max(axis=0)
        area = float(np.prod(high - low))
        if area < best[0]:
            mid = 0.5 * (low + high)
            best = (area, float(yaw), np.array([c * mid[0] - s * mid[1], s * mid[0] + c * mid[1]]))
    return best[1], best[2]


def nearest_symmetric_yaw(yaw: float, prior_yaw: float, period: float) -> float:
    """Of yaw + k * period, the one closest to prior_yaw (period 0: any yaw looks the same)."""
    if period == 0.0:
        return prior_yaw
    return prior_yaw + float((yaw - prior_yaw + 0.5 * period) % period - 0.5 * period)


def yaw_of(rotation: np.ndarray) -> float:
    """Yaw (rad) of a frame's x axis projected on the world xy plane."""
    return float(np.arctan2(rotation[1, 0], rotation[0, 0]))


def _resting_pose(x: float, y: float, yaw: float, rest_height_m: float) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler('z', yaw).as_matrix()
    pose[:3, 3] = (x, y, rest_height_m)
    return pose


class _VisibleSurface:
    """Area-uniform samples (and their normals) of a rigid mesh, filtered by what a camera sees."""

    def __init__(self, params: ObjectParams, count: int, seed: int = 0):
        mesh = params.mesh
        faces, weights = surface_samples(mesh, count, np.random.default_rng(seed))
        corners = mesh.vertices[mesh.faces[faces]].astype(np.float64)
        self.local_points = (weights[..., None] * corners).sum(axis=1)
        normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        self.local_normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        self.mesh = mesh

    def at(self, pose: np.ndarray, which: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """World samples and normals of the object at `pose` (4, 4)."""
        return self.local_points[which] @ pose[:3, :3].T + pose[:3, 3], self.local_normals[which] @ pose[:3, :3].T

    def seen_from(self, pose: np.ndarray, camera_position: np.ndarray, tolerance_m: float) -> np.ndarray:
        """Which samples at `pose` face the camera and are not hidden by the object itself (bool mask)."""
        points, normals = self.at(pose)
        scene = o3d.t.geometry.RaycastingScene()
        vertices = self.mesh.vertices.astype(np.float64) @ pose[:3, :3].T + pose[:3, 3]
        scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)),
                            o3d.core.Tensor(self.mesh.faces.astype(np.uint32)))
        rays = points - camera_position
        distance = np.linalg.norm(rays, axis=1)
        directions = rays / distance[:, None]
        origins = np.broadcast_to(camera_position, points.shape)
        hits = scene.cast_rays(o3d.core.Tensor(np.hstack([origins, directions]).astype(np.float32)))
        return (hits['t_hit'].numpy() > distance - tolerance_m) & ((normals * directions).sum(axis=1) < 0.0)


def _planar_step(samples: np.ndarray, normals: np.ndarray, cloud: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Least-squares (dx, dy, dyaw) of the model about `centre` bringing matched samples onto the cloud.

    Rows: normal . (s' - q) = 0 (point to plane), then POINT_TO_POINT_WEIGHT * (s' - q)_xy = 0,
    with s' = s + (dx, dy, 0) + dyaw z x (s - centre) linearised.
    """
    count = len(samples)
    arm = samples - centre
    turn = np.stack([-arm[:, 1], arm[:, 0], np.zeros(count)], axis=1)       # d s / d yaw
    offset = samples - cloud
    ones, zeros = np.ones(count), np.zeros(count)
    rows = np.concatenate([np.stack([normals[:, 0], normals[:, 1], (normals * turn).sum(axis=1)], axis=1),
                           POINT_TO_POINT_WEIGHT * np.stack([ones, zeros, turn[:, 0]], axis=1),
                           POINT_TO_POINT_WEIGHT * np.stack([zeros, ones, turn[:, 1]], axis=1)])
    rhs = -np.concatenate([(offset * normals).sum(axis=1), POINT_TO_POINT_WEIGHT * offset[:, 0],
                           POINT_TO_POINT_WEIGHT * offset[:, 1]])
    return np.linalg.lstsq(rows, rhs, rcond=None)[0]


def _planar_icp(cloud: np.ndarray, surface: _VisibleSurface, pose: np.ndarray, camera_position: np.ndarray,
                distance_m: float, config: CoarseConfig) -> np.ndarray:
    """Point-to-plane ICP restricted to the table's three freedoms (x, y, yaw); returns the new pose.

    The model moves; cloud points further than `distance_m` from its visible samples are ignored.
    A weak point-to-point term keeps the step defined where the matched surface is one plane
    (6-DoF point-to-plane ICP slides freely along a pancake's top face).
    """
    seen = surface.seen_from(pose, camera_position, config.visibility_tolerance_m)
    if seen.sum() < 3:
        return pose
    tree = cKDTree(surface.local_points[seen])     # matched in the object's frame: one tree per round
    for _ in range(config.icp_iterations):
        local_cloud = (cloud - pose[:3, 3]) @ pose[:3, :3]
        gap, index = tree.query(local_cloud, distance_upper_bound=distance_m)
        matched = np.isfinite(gap)
        if matched.sum() < 3:
            break
        samples, normals = surface.at(pose, np.flatnonzero(seen)[index[matched]])
        step = _planar_step(samples, normals, cloud[matched], pose[:3, 3])
        pose = _resting_pose(pose[0, 3] + step[0], pose[1, 3] + step[1], yaw_of(pose[:3, :3]) + step[2], pose[2, 3])
        if np.hypot(step[0], step[1]) < ICP_CONVERGED_M and abs(step[2]) < ICP_CONVERGED_RAD:
            break
    return pose


def view_consistency(pose: np.ndarray, surface: _VisibleSurface, cloud: np.ndarray, observation: Observation,
                     config: CoarseConfig) -> tuple[float, float]:
    """(mean capped distance of the cloud to the model's visible samples (m), fraction of the model's
    visible surface that projects onto pixels where the camera sees past it).

    The second term is what ICP alone misses: with a partly hidden object, many poses explain
    the few points seen, but only one puts no surface where the camera looks through to the table.
    """
    samples, _ = surface.at(pose, surface.seen_from(pose, observation.camera_pose.position,
                                                    config.visibility_tolerance_m))
    if len(samples) == 0:
        return config.consistency_cap_m, 1.0
    gap, _ = cKDTree(samples).query(cloud)
    residual = float(np.minimum(gap, config.consistency_cap_m).mean())
    camera = observation.camera_pose
    optical = (samples - camera.position) @ camera.rotation
    k = observation.intrinsics
    u = np.round(k.fx * optical[:, 0] / optical[:, 2] + k.cx).astype(int)
    v = np.round(k.fy * optical[:, 1] / optical[:, 2] + k.cy).astype(int)
    inside = (optical[:, 2] > 0) & (u >= 0) & (u < k.width) & (v >= 0) & (v < k.height)
    if not inside.any():
        return residual, 1.0
    u, v, z = u[inside], v[inside], optical[inside, 2]
    seen_depth = observation.depth_m[v, u]
    through = ~observation.mask[v, u] & ((seen_depth == 0) | (seen_depth > z + config.free_space_tolerance_m))
    return residual, float(through.mean())


def _start_positions(centre: np.ndarray, radius_m: float) -> np.ndarray:
    """ICP starts: the footprint's centre and a grid around it reaching the object's radius."""
    steps = np.linspace(-radius_m, radius_m, START_GRID_SIDE)
    return centre + np.array([(dx, dy) for dx in steps for dy in steps])


def fit_resting(cloud: np.ndarray, prior: ObjectParams, observation: Observation, period: float,
                config: CoarseConfig) -> tuple[np.ndarray, float, float]:
    """World pose (4, 4) of a rigid object resting on the table that explains the view; its
    cloud residual (m) and the fraction of its visible surface the camera sees through."""
    rest_height = -float(prior.mesh.vertices[:, 2].min())     # the body's lowest point touches z = 0
    radius = float(np.linalg.norm(prior.mesh.extent_m[:2])) / 2
    yaw, centre = footprint_rectangle(cloud[:, :2])
    prior_yaw = yaw_of(pose_matrix(prior.translation, prior.rotation).detach().numpy()[:3, :3])
    surface = _VisibleSurface(prior, config.model_samples)
    camera = observation.camera_pose.position
    first, *finer = config.icp_distances_m
    sparse = _voxel(cloud, config.start_voxel_m)

    def cost(pose):
        residual, through = view_consistency(pose, surface, sparse, observation, config)
        return residual / config.consistency_cap_m + through

    # Every start gets the coarse round; only the most consistent one is refined further.
    poses = [_planar_icp(sparse, surface, _resting_pose(*start, yaw, rest_height), camera, first, config)
             for start in _start_positions(centre, radius)]
    pose = min(poses, key=cost)
    for distance in finer:
        pose = _planar_icp(cloud, surface, pose, camera, distance, config)
    residual, through = view_consistency(pose, surface, cloud, observation, config)
    pose = _resting_pose(pose[0, 3], pose[1, 3], nearest_symmetric_yaw(yaw_of(pose[:3, :3]), prior_yaw, period),
                         rest_height)
    return pose, residual, through


# --- the thread ---------------------------------------------------------------------------------

def _thread_segments(angles: np.ndarray, base_pose: torch.Tensor, prior: ObjectParams
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Centreline segments (start (n, 3), end (n, 3)) of every link of the chain, world frame."""
    spec = prior.thread_spec
    links = thread_link_poses(torch.as_tensor(angles, dtype=torch.float64), base_pose, spec).numpy()
    half = 0.5 * spec.segment_length_m
    # Base centred on its frame; tip-side links reach +L along their x from the joint, tail-side -L.
    offsets = np.array([[-half, half]] + [[0.0, 2 * half]] * spec.tip_links + [[0.0, -2 * half]] * spec.tail_links)
    x_axes, origins = links[:, :3, 0], links[:, :3, 3]
    return origins + offsets[:, :1] * x_axes, origins + offsets[:, 1:] * x_axes


def distance_to_segments(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(N,) distance of each point to the nearest of the segments."""
    along = ends - starts
    t = np.einsum('nsk,sk->ns', points[:, None] - starts[None], along) / (along * along).sum(axis=1)
    closest = starts[None] + np.clip(t, 0.0, 1.0)[..., None] * along[None]
    return np.linalg.norm(points[:, None] - closest, axis=2).min(axis=1)


def fit_thread(cloud: np.ndarray, prior: ObjectParams, config: CoarseConfig) -> tuple[np.ndarray, float]:
    """Joint angles (rad) putting the chain anchored at the prior's grasp through the cloud, and the
    cloud's mean distance from the chain's surface (m)."""
    base = pose_matrix(prior.translation, prior.rotation).detach()
    radius = prior.thread_spec.radius_m
    joints = prior.thread_spec.tip_links + prior.thread_spec.tail_links

    def residuals(angles):
        starts, ends = _thread_segments(angles, base, prior)
        off = distance_to_segments(cloud, starts, ends) - radius   # points lie on the surface, not the axis
        return np.concatenate([off / config.thread_point_scale_m, angles / config.thread_bend_prior_rad])

    solution = least_squares(residuals, np.zeros(joints), loss='soft_l1', f_scale=1.0, x_scale=0.1)
    starts, ends = _thread_segments(solution.x, base, prior)
    return solution.x, float(np.abs(distance_to_segments(cloud, starts, ends) - radius).mean())


# --- entry point --------------------------------------------------------------------------------

def coarse_model(observation: Observation, prior: ObjectParams, config: CoarseConfig = CoarseConfig()
                 ) -> CoarseFit:
    """Fit the target's known shape to the view; returns the prior with the fitted pose (and bends).

    `prior` gives the object's mesh and settles what the view cannot: the yaw among symmetric
    ones (hole block, pancake) and, for the thread, the grasped segment's pose. The colour is the
    median of the masked pixels (the model's flat shading has one colour per object).
    """
    target = observation.target
    if target not in YAW_PERIOD_RAD:
        raise ValueError(f'no coarse fit for {target!r}; supported: {", ".join(YAW_PERIOD_RAD)}')
    raw = world_cloud(observation)
    is_thread = target == 'thread'
    minimum = config.min_thread_points if is_thread else config.min_points
    _require(raw, minimum, target, 'with depth in the mask')
    cloud = clean_cloud(raw, config, voxel=not is_thread)   # the thread is thinner than a voxel
    _require(cloud, minimum, target, 'after outlier removal')
    color = torch.as_tensor(np.median(observation.rgb[observation.mask], axis=0), dtype=torch.float64)
    if is_thread:
        angles, residual = fit_thread(cloud, prior, config)
        params = replace(prior, color=color, joint_angles=torch.as_tensor(angles, dtype=torch.float64))
        return CoarseFit(_detached(params), len(cloud), residual, float('nan'), 'grasp-anchored chain')
    pose, residual, through = fit_resting(cloud, prior, observation, YAW_PERIOD_RAD[target], config)
    params = replace(prior, color=color, translation=torch.as_tensor(pose[:3, 3].copy()),
                     rotation=torch.as_tensor(Rotation.from_matrix(pose[:3, :3]).as_rotvec()))
    return CoarseFit(_detached(params), len(cloud), residual, through, 'resting pose, planar ICP')


def _detached(params: ObjectParams) -> ObjectParams:
    return replace(params, translation=params.translation.detach().clone(),
                   rotation=params.rotation.detach().clone(), color=params.color.detach().clone(),
                   joint_angles=None if params.joint_angles is None else params.joint_angles.detach().clone())
