"""Renderer: pinhole convention, agreement with PyBullet, gradients vs finite differences, a pose fit."""
from __future__ import annotations

import numpy as np
import pybullet as pb
import pytest
import torch

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import look_at, matrix_to_quat, quat_to_axis_angle
from samrl_model.meshes import box_mesh
from samrl_model.render import ObjectParams, Renderer
from samrl_model.render_bench import bench_render
from samrl_model.rotations import axis_angle_matrix, pose_matrix, pose_matrix_from_quat
from samrl_model.sim_adapter import objects_from_world
from samrl_sim.bodies import BoxPart
from samrl_sim.world import World

F64 = torch.float64
BOX_HALF_M = (0.02, 0.03, 0.015)
BOX_RGB = (0.2, 0.5, 0.9)
# Non-square pixels and an off-centre principal point exercise the whole camera mapping.
ODD_CAMERA = CameraIntrinsics(fx=66.0, fy=60.0, cx=30.2, cy=25.7, width=64, height=48)
SMALL_CAMERA = CameraIntrinsics(fx=60.0, fy=60.0, cx=23.5, cy=23.5, width=48, height=48)
CAMERA_EYE_M, CAMERA_TARGET_M = (0.6, -0.3, 0.5), (0.2, 0.1, 0.0)
BOX_IN_CAMERA_M = (0.01, -0.005, 0.40)      # box centre in the optical frame, box axes = optical axes
PIXEL_TOLERANCE_PX = 1.0
DEPTH_TOLERANCE_M = 1e-3
FD_RELATIVE_TOLERANCE = 0.3
ADAM_CAMERA = CameraIntrinsics(fx=110.0, fy=110.0, cx=23.5, cy=23.5, width=48, height=48)
ADAM_ITERATIONS = 30
PERTURBATION_M = 0.01
PERTURBATION_DEG = 5.0
LR_TRANSLATION_M = 1e-3
LR_ROTATION_RAD = 0.01


def world_camera() -> torch.Tensor:
    pose = look_at(CAMERA_EYE_M, CAMERA_TARGET_M)
    return pose_matrix_from_quat(pose.position, pose.quaternion)


def box_in_front(camera: torch.Tensor, offset_m=(0.0, 0.0, 0.0), rotvec=(0.0, 0.0, 0.0),
                 requires_grad: bool = False) -> ObjectParams:
    """A box whose pose is BOX_IN_CAMERA_M (+ offset) and `rotvec` in the camera frame, as world latents."""
    in_camera = pose_matrix(torch.tensor(BOX_IN_CAMERA_M, dtype=F64) + torch.tensor(offset_m, dtype=F64),
                            torch.tensor(rotvec, dtype=F64))
    world = (camera @ in_camera).numpy()
    translation = torch.tensor(world[:3, 3], requires_grad=requires_grad)
    rotation = torch.tensor(_rotvec_of(world[:3, :3]), requires_grad=requires_grad)
    return ObjectParams(box_mesh(BoxPart(BOX_HALF_M, (0.0, 0.0, 0.0))), translation, rotation,
                        torch.tensor(BOX_RGB, dtype=F64, requires_grad=requires_grad))


def _rotvec_of(matrix: np.ndarray) -> np.ndarray:
    return quat_to_axis_angle(matrix_to_quat(matrix))


def interval_coverage(low: float, high: float, count: int) -> np.ndarray:
    """Fraction of each pixel [i - 0.5, i + 0.5] that [low, high] covers."""
    centres = np.arange(count)
    return np.clip(np.minimum(centres + 0.5, high) - np.maximum(centres - 0.5, low), 0.0, 1.0)


def test_box_silhouette_and_depth_follow_the_pinhole_model():
    k = ODD_CAMERA
    camera = world_camera()
    out = Renderer(k, spp=64).render({'box': box_in_front(camera)}, camera, target='box')
    x, y, z = BOX_IN_CAMERA_M
    hx, hy, hz = BOX_HALF_M
    front = z - hz                               # the box straddles the axis: only its front face shows
    u = (k.fx * (x - hx) / front + k.cx, k.fx * (x + hx) / front + k.cx)
    v = (k.fy * (y - hy) / front + k.cy, k.fy * (y + hy) / front + k.cy)
    expected = np.outer(interval_coverage(*v, k.height), interval_coverage(*u, k.width))
    mask = out.mask.detach().numpy()
    rows, cols = np.nonzero(mask > 0.5)
    assert abs(cols.min() - round(u[0])) <= PIXEL_TOLERANCE_PX and abs(cols.max() - round(u[1])) <= PIXEL_TOLERANCE_PX
    assert abs(rows.min() - round(v[0])) <= PIXEL_TOLERANCE_PX and abs(rows.max() - round(v[1])) <= PIXEL_TOLERANCE_PX
    total = mask.sum()
    centroid = np.array([(mask * np.arange(k.width)).sum(), (mask[:, :] * np.arange(k.height)[:, None]).sum()]) / total
    assert np.allclose(centroid, [np.mean(u), np.mean(v)], atol=0.1)        # sub-pixel agreement
    assert total == pytest.approx(expected.sum(), rel=0.02)
    assert np.abs(mask - expected).max() < 0.3                              # Monte Carlo noise at edges
    assert np.allclose(out.rgb.detach().numpy()[mask == 1.0], BOX_RGB, atol=1e-6)
    depth = out.depth.detach().numpy()
    assert np.allclose(depth[expected == 1.0], front, atol=DEPTH_TOLERANCE_M)
    assert np.all(depth[expected == 0.0] == 0.0)


def test_depth_gradient_is_one_per_pixel_along_the_optical_axis():
    camera = torch.eye(4, dtype=F64)
    box = box_in_front(camera, requires_grad=True)
    out = Renderer(SMALL_CAMERA, spp=4).render({'box': box}, camera, target='box')
    out.depth.sum().backward()
    hits = int((out.depth > 0).sum())
    assert box.translation.grad.numpy() == pytest.approx([0.0, 0.0, hits], abs=1e-3 * hits)


def test_color_gradient_is_the_covered_area():
    camera = torch.eye(4, dtype=F64)
    box = box_in_front(camera, requires_grad=True)
    out = Renderer(SMALL_CAMERA, spp=16).render({'box': box}, camera, target='box')
    out.rgb[..., 1].sum().backward()
    covered = float(out.rgb[..., 1].detach().sum()) / BOX_RGB[1]
    # The gradient pass draws its own samples (Mitsuba's seed_grad): its coverage differs by noise.
    assert box.color.grad.numpy() == pytest.approx([0.0, covered, 0.0], rel=0.01, abs=1e-6)


@pytest.fixture(scope='module')
def peg_world():
    world = World('peg_insertion')
    world.reset(seed=0)
    # The model renders the task objects and the table; park the Panda out of the camera's view.
    pb.resetBasePositionAndOrientation(world.panda.body, [10.0, 10.0, 10.0], [0, 0, 0, 1],
                                       physicsClientId=world.client)
    yield world
    world.close()


def test_agrees_with_pybullet_tiny_renderer(peg_world):
    image = peg_world.render(64, 64)
    objects, camera = objects_from_world(peg_world)
    out = Renderer(peg_world.camera_intrinsics(64, 64), spp=16).render(objects, camera, target='hole_block')
    ours = out.mask.detach().numpy() > 0.5
    theirs = image.seg == peg_world.segmentation_ids()['hole_block']
    assert theirs.sum() > 50
    assert (ours & theirs).sum() / (ours | theirs).sum() > 0.9
    depth = out.depth.detach().numpy()
    both = (depth > 0) & (image.depth_m > 0)
    assert ((depth > 0) != (image.depth_m > 0)).mean() < 0.01
    assert np.median(np.abs(depth - image.depth_m)[both]) < 0.002


def smooth_weights(size: tuple[int, int], seed: int) -> torch.Tensor:
    """A fixed low-frequency random field: sum(weights * image) is a smooth, generic loss."""
    coarse = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return torch.nn.functional.interpolate(coarse, size=size, mode='bicubic', align_corners=True)[0, 0]


GRADIENT_CASES = [('object translation x', 'translation', 0, 1e-3),
                  ('object translation y', 'translation', 1, 1e-3),
                  ('object rotation', 'rotation', 0, 0.04),
                  ('camera translation x', 'camera_t', 0, 1e-3),
                  ('camera rotation', 'camera_r', 0, 0.02)]


@pytest.mark.parametrize('label,latent,index,step', GRADIENT_CASES, ids=[c[0] for c in GRADIENT_CASES])
def test_gradients_match_central_differences(label, latent, index, step):
    k = SMALL_CAMERA
    weights = smooth_weights((k.height, k.width), seed=0)
    renderers = {'ad': Renderer(k, spp=16), 'fd': Renderer(k, spp=256)}
    base = {'translation': torch.tensor([0.01, -0.005, 0.4], dtype=F64),
            'rotation': torch.tensor([0.3, 0.4, 0.2], dtype=F64),
            'camera_t': torch.tensor([0.0, 0.01, -0.02], dtype=F64),
            'camera_r': torch.tensor([0.05, -0.1, 0.02], dtype=F64)}

    def loss(latents: dict, which: str) -> torch.Tensor:
        box = ObjectParams(box_mesh(BoxPart(BOX_HALF_M, (0.0, 0.0, 0.0))), latents['translation'],
                           latents['rotation'], torch.tensor(BOX_RGB, dtype=F64))
        camera = pose_matrix(latents['camera_t'], latents['camera_r'])
        out = renderers[which].render({'box': box}, camera, target='box')
        return (weights * (out.mask + out.rgb.sum(-1))).sum()

    leaves = {name: value.clone().requires_grad_() for name, value in base.items()}
    loss(leaves, 'ad').backward()
    analytic = float(leaves[latent].grad[index])
    shifted = []
    for sign in (1.0, -1.0):
        latents = {name: value.clone() for name, value in base.items()}
        latents[latent][index] += sign * step
        shifted.append(float(loss(latents, 'fd')))
    numeric = (shifted[0] - shifted[1]) / (2.0 * step)
    assert np.sign(analytic) == np.sign(numeric), (label, analytic, numeric)
    assert abs(analytic - numeric) < FD_RELATIVE_TOLERANCE * abs(numeric), (label, analytic, numeric)


def rotation_error_deg(rotvec: torch.Tensor, reference: torch.Tensor) -> float:
    """Geodesic angle (deg) between two axis-angle rotations."""
    relative = axis_angle_matrix(rotvec.detach()) @ axis_angle_matrix(reference).T
    return float(np.degrees(np.arccos(np.clip((float(relative.trace()) - 1.0) / 2.0, -1.0, 1.0))))


def test_adam_recovers_a_perturbed_box_pose():
    """Mitsuba-tutorial loop: apply latents, render, loss, backward, step (RGB + mask L1)."""
    renderer = Renderer(ADAM_CAMERA, spp=8)
    camera = torch.eye(4, dtype=F64)
    true_t, true_r = torch.tensor([0.005, -0.003, 0.30], dtype=F64), torch.tensor([0.4, 0.5, 0.1], dtype=F64)
    mesh = box_mesh(BoxPart(BOX_HALF_M, (0.0, 0.0, 0.0)))
    color = torch.tensor(BOX_RGB, dtype=F64)
    with torch.no_grad():
        reference = renderer.render({'box': ObjectParams(mesh, true_t, true_r, color)}, camera, 'box', seed=1000)
    direction = torch.tensor([0.6, -0.6, 0.53], dtype=F64)
    translation = (true_t + PERTURBATION_M * direction / direction.norm()).requires_grad_()
    rotation = (true_r + np.radians(PERTURBATION_DEG) * torch.tensor([0.0, 0.6, 0.8], dtype=F64)).requires_grad_()
    optimizer = torch.optim.Adam([{'params': [translation], 'lr': LR_TRANSLATION_M},
                                  {'params': [rotation], 'lr': LR_ROTATION_RAD}])
    start = (float((translation.detach() - true_t).norm()), rotation_error_deg(rotation, true_r))
    losses = []
    for iteration in range(ADAM_ITERATIONS):
        optimizer.zero_grad()
        # Apply latents and render (a fresh seed each iteration decorrelates the gradients).
        out = renderer.render({'box': ObjectParams(mesh, translation, rotation, color)}, camera, 'box',
                              seed=iteration)
        loss = (out.rgb - reference.rgb).abs().mean() + (out.mask - reference.mask).abs().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    end = (float((translation.detach() - true_t).norm()), rotation_error_deg(rotation, true_r))
    assert end[0] < 0.5 * start[0] and end[1] < 0.5 * start[1], (start, end, losses)


def test_bench_render_reports_positive_timings():
    result = bench_render(size=32, repeats=2)
    assert {'forward_ms', 'forward_backward_ms', 'pybullet_render_ms'} <= set(result)
    assert all(result[key] > 0.0 for key in ('forward_ms', 'forward_backward_ms', 'pybullet_render_ms'))


def test_compute_threads_set_torch_and_drjit():
    import drjit as dr

    from samrl_model.render import render_threads, set_compute_threads
    torch_before, drjit_before = torch.get_num_threads(), dr.thread_count()
    try:
        set_compute_threads(0)                   # the libraries' defaults are left alone
        assert (torch.get_num_threads(), dr.thread_count()) == (torch_before, drjit_before)
        set_compute_threads(1)
        assert (torch.get_num_threads(), dr.thread_count()) == (1, 1)
        with render_threads(3):
            assert dr.thread_count() == 3
        assert dr.thread_count() == 1
    finally:
        torch.set_num_threads(torch_before)
        dr.set_thread_count(drjit_before)
