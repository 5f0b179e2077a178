"""Real2Sim tracking: windows of the camera frame, the hand in M, and updates that pull a perturbed prediction back."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose, look_at
from samrl_description.tasks import nominal_scene, tool_pose
from samrl_model.real2sim.bench import errors
from samrl_model.real2sim.track import RobotState, TrackConfig, Tracker
from samrl_model.real2sim.window import Window, binning_for, crop, window_around
from samrl_model.render import Renderer, objects_from_placements
from samrl_model.robot import HAND_PART_NAMES, hand_objects
from samrl_model.rotations import pose_matrix_from_quat
from samrl_model.sim_adapter import objects_from_world, snapshot
from samrl_sim.world import World

FRAME = CameraIntrinsics.d435(320, 240)
VIEW = look_at(np.array([0.85, -0.25, 0.45]), np.array([0.55, 0.1, 0.05]))


def _camera(pose: Pose) -> torch.Tensor:
    return pose_matrix_from_quat(pose.position, pose.quaternion)


def test_window_intrinsics_render_the_same_pixels_as_the_whole_frame():
    """A window rendered through the principal-point shear equals the crop of the whole frame's render."""
    objects = objects_from_placements(nominal_scene('peg_insertion'))
    whole = Renderer(FRAME, spp=16).render(objects, _camera(VIEW), target='hole_block')
    window = window_around(FRAME, (170.0, 130.0), 1, (64, 48))
    k = window.intrinsics(FRAME)
    part = Renderer(window.renderer_intrinsics(FRAME), spp=16).render(objects, _camera(VIEW), target='hole_block',
                                                                      principal_point=(k.cx, k.cy))
    rows, columns = slice(window.y0, window.y0 + 48), slice(window.x0, window.x0 + 64)
    assert float((whole.mask[rows, columns] - part.mask).abs().mean()) < 0.01
    assert part.mask.sum() > 100                                          # the hole block is in the window
    both = (whole.depth[rows, columns] > 0) & (part.depth > 0)
    assert float((whole.depth[rows, columns] - part.depth).abs()[both].median()) < 1e-5


def test_binned_window_crops_the_observation_consistently():
    from samrl_model.real2sim.observation import Observation
    rgb = np.random.default_rng(0).random((240, 320, 3)).astype(np.float32)
    depth = np.arange(240 * 320, dtype=np.float32).reshape(240, 320)
    mask = np.zeros((240, 320), dtype=bool)
    mask[30:60, 90:120] = True
    seen = crop(Observation(rgb, depth, mask, FRAME, VIEW, 'hole_block'), Window(10, 5, 40, 30, 3))
    assert seen.rgb.shape == (30, 40, 3) and np.allclose(seen.rgb[0, 0], rgb[15:18, 30:33].mean(axis=(0, 1)))
    assert seen.depth_m[0, 0] == depth[16, 31]                          # the block's centre pixel
    assert seen.mask.sum() == 100 and seen.intrinsics.fx == pytest.approx(FRAME.fx / 3)
    with pytest.raises(ValueError, match='odd'):
        crop(Observation(rgb, depth, mask, FRAME, VIEW, 'hole_block'), Window(0, 0, 10, 10, 2))
    assert binning_for(10.0) == 1 and binning_for(300.0) == 5


def test_the_hand_hides_the_pixels_it_covers_from_the_target_mask():
    objects = objects_from_placements(nominal_scene('peg_insertion'))
    block = objects['hole_block'].translation.detach().numpy()
    camera = look_at(block + np.array([0.0, 0.0, 0.45]), block, up=np.array([1.0, 0.0, 0.0]))
    renderer = Renderer(FRAME, spp=8)
    alone = renderer.render(objects, _camera(camera), target='hole_block')
    hand = hand_objects(tool_pose(block + np.array([0.0, 0.0, 0.2]), 0.0), 0.04)
    assert set(hand) == set(HAND_PART_NAMES)
    behind = renderer.render({**objects, **hand}, _camera(camera), target='hole_block')
    lost = float((alone.mask - behind.mask).clamp_min(0).sum())
    assert lost > 200 and float((behind.mask - alone.mask).clamp_min(0).sum()) < 10


@pytest.fixture(scope='module')
def peg_world():
    world = World('peg_insertion')
    yield world
    world.close()


def test_tracking_pulls_a_perturbed_prediction_back_and_follows_the_held_peg(peg_world):
    peg_world.reset(seed=3)
    frame = snapshot(peg_world, 'hole_block', 320, 240)
    truth = objects_from_world(peg_world)[0]
    off = Pose(np.array([0.004, -0.003, 0.0]), np.array([0.0, 0.0, np.sin(0.02), np.cos(0.02)]))
    perturbed = truth['hole_block']
    moved = Pose(perturbed.translation.numpy(), _quat(perturbed.rotation.numpy())).compose(off)   # about itself
    start = replace(perturbed, translation=torch.as_tensor(moved.position),
                    rotation=torch.as_tensor(_rotvec(moved.quaternion)))
    before = errors(start, truth['hole_block'])['translation_mm']
    tracker = Tracker('peg_insertion', TrackConfig(first_iterations=15, time_budget_s=5.0))
    robot = RobotState(peg_world.tcp_pose(), peg_world.panda.gripper_width())
    first = tracker.start(frame, {**truth, 'hole_block': start}, robot)
    after = errors(first.objects['hole_block'], truth['hole_block'])['translation_mm']
    assert first.action == 'coarse' and first.iterations > 1 and after < 0.5 * before, (before, after)
    from samrl_sim.commands import EeDeltaCommand
    peg_world.step(EeDeltaCommand((0.01, 0.0, -0.01), (0.0, 0.0, 0.0), peg_world.task.gripper_width_m))
    step = tracker.step(snapshot(peg_world, 'hole_block', 320, 240),
                        RobotState(peg_world.tcp_pose(), peg_world.panda.gripper_width()))
    peg_truth = objects_from_world(peg_world)[0]['peg']
    assert errors(step.objects['peg'], peg_truth)['translation_mm'] < 1.0      # carried with the tool
    assert errors(step.objects['hole_block'], truth['hole_block'])['translation_mm'] < 0.5 * before
    assert step.stages.seconds and step.wall_time_s > 0


def test_a_single_view_fit_recovers_a_far_start_through_the_coarse_model(peg_world):
    """fit_view: a start 2 cm / 10 deg off disagrees with the view, so the coarse fit to the view is refitted."""
    from samrl_model.real2sim.bench import perturb
    peg_world.reset(seed=5)
    frame = snapshot(peg_world, 'hole_block', 320, 240)
    truth = objects_from_world(peg_world)[0]
    start = perturb(truth['hole_block'], np.random.default_rng(5))
    tracker = Tracker('peg_insertion', TrackConfig(first_iterations=10, time_budget_s=5.0))
    fit = tracker.fit_view(frame, {**truth, 'hole_block': start},
                           RobotState(peg_world.tcp_pose(), peg_world.panda.gripper_width()))
    error = errors(fit.objects['hole_block'], truth['hole_block'], np.pi / 2)
    assert error['translation_mm'] < 1.0 and error['rotation_sym_deg'] < 0.5, error
    assert fit.action == 'kept' and fit.iou >= 0.9      # the coarse fit agrees with the view: no refit


def _quat(rotvec):
    from samrl_description.geometry import axis_angle_to_quat
    return axis_angle_to_quat(rotvec)


def _rotvec(quaternion):
    from samrl_description.geometry import quat_to_axis_angle
    return np.asarray(quat_to_axis_angle(quaternion), dtype=float)
