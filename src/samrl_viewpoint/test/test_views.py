"""The view distribution: poses equal look_at, boxes hold the default views, samples are reachable and see the work."""
import math

import numpy as np
import pybullet as pb
import pytest
import torch

from samrl_description.camera import CameraIntrinsics
from samrl_description.camera_arm_kinematics import HOME_JOINTS_RAD, camera_arm_base_pose
from samrl_description.default_views import DEFAULT_VIEWS
from samrl_description.geometry import look_at
from samrl_description.tasks import TASK_NAMES
from samrl_sim.camera_arm import CameraArm
from samrl_sim.commands import CameraPoseGoal
from samrl_sim.safety import CameraLimits, validate_camera_goal
from samrl_sim.world import WorldConfig
from samrl_viewpoint.views import (
    CAMERA_WORKSPACE_LOWER_M,
    CAMERA_WORKSPACE_UPPER_M,
    DTYPE,
    VIEW_BOXES,
    ViewBox,
    ViewSpace,
    camera_pose,
    default_view_params,
    eye_position,
    params_of_look_at,
    view_pose,
)

SAMPLES = 25
POLICY_CAMERA = CameraIntrinsics.d435(84, 84)      # the networks' input size
POSE_TOLERANCE = 1e-12


def _random_params(rng: np.random.Generator, box: ViewBox) -> torch.Tensor:
    return torch.tensor(rng.uniform(box.lower.numpy(), box.upper.numpy()), dtype=DTYPE)


def test_camera_pose_is_look_at_and_inverts_params_of_look_at():
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = _random_params(rng, VIEW_BOXES['peg_insertion'])
        eye, target = eye_position(params).numpy(), params[3:].numpy()
        assert np.abs(camera_pose(params).numpy() - look_at(eye, target).as_matrix()).max() < POSE_TOLERANCE
        assert torch.allclose(params_of_look_at(eye, target), params, atol=POSE_TOLERANCE)
    batch = torch.stack([_random_params(rng, VIEW_BOXES['needle_threading']) for _ in range(3)])
    assert torch.allclose(camera_pose(batch)[1], camera_pose(batch[1]))


def test_camera_pose_is_differentiable_in_every_parameter():
    params = default_view_params('needle_threading').requires_grad_(True)
    assert torch.autograd.gradcheck(camera_pose, (params,))


@pytest.mark.parametrize('task', TASK_NAMES)
def test_the_default_view_is_a_point_of_the_box(task, view_spaces):
    params = default_view_params(task)
    assert VIEW_BOXES[task].contains(params)
    assert view_spaces[task].is_reachable(params)
    assert view_pose(params).is_close(look_at(*DEFAULT_VIEWS[task]), atol=1e-9)


def test_the_workspace_centre_stays_in_the_image_over_each_box():
    half_fov_rad = math.radians(min(POLICY_CAMERA.fov_deg())) / 2
    for box in VIEW_BOXES.values():
        assert box.worst_off_axis_rad() < half_fov_rad


@pytest.mark.parametrize('task', TASK_NAMES)
def test_samples_are_reachable_and_look_at_the_workspace(task, view_spaces):
    views = view_spaces[task]
    samples = views.sample(np.random.default_rng(7), SAMPLES)
    assert samples.shape == (SAMPLES, 6) and samples.dtype == DTYPE
    centre = np.asarray(views.box.look_at_centre_m)
    for params in samples:
        assert views.box.contains(params) and views.solve(params).reachable
        in_camera = view_pose(params).inverse().apply(centre)
        u, v = POLICY_CAMERA.project(in_camera)
        assert in_camera[2] > 0 and 0 <= u <= POLICY_CAMERA.width and 0 <= v <= POLICY_CAMERA.height
    spread = samples.std(0) / (views.box.upper - views.box.lower)
    assert torch.all(spread > 0.15)                 # uniform over the box, not clustered at the default view


def test_samples_are_accepted_and_reached_by_the_world(view_spaces):
    """Same camera workspace as the world's, and every sampled view passes its checks and its IK."""
    assert CameraLimits().workspace.lower == CAMERA_WORKSPACE_LOWER_M
    assert CameraLimits().workspace.upper == CAMERA_WORKSPACE_UPPER_M
    limits = WorldConfig().camera_limits()
    client = pb.connect(pb.DIRECT)
    try:
        arm = CameraArm(client, camera_arm_base_pose())
        for task, views in view_spaces.items():
            for params in views.sample(np.random.default_rng(11), 8):
                pose = view_pose(params)
                assert validate_camera_goal(CameraPoseGoal(tuple(pose.position), tuple(pose.quaternion)), limits).ok
                arm.set_joints(np.array(HOME_JOINTS_RAD))
                assert arm.solve(pose).reachable, (task, params.tolist())
    finally:
        pb.disconnect(client)


def test_sampling_is_seeded(view_spaces):
    views = view_spaces['spatula_flipping']
    assert torch.equal(views.sample(np.random.default_rng(3), 4), views.sample(np.random.default_rng(3), 4))


def test_an_unreachable_box_is_refused_with_a_reason(view_spaces):
    views = view_spaces['peg_insertion']
    # Every view 0.9 m away on the far side of the table from the camera arm: out of its reach.
    behind = ViewBox((math.radians(60), math.radians(120)), (math.radians(20), math.radians(40)), (0.85, 0.9),
                     views.box.look_at_centre_m, (0.01, 0.01, 0.01))
    with pytest.raises(ValueError, match='reachable by the camera arm'):
        ViewSpace('peg_insertion', behind, views.kinematics)


def test_project_returns_reachable_views_in_the_box(view_spaces):
    views = view_spaces['needle_threading']
    rng = np.random.default_rng(5)
    inside = views.sample(rng, 1)[0]
    assert torch.equal(views.project(inside), inside)                          # reachable views are kept
    for _ in range(6):
        wild = torch.tensor(rng.normal(0.0, 3.0, 6), dtype=DTYPE)             # far outside the box
        projected = views.project(wild, anchor=inside)
        assert views.box.contains(projected) and views.is_reachable(projected)
    assert views.is_reachable(views.project(wild, anchor=torch.full((6,), 9.0, dtype=DTYPE)))   # bad anchor


def test_the_projection_bench_times_the_steps_that_leave_the_reachable_views(capsys):
    from samrl_viewpoint.bench_projection import bench, main
    report = bench('peg_insertion', 6, 4.0)
    assert 0 <= report['unreachable_steps'] <= 6 and report['reachability_check_ms'] > 0
    assert report['projection_ms']['max'] >= report['projection_ms']['mean'] >= 0
    with pytest.raises(SystemExit):
        main(['--views', '0'])
    assert '--views must be >= 1' in capsys.readouterr().err
