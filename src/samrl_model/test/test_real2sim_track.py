"""Real2Sim tracking: windows of the camera frame, the hand in M, and updates that pull a perturbed prediction back."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose, look_at
from samrl_description.tasks import grasp_pose, nominal_scene, tool_pose
from samrl_model.real2sim.bench import errors
from samrl_model.real2sim.track import RobotState, TrackConfig, Tracker, blade_edge
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
    assert step.prediction == 'left'          # the hole block stays where it was; the tool moved 14 mm
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


def _spatula_tracker(turn_deg: float):
    """A tracker of spatula flipping with the pancake on the blade by its free edge, and the robot
    after its tool turned by `turn_deg` about the blade's edge direction."""
    tracker = Tracker('spatula_flipping')
    objects = {name: p for name, p in objects_from_placements(nominal_scene('spatula_flipping')).items()
               if name not in HAND_PART_NAMES}
    blade = Pose(objects['spatula'].translation.numpy(), _quat(objects['spatula'].rotation.numpy()))
    tcp = blade.compose(grasp_pose('spatula_flipping').inverse())
    tracker.objects, tracker.robot = objects, RobotState(tcp, 0.01)
    edge, direction = blade_edge('spatula')
    pivot, axis = blade.apply(edge), blade.rotation @ direction
    on_blade = blade.apply(edge - np.array([0.04, 0.0, -0.006]))                  # 4 cm in from the edge
    tracker.objects['pancake'] = replace(objects['pancake'], translation=torch.as_tensor(on_blade))
    turned = Pose(np.zeros(3), _quat(np.radians(turn_deg) * axis))
    return tracker, RobotState(turned.compose(tcp), 0.01), pivot, axis


def test_a_pancake_by_a_turning_blades_edge_is_also_predicted_tipping_over_it():
    tracker, robot, _, axis = _spatula_tracker(turn_deg=5.0)
    hypotheses = tracker.predict(robot)
    carried = hypotheses[0 if tracker.rides('pancake') else 1]['pancake']
    tips = [h['pancake'] for h in hypotheses[2:]]
    assert len(tips) >= 4
    spatula = hypotheses[0]['spatula']      # the blade after the turn: its edge turned with it
    pivot = Pose(spatula.translation.numpy(), _quat(spatula.rotation.numpy())).apply(blade_edge('spatula')[0])
    radius = np.linalg.norm(carried.translation.numpy() - pivot)
    turns = []
    for tip in tips:          # each is the carried pancake turned further about the edge, the way the blade turned
        assert np.linalg.norm(tip.translation.numpy() - pivot) == pytest.approx(radius, abs=1e-9)
        extra = Rotation.from_rotvec(tip.rotation.numpy()) * Rotation.from_rotvec(carried.rotation.numpy()).inv()
        turns.append(float(extra.as_rotvec() @ axis))
    assert all(t > 0 for t in turns) and turns == sorted(turns)
    assert [tracker._labels[id(h['pancake'])] for h in hypotheses[:2]] == (
        ['carried', 'left'] if tracker.rides('pancake') else ['left', 'carried'])


def test_no_tipping_is_predicted_for_a_target_not_on_a_blade_or_before_the_blade_turned():
    tracker, robot, _, _ = _spatula_tracker(turn_deg=0.0)
    assert len(tracker.predict(robot)) == 2          # carried and left: the blade has not turned yet
    peg = Tracker('peg_insertion')
    peg.objects = {name: p for name, p in objects_from_placements(nominal_scene('peg_insertion')).items()
                   if name not in HAND_PART_NAMES}
    peg.robot = RobotState(Pose(np.array([0.5, 0.0, 0.2]), np.array([1.0, 0.0, 0.0, 0.0])), 0.02)
    turned = Pose(np.zeros(3), _quat(np.array([0.0, 0.1, 0.0]))).compose(peg.robot.tcp)
    assert len(peg.predict(RobotState(turned, 0.02))) == 2


def test_m_draws_the_pancake_the_world_draws():
    """At the true pose M's ray-cast pancake covers the camera's pixels and depths: the world draws the
    prism M renders (PyBullet's own cylinder came out 1 mm larger, so every fit was pulled off)."""
    world = World('spatula_flipping')
    try:
        world.reset(seed=5)
        frame, truth = snapshot(world, 'pancake', 320, 240), objects_from_world(world)[0]
        tracker = Tracker('spatula_flipping')
        tracker.objects, tracker.robot = truth, RobotState(world.tcp_pose(), world.panda.gripper_width())
        window = tracker.window(frame)
        seen = crop(frame, window)
        hand = hand_objects(tracker.robot.tcp, tracker.robot.opening_m)
        real, model, depth = tracker._masks(seen, {**truth, **hand}, _camera(frame.camera_pose),
                                            tracker._renderer(window, frame))
    finally:
        world.close()
    both = (real & model).numpy() & (seen.depth_m > 0)
    assert both.sum() > 50 and both.sum() / (real | model).sum().item() > 0.97
    assert np.median(np.abs(depth.numpy() - seen.depth_m)[both]) < 2e-4       # m
