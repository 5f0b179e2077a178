"""Pose maths: round trips and the optical-frame convention."""
import numpy as np
import pytest

from samrl_description.geometry import (
    Pose,
    axis_angle_to_quat,
    look_at,
    matrix_to_quat,
    quat_to_axis_angle,
    quat_to_matrix,
    rotation_between,
    unit_quaternion,
)


@pytest.mark.parametrize('rotvec', [(0.1, -0.2, 0.3), (0.0, 0.0, 3.0), (1e-12, 0.0, 0.0)])
def test_axis_angle_round_trip(rotvec):
    assert np.allclose(quat_to_axis_angle(axis_angle_to_quat(rotvec)), rotvec, atol=1e-9)


def test_matrix_quaternion_round_trip():
    q = axis_angle_to_quat([0.4, -1.2, 2.0])
    assert np.allclose(quat_to_matrix(matrix_to_quat(quat_to_matrix(q))), quat_to_matrix(q))


def test_a_quaternion_of_huge_components_is_normalised_not_zeroed():
    """The sum of squares of 1e300 overflows: the quaternion must still come out as its direction."""
    assert np.allclose(unit_quaternion([1e300, 1e300, 0.0, 0.0]), [2 ** -0.5, 2 ** -0.5, 0.0, 0.0])
    assert np.allclose(Pose.checked(np.zeros(3), [0.0, 0.0, -1.7e308, 0.0]).quaternion, [0.0, 0.0, -1.0, 0.0])
    with pytest.raises(ValueError, match='zero norm'):
        unit_quaternion([0.0, 0.0, 0.0, 0.0])


def test_pose_inverse_and_compose():
    pose = Pose(np.array([0.1, 0.2, 0.3]), axis_angle_to_quat([0.3, 0.2, -0.1]))
    identity = pose.compose(pose.inverse())
    assert np.allclose(identity.position, 0.0, atol=1e-12)
    assert np.isclose(abs(identity.quaternion[3]), 1.0)


def test_rotation_between_turns_a_onto_b():
    a, b = np.array([1.0, 0.2, -0.1]), np.array([-0.3, 1.0, 0.5])
    turned = quat_to_matrix(axis_angle_to_quat(rotation_between(a, b))) @ (a / np.linalg.norm(a))
    assert np.allclose(turned, b / np.linalg.norm(b))


def test_look_at_is_rep103_optical():
    pose = look_at(eye=(0.0, 0.0, 1.0), target=(1.0, 0.0, 1.0))
    x_axis, y_axis, z_axis = pose.rotation.T
    assert np.allclose(z_axis, [1, 0, 0])    # forward
    assert np.allclose(y_axis, [0, 0, -1])   # down
    assert np.allclose(x_axis, [0, -1, 0])   # right of a viewer looking along +x
