"""Differentiable RGB, mask and depth rendering of the task objects with Mitsuba 3 (paper Sec. III-A/B).

Pipeline of one `Renderer.render` call (latents -> images, all gradients through torch):

1. `ObjectParams` latents (translation, axis-angle rotation, RGB colour, thread joint angles) and
   the camera pose P give each object's vertices in the camera's optical frame,
   v_cam = T_camera_world(P) @ T_world_object(psi) @ v_object, computed in torch.
2. `_render_images` - the one torch <-> Dr.Jit function - writes those vertices and colours into
   two Mitsuba scenes and renders them with the `direct_projective` integrator, whose
   projective sampling of silhouettes gives gradients for visibility changes: an RGB pass
   (every object an area emitter of its colour on black, i.e. flat shading) and a mask pass
   (the target white, everything else black but occluding).
3. Depth is ray-cast through each pixel centre (hit triangles found by Mitsuba, detached) and
   the distance to the hit triangle's plane is recomputed in torch from its vertices, so depth
   has gradients w.r.t. every latent inside surfaces (not across depth discontinuities).

Conventions: the Mitsuba sensor is fixed at the origin (its own pose gradients miss the
visibility term, FACTS.md); scene coordinates are the REP-103 optical frame (x right, y down,
z forward), reached from Mitsuba's camera frame (x left, y up, z forward) by a half turn about z.
Pixel (u, v) is centred on the pinhole projection u = fx x / z + cx, v = fy y / z + cy, as in
samrl_description.camera and ROS; Mitsuba's film puts pixel u's centre at film coordinate u + 0.5.
fx != fy is handled by stretching the optical frame's x by fx / fy before rendering.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import drjit as dr
import mitsuba as mi
import numpy as np
import torch

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import quat_to_axis_angle
from samrl_description.objects import SceneObjects, ThreadSpec
from samrl_description.tasks import Placement
from samrl_model.meshes import Mesh, object_mesh, object_rgb, table_pose, thread_link_poses
from samrl_model.rotations import invert_pose, pose_matrix

PREFERRED_VARIANTS = ('cuda_ad_rgb', 'llvm_ad_rgb')
DEFAULT_SPP = 4                  # samples per pixel, primal and gradient passes alike
NEAR_CLIP_M = 0.01
FAR_CLIP_M = 100.0
PIXEL_CENTRE_PX = 0.5            # Mitsuba's film coordinate of pixel 0's centre
BLACK = (0.0, 0.0, 0.0)
WHITE = (1.0, 1.0, 1.0)
MASK_SEED_OFFSET = 1 << 16       # decorrelates the mask pass's samples from the RGB pass's


# One thread each: a task graph runs six such processes on 2 cores, and with the libraries' defaults (a thread per
# core each) they contend (lock-step spatula, 20 episodes: control step 0.71 / 1.00 s mean / p95 against 0.84 / 1.43 s).
NODE_COMPUTE_THREADS = 1
COMPUTE_THREADS_DESCRIPTION = ('torch and Dr.Jit CPU threads of this process (0: the libraries\' default, one per '
                               'core); one suits several nodes sharing few cores')


def check_compute_threads(count: int) -> None:
    if count < 0:
        raise ValueError(f'threads must be >= 0 (0: one per core), got {count}')


def set_compute_threads(count: int) -> None:
    """torch's and Dr.Jit's worker threads in this process; 0 leaves the libraries' defaults."""
    check_compute_threads(count)
    if count > 0:
        torch.set_num_threads(count)
        dr.set_thread_count(count)


@contextmanager
def render_threads(count: int) -> Iterator[None]:
    """Dr.Jit's worker threads (renders and their gradients) set to `count` inside the block, put back after.

    With one, a gradient's scattered sums add in a fixed order, so it repeats bit for bit.
    """
    before = dr.thread_count()
    dr.set_thread_count(count)
    try:
        yield
    finally:
        dr.set_thread_count(before)


@functools.cache
def mitsuba_variant() -> str:
    """Set (once) and return the first differentiable RGB variant that works here: CUDA, else LLVM."""
    for variant in PREFERRED_VARIANTS:
        if variant in mi.variants():
            try:
                mi.set_variant(variant)
                return variant
            except (ImportError, RuntimeError):
                continue
    raise RuntimeError(f'none of the Mitsuba variants {PREFERRED_VARIANTS} can be loaded')


# --- latents ------------------------------------------------------------------------------------

@dataclass
class ObjectParams:
    """Latents psi of one object: pose in the world, colour and (thread only) joint angles.

    translation (3,) m and rotation (3,) axis-angle rad give T_world_object; color (3,) is the
    flat RGB radiance in [0, 1]; joint_angles (n,) rad bend an articulated mesh (the thread, whose
    chain `thread_spec` describes). Any of them may require grad.
    """

    mesh: Mesh
    translation: torch.Tensor
    rotation: torch.Tensor
    color: torch.Tensor
    joint_angles: torch.Tensor | None = None
    thread_spec: ThreadSpec = field(default_factory=ThreadSpec)

    def world_vertices(self) -> torch.Tensor:
        """(N, 3) vertices in the world frame."""
        base = pose_matrix(self.translation, self.rotation)
        local = torch.as_tensor(self.mesh.vertices, dtype=base.dtype)
        if self.mesh.link_of_vertex is None:
            return local @ base[:3, :3].T + base[:3, 3]
        links = thread_link_poses(self.joint_angles, base, self.thread_spec)[self.mesh.link_of_vertex]
        return (links[:, :3, :3] @ local.unsqueeze(-1)).squeeze(-1) + links[:, :3, 3]


@dataclass(frozen=True)
class RenderOutput:
    """rgb (H, W, 3) in [0, 1], mask (H, W) coverage of the target in [0, 1], depth (H, W) metres
    along the optical axis at pixel centres (0 = no hit); all torch tensors with autograd."""

    rgb: torch.Tensor
    mask: torch.Tensor
    depth: torch.Tensor


def _sensor_dict(k: CameraIntrinsics) -> dict:
    """Pinhole sensor at the origin looking along +z of the optical frame (see module docstring)."""
    return {
        'type': 'perspective',
        'fov_axis': 'y',
        'fov': float(np.degrees(2.0 * np.arctan(0.5 * k.height / k.fy))),
        'principal_point_offset_x': (0.5 * k.width - k.cx - PIXEL_CENTRE_PX) / k.width,
        'principal_point_offset_y': (0.5 * k.height - k.cy - PIXEL_CENTRE_PX) / k.height,
        'near_clip': NEAR_CLIP_M,
        'far_clip': FAR_CLIP_M,
        # Optical frame (x right, y down) = Mitsuba camera frame (x left, y up) turned about z.
        'to_world': mi.ScalarTransform4f().look_at(origin=[0, 0, 0], target=[0, 0, 1], up=[0, -1, 0]),
        'film': {'type': 'hdrfilm', 'width': k.width, 'height': k.height, 'pixel_format': 'rgb',
                 'rfilter': {'type': 'box'}, 'sample_border': True},
        'sampler': {'type': 'independent', 'sample_count': DEFAULT_SPP},
    }


def _emitting_mesh(name: str, mesh: Mesh, rgb: tuple[float, float, float]) -> mi.Mesh:
    """A Mitsuba mesh that emits `rgb` from its outer side and reflects nothing (flat shading)."""
    props = mi.Properties()
    props['emitter'] = mi.load_dict({'type': 'area', 'radiance': {'type': 'rgb', 'value': list(rgb)}})
    props['bsdf'] = mi.load_dict({'type': 'diffuse', 'reflectance': {'type': 'rgb', 'value': list(BLACK)}})
    shape = mi.Mesh(name, len(mesh.vertices), len(mesh.faces), props=props)
    params = mi.traverse(shape)
    params['vertex_positions'] = mi.Float(mesh.vertices.ravel().astype(np.float32))
    params['faces'] = mi.UInt32(mesh.faces.ravel().astype(np.uint32))
    params.update()
    return shape


@dataclass
class _Scenes:
    """The RGB and mask scenes of one set of objects, their parameters and the face bookkeeping."""

    names: tuple[str, ...]
    rgb: mi.Scene
    mask: mi.Scene
    rgb_params: mi.SceneParameters
    mask_params: mi.SceneParameters
    shape_ids: np.ndarray            # Dr.Jit registry id of each object's shape in the RGB scene
    faces: torch.Tensor              # (M, 3) all faces, indices into the concatenated vertices
    face_offsets: np.ndarray         # first face of each object in `faces`


def _build_scenes(k: CameraIntrinsics, meshes: dict[str, Mesh]) -> _Scenes:
    names = tuple(meshes)
    scenes = []
    for _ in range(2):
        shapes = {name: _emitting_mesh(name, mesh, WHITE) for name, mesh in meshes.items()}
        scenes.append(mi.load_dict({'type': 'scene', 'sensor': _sensor_dict(k), **shapes}))
    rgb, mask = scenes
    shape_by_id = {shape.id(): shape for shape in rgb.shapes()}
    shape_ids = np.array([dr.reinterpret_array(mi.UInt32, mi.ShapePtr(shape_by_id[n]))[0] for n in names])
    vertex_offsets = np.cumsum([0] + [len(m.vertices) for m in meshes.values()])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes.values(), vertex_offsets)])
    face_offsets = np.cumsum([0] + [len(m.faces) for m in meshes.values()])[:-1]
    return _Scenes(names, rgb, mask, mi.traverse(rgb), mi.traverse(mask), shape_ids,
                   torch.as_tensor(faces, dtype=torch.long), face_offsets)


def _projective_integrator() -> mi.Integrator:
    """direct_projective limited to emission seen by camera rays (flat shading, silhouette gradients).

    max_depth = 1 skips emitter and BSDF sampling (nothing reflects); sppi = 0 skips the
    indirect-visibility gradient pass, which has nothing to do without reflections.
    """
    integrator = mi.load_dict({'type': 'direct_projective', 'sppi': 0})
    integrator.max_depth = 1
    return integrator


@dr.wrap(source='torch', target='drjit')
def _render_images(scenes: _Scenes, integrator: mi.Integrator, vertices: list, colors: list,
                   mask_rgb: list, spp: int, seed: int):
    """Write vertices (per object (N, 3), render frame) and colours into both scenes and render them.

    Returns (rgb (H, W, 3), mask (H, W)). Parameters get `tensor.array`, which keeps the AD link
    to torch (assigning the tensor itself would cut it, FACTS.md).
    """
    for name, vertex_tensor, color, mask_color in zip(scenes.names, vertices, colors, mask_rgb):
        scenes.rgb_params[f'{name}.vertex_positions'] = vertex_tensor.array
        scenes.mask_params[f'{name}.vertex_positions'] = vertex_tensor.array
        scenes.rgb_params[f'{name}.emitter.radiance.value'] = dr.unravel(mi.Color3f, color.array)
        scenes.mask_params[f'{name}.emitter.radiance.value'] = mi.Color3f(*mask_color)
    scenes.rgb_params.update()
    scenes.mask_params.update()
    rgb = mi.render(scenes.rgb, scenes.rgb_params, integrator=integrator, spp=spp, seed=seed)
    mask = mi.render(scenes.mask, scenes.mask_params, integrator=integrator, spp=spp,
                     seed=seed + MASK_SEED_OFFSET)
    return rgb, mask[:, :, 0]


# --- renderer -------------------------------------------------------------------------------------

class Renderer:
    """Differentiable renderer of a fixed set of objects seen through a pinhole camera.

    `render(objects, camera_pose_world, target)` -> RenderOutput with gradients w.r.t. every
    tensor in `objects` and w.r.t. `camera_pose_world` (T_world_optical, (4, 4)). The Mitsuba
    scenes are built on the first call and rebuilt only when the set of objects or meshes changes.
    """

    def __init__(self, intrinsics: CameraIntrinsics, spp: int = DEFAULT_SPP):
        self.variant = mitsuba_variant()
        self.intrinsics = intrinsics
        self.spp = spp
        self._integrator = _projective_integrator()
        self._scenes: _Scenes | None = None
        self._scene_key: tuple | None = None
        # Render frame = optical frame with x stretched by fx / fy (square pixels for Mitsuba).
        self._stretch = torch.tensor([intrinsics.fx / intrinsics.fy, 1.0, 1.0], dtype=torch.float64)
        self._pixel_rays = self._pixel_centre_rays()

    def _pixel_centre_rays(self) -> np.ndarray:
        """(H*W, 3) render-frame ray directions through the pixel centres, scaled to unit z."""
        k = self.intrinsics
        v, u = np.meshgrid(np.arange(k.height), np.arange(k.width), indexing='ij')
        return np.stack([(u - k.cx) / k.fy, (v - k.cy) / k.fy, np.ones_like(u, dtype=float)], -1).reshape(-1, 3)

    def _scenes_for(self, objects: dict[str, ObjectParams]) -> _Scenes:
        key = tuple((name, hash((obj.mesh.vertices.tobytes(), obj.mesh.faces.tobytes())))
                    for name, obj in objects.items())
        if key != self._scene_key:
            self._scenes = _build_scenes(self.intrinsics, {name: obj.mesh for name, obj in objects.items()})
            self._scene_key = key
        return self._scenes

    def camera_frame_vertices(self, objects: dict[str, ObjectParams], camera_pose_world: torch.Tensor,
                              principal_point: tuple[float, float] | None = None) -> list[torch.Tensor]:
        """Each object's vertices in the render frame: stretch @ shear @ T_camera_world(P) @ T_world_object(psi).

        The shear moves the image by the difference between `principal_point` (cx, cy) and the
        renderer's own: x += (cx - cx_own) z / fx keeps z, so depth and occlusion are unchanged
        and a window of a larger frame renders without rebuilding the Mitsuba sensor.
        """
        camera_world = invert_pose(camera_pose_world)
        shear = self._shear(principal_point, camera_world.dtype)
        out = []
        for obj in objects.values():
            world = obj.world_vertices().to(camera_world.dtype)
            camera = world @ camera_world[:3, :3].T + camera_world[:3, 3]
            if shear is not None:
                camera = camera @ shear.T
            out.append(camera * self._stretch.to(camera.dtype))
        return out

    def _shear(self, principal_point: tuple[float, float] | None, dtype: torch.dtype) -> torch.Tensor | None:
        if principal_point is None:
            return None
        k = self.intrinsics
        shift_x, shift_y = (principal_point[0] - k.cx) / k.fx, (principal_point[1] - k.cy) / k.fy
        return torch.tensor([[1.0, 0.0, shift_x], [0.0, 1.0, shift_y], [0.0, 0.0, 1.0]], dtype=dtype)

    def render(self, objects: dict[str, ObjectParams], camera_pose_world: torch.Tensor,
               target: str | None = None, seed: int = 0, principal_point: tuple[float, float] | None = None
               ) -> RenderOutput:
        """RGB, mask of `target` (zeros if None) and depth of the objects seen from `camera_pose_world`;
        with `principal_point`, as a camera of the same size and focal lengths centred there."""
        if target is not None and target not in objects:
            raise KeyError(f'target {target!r} is not among the objects {list(objects)}')
        scenes = self._scenes_for(objects)
        vertices = [v.float().contiguous()
                    for v in self.camera_frame_vertices(objects, camera_pose_world, principal_point)]
        colors = [obj.color.float().reshape(3) for obj in objects.values()]
        mask_rgb = [WHITE if name == target else BLACK for name in objects]
        rgb, mask = _render_images(scenes, self._integrator, vertices, colors, mask_rgb, self.spp, seed)
        depth, _ = self._depth(scenes, vertices)
        return RenderOutput(rgb, mask, depth)

    def raycast(self, objects: dict[str, ObjectParams], camera_pose_world: torch.Tensor,
                principal_point: tuple[float, float] | None = None) -> tuple[torch.Tensor, np.ndarray]:
        """Depth (H, W) with gradients, and the index into `objects` of the object seen at each
        pixel centre (-1: none); one ray per pixel, no images (a fraction of `render`'s cost)."""
        scenes = self._scenes_for(objects)
        vertices = [v.float().contiguous()
                    for v in self.camera_frame_vertices(objects, camera_pose_world, principal_point)]
        for name, vertex_tensor in zip(scenes.names, vertices):     # the rays must meet today's geometry
            scenes.rgb_params[f'{name}.vertex_positions'] = mi.Float(vertex_tensor.detach().numpy().ravel())
        scenes.rgb_params.update()
        depth, object_index = self._depth(scenes, vertices)
        return depth, object_index.reshape(self.intrinsics.height, self.intrinsics.width)

    def _depth(self, scenes: _Scenes, vertices: list[torch.Tensor]) -> tuple[torch.Tensor, np.ndarray]:
        """Depth (H, W) at pixel centres, Mitsuba finding the hit triangle and torch the distance to
        it, and the hit object's index per pixel (H * W,)."""
        k = self.intrinsics
        object_index, primitive = self._hit_triangles(scenes)
        hit = object_index >= 0
        face_index = torch.as_tensor(scenes.face_offsets[object_index[hit]] + primitive[hit], dtype=torch.long)
        triangles = torch.cat(vertices)[scenes.faces[face_index]]                 # (n, 3 corners, 3)
        normal = torch.linalg.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
        rays = torch.as_tensor(self._pixel_rays[hit], dtype=triangles.dtype)
        # Ray o + t d with o = 0 and d_z = 1 meets the plane n . (x - v0) = 0 at depth z = t.
        z = (normal * triangles[:, 0]).sum(-1) / (normal * rays).sum(-1)
        depth = torch.zeros(k.height * k.width, dtype=z.dtype)
        depth = depth.index_put((torch.as_tensor(np.flatnonzero(hit)),), z)
        return depth.reshape(k.height, k.width), object_index

    def _hit_triangles(self, scenes: _Scenes) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel centre: index of the object hit (-1 = none) and the triangle within it."""
        rays = self._pixel_rays
        with dr.suspend_grad():
            ray = mi.Ray3f(mi.Point3f(0.0, 0.0, 0.0),
                           dr.normalize(mi.Vector3f(*(rays[:, i].astype(np.float32) for i in range(3)))))
            ray.maxt = FAR_CLIP_M
            hits = scenes.rgb.ray_intersect_preliminary(ray)
            valid = np.array(hits.is_valid())
            shape_id = np.array(dr.reinterpret_array(mi.UInt32, hits.shape))
            primitive = np.array(hits.prim_index).astype(np.int64)
        object_index = np.full(len(rays), -1, dtype=np.int64)
        for index, registry_id in enumerate(scenes.shape_ids):
            object_index[valid & (shape_id == registry_id)] = index
        return object_index, primitive


# --- placements -> latents --------------------------------------------------------------------------

def object_params(mesh: Mesh, position, quaternion, rgb, joint_angles=None, requires_grad: bool = False,
                  thread_spec: ThreadSpec = ThreadSpec()) -> ObjectParams:
    """Latents (float64 leaves) from a PyBullet-style pose (position m, quaternion xyzw) and colour."""
    def leaf(values) -> torch.Tensor:
        return torch.tensor(np.asarray(values, dtype=float), dtype=torch.float64, requires_grad=requires_grad)
    angles = None if joint_angles is None else leaf(joint_angles)
    return ObjectParams(mesh, leaf(position), leaf(quat_to_axis_angle(np.asarray(quaternion, dtype=float))),
                        leaf(rgb), angles, thread_spec)


def objects_from_placements(placements: dict[str, Placement], specs: SceneObjects = SceneObjects(),
                            requires_grad: bool = False) -> dict[str, ObjectParams]:
    """Latents of the table and of every placed object, coloured as their specs say."""
    objects = {'table': object_params(object_mesh('table', specs), *table_pose(specs.table),
                                      object_rgb('table', specs), requires_grad=requires_grad)}
    for name, placement in placements.items():
        objects[name] = object_params(object_mesh(name, specs), placement.pose.position, placement.pose.quaternion,
                                      object_rgb(name, specs), placement.joint_angles, requires_grad, specs.thread)
    return objects
