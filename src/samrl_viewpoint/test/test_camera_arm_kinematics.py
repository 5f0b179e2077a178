"""The numpy camera-arm kinematics agree with PyBullet's arm loaded from the same URDF."""
import numpy as np
import pybullet as pb
import pytest

from samrl_description.camera_arm_kinematics import (
    HOME_JOINTS_RAD,
    ORIENTATION_TOLERANCE_RAD,
    POSITION_TOLERANCE_M,
    CameraArmKinematics,
    camera_arm_base_pose,
)
from samrl_description.default_views import DEFAULT_VIEWS
from samrl_description.geometry import look_at, quat_conjugate, quat_multiply, rotation_angle
from samrl_sim.camera_arm import CameraArm

FK_TOLERANCE = 1e-6               # m, and unitless for the rotation matrix entries
RANDOM_CONFIGURATIONS = 40
# Within the reach sphere, but looking back down at the arm's own base from its far side (test_camera_arm.py).
UNREACHABLE_GOAL = look_at(eye=(0.55 + 0.8 * np.cos(1.0), -0.65 + 0.8 * np.sin(1.0), 0.5), target=(0.55, -0.65, 0.3))


@pytest.fixture(scope='module')
def pybullet_arm():
    client = pb.connect(pb.DIRECT)
    yield CameraArm(client, camera_arm_base_pose())
    pb.disconnect(client)


@pytest.fixture(scope='module')
def kinematics():
    return CameraArmKinematics()


def _residuals(reached, goal) -> tuple[float, float]:
    angle = rotation_angle(quat_multiply(quat_conjugate(reached.quaternion), goal.quaternion))
    return float(np.linalg.norm(reached.position - goal.position)), angle


def test_the_chain_is_the_arms_movable_joints_with_their_limits(kinematics, pybullet_arm):
    assert kinematics.joint_names == pybullet_arm.movable_joint_names
    assert np.allclose(kinematics.lower, pybullet_arm._chain.lower)
    assert np.allclose(kinematics.upper, pybullet_arm._chain.upper)


def test_forward_kinematics_equals_pybullet(kinematics, pybullet_arm):
    rng = np.random.default_rng(0)
    random_joints = rng.uniform(kinematics.lower, kinematics.upper, (RANDOM_CONFIGURATIONS, len(kinematics.lower)))
    for joints in [np.array(HOME_JOINTS_RAD), *random_joints]:
        pybullet_arm.set_joints(joints)
        expected = pybullet_arm.optical_pose().as_matrix()
        assert np.abs(kinematics.forward(joints).as_matrix() - expected).max() < FK_TOLERANCE


@pytest.mark.parametrize('task', sorted(DEFAULT_VIEWS))
def test_both_reach_each_default_view(task, kinematics, pybullet_arm):
    goal = look_at(*DEFAULT_VIEWS[task])
    solution = kinematics.solve(goal)
    assert solution.reachable
    assert np.all(solution.joints_rad >= kinematics.lower) and np.all(solution.joints_rad <= kinematics.upper)
    pybullet_arm.set_joints(np.array(HOME_JOINTS_RAD))
    assert pybullet_arm.solve(goal).reachable
    pybullet_arm.set_joints(solution.joints_rad)       # the numpy solution puts PyBullet's camera there too
    position_error, angle = _residuals(pybullet_arm.optical_pose(), goal)
    assert position_error < POSITION_TOLERANCE_M and angle < ORIENTATION_TOLERANCE_RAD


def test_both_refuse_an_unreachable_goal(kinematics, pybullet_arm):
    pybullet_arm.set_joints(np.array(HOME_JOINTS_RAD))
    assert not kinematics.solve(UNREACHABLE_GOAL).reachable
    assert not pybullet_arm.solve(UNREACHABLE_GOAL).reachable


def test_ik_is_deterministic_and_reaches_random_reachable_poses(kinematics):
    rng = np.random.default_rng(1)
    for joints in rng.uniform(kinematics.lower, kinematics.upper, (5, 7)):
        goal = kinematics.forward(joints)                   # reachable by construction
        first, second = kinematics.solve(goal), kinematics.solve(goal)
        assert first.reachable and np.array_equal(first.joints_rad, second.joints_rad)
        position_error, angle = _residuals(kinematics.forward(first.joints_rad), goal)
        assert np.isclose(position_error, first.position_error_m) and angle < ORIENTATION_TOLERANCE_RAD
