"""Point-to-plane alignment of a rigid target with the camera's depth (real2sim/align.py)."""
import numpy as np
import pytest

from samrl_description.geometry import Pose, axis_angle_to_quat
from samrl_model.real2sim.align import MIN_POINTS, align, camera_points
from samrl_model.real2sim.bench import errors
from samrl_model.real2sim.track import Tracker, moved, pose_of
from samrl_model.sim_adapter import objects_from_world, snapshot
from samrl_sim.world import World

PANCAKE_YAW_PERIOD_RAD = 2 * np.pi / 32      # the drawn prism's symmetry


@pytest.fixture(scope='module')
def pancake_frame():
    world = World('spatula_flipping')
    try:
        world.reset(seed=7)
        yield snapshot(world, 'pancake', 320, 240), objects_from_world(world)[0]['pancake']
    finally:
        world.close()


def _turned_about_centre(params, rotvec, shift):
    centre = pose_of(params).position
    turn = Pose(np.zeros(3), axis_angle_to_quat(rotvec))
    motion = Pose(centre + np.asarray(shift), np.array([0, 0, 0, 1.0])).compose(turn).compose(
        Pose(-centre, np.array([0, 0, 0, 1.0])))
    return moved(params, motion)


def test_icp_takes_a_tilted_pancake_back_onto_the_camera_depth(pancake_frame):
    frame, truth = pancake_frame
    start = _turned_about_centre(truth, np.radians([4.0, -3.0, 0.0]), [0.002, -0.001, 0.002])
    tracker = Tracker('spatula_flipping')
    tracker.objects = {'pancake': start}
    window, rng = tracker.window(frame), np.random.default_rng(0)
    fit = align(camera_points(frame, window, rng), start, frame.camera_pose.position, rng)
    assert fit is not None and fit.fitness > 0.9
    before = errors(start, truth, PANCAKE_YAW_PERIOD_RAD)
    after = errors(moved(start, fit.motion), truth, PANCAKE_YAW_PERIOD_RAD)
    assert before['rotation_sym_deg'] > 4.0 and after['rotation_sym_deg'] < 0.5, (before, after)
    assert after['translation_mm'] < 0.5 < 2.0 < before['translation_mm'], (before, after)


def test_too_few_camera_points_give_no_alignment(pancake_frame):
    frame, truth = pancake_frame
    rng = np.random.default_rng(0)
    points = np.tile(truth.translation.numpy(), (MIN_POINTS - 1, 1))
    assert align(points, truth, frame.camera_pose.position, rng) is None
