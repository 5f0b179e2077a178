"""Camera model: D435 intrinsics, projection matching the pinhole model, metric depth."""
import numpy as np
import pybullet as pb
import pytest

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import look_at
from samrl_sim.camera import render

PLANE_HALF_SIZE_M = 5.0


@pytest.fixture
def client():
    client = pb.connect(pb.DIRECT)
    yield client
    pb.disconnect(client)


def _box(client, half_extents, position, rgba=(0.8, 0.8, 0.8, 1.0)):
    collision = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half_extents, physicsClientId=client)
    visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half_extents, rgbaColor=rgba, physicsClientId=client)
    return pb.createMultiBody(0, collision, visual, position, physicsClientId=client)


def test_d435_intrinsics():
    full = CameraIntrinsics.d435()
    assert 605 <= full.fx <= 615 and full.fx == full.fy
    assert (full.cx, full.cy, full.width, full.height) == (320.0, 240.0, 640, 480)
    small = CameraIntrinsics.d435(84, 84)
    assert np.isclose(small.fov_deg()[1], full.fov_deg()[1])   # same vertical field of view
    assert np.isclose(full.fov_deg()[1], 42.5, atol=0.5)


@pytest.mark.parametrize('distance_m', [0.35, 0.8])
def test_depth_of_a_plane_is_metric(client, distance_m):
    """A camera looking straight at a plane reads the plane's distance at every pixel."""
    _box(client, (PLANE_HALF_SIZE_M, PLANE_HALF_SIZE_M, 0.01), (0, 0, -0.01))
    camera = look_at(eye=(0.0, 0.0, distance_m), target=(0.0, 0.0, 0.0), up=(1.0, 0.0, 0.0))
    image = render(client, camera, CameraIntrinsics.d435(84, 84))
    assert image.rgb.dtype == np.uint8 and image.rgb.shape == (84, 84, 3)
    assert image.depth_m.dtype == np.float32
    assert np.allclose(image.depth_m, distance_m, atol=1e-4)


def test_tilted_camera_depth_is_along_the_optical_axis(client):
    """Depth is z in the optical frame, not the ray length: check it pixel by pixel."""
    _box(client, (PLANE_HALF_SIZE_M, PLANE_HALF_SIZE_M, 0.01), (0, 0, -0.01))
    camera = look_at(eye=(-0.4, 0.1, 0.5), target=(0.1, 0.0, 0.0))
    k = CameraIntrinsics.d435(64, 48)
    depth = render(client, camera, k).depth_m
    v, u = np.mgrid[0:k.height, 0:k.width].astype(float)     # ROS/OpenCV: integer = pixel centre
    rays = np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(u)], axis=-1) @ camera.rotation.T
    expected = -camera.position[2] / rays[..., 2]        # where z_world(optical depth d) = 0
    assert np.allclose(depth, expected, rtol=1e-4)


def test_object_appears_at_its_projected_pixel(client):
    marker = _box(client, (0.01, 0.01, 0.01), (0.2, -0.05, 0.1))
    camera = look_at(eye=(0.6, 0.3, 0.5), target=(0.2, 0.0, 0.0))
    k = CameraIntrinsics.d435(320, 240)
    image = render(client, camera, k)
    rows, cols = np.nonzero(image.seg == marker)
    expected = k.project(camera.inverse().apply([0.2, -0.05, 0.1]))
    assert np.allclose([cols.mean(), rows.mean()], expected, atol=0.5)


def test_a_non_finite_depth_is_published_as_no_return():
    import warnings

    from samrl_common.runtime import stamp_now
    from samrl_sim.conversions import image_msgs
    depth = np.array([[0.5, np.nan], [np.inf, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter('error')                    # no "invalid value encountered in cast"
        _, message = image_msgs(np.zeros((2, 2, 3), np.uint8), depth, stamp_now(), 'camera')
    assert np.frombuffer(bytes(message.data), '<u2').tolist() == [500, 0, 0, 0]
