"""Depth -> points against the pinhole model; PointCloud2 packing as RViz/PCL read it, and back."""

import numpy as np
import pytest

from samrl_common import msgs
from samrl_description.camera import CameraIntrinsics
from samrl_perception.pointcloud import (
    PointCloudError,
    pack_rgb,
    pointcloud2_msg,
    points_from_depth,
    points_from_pointcloud2,
    unpack_rgb,
)

K = CameraIntrinsics(fx=100.0, fy=110.0, cx=15.5, cy=11.0, width=32, height=24)


def _depth(seed=0):
    return np.random.default_rng(seed).uniform(0.2, 2.0, (K.height, K.width)).astype(np.float32)


def test_points_project_back_onto_their_pixels():
    depth = _depth()
    points, pixels = points_from_depth(depth, K)
    assert points.dtype == np.float32 and points.shape == (K.width * K.height, 3)
    for point, (row, col) in zip(points[::37], pixels[::37]):
        assert np.allclose(K.project(point.astype(float)), [col, row], atol=1e-3)
        assert point[2] == depth[row, col]


def test_principal_point_lies_on_the_optical_axis():
    depth = np.ones((K.height, K.width), np.float32)
    k = CameraIntrinsics(100.0, 100.0, 3.0, 2.0, K.width, K.height)
    points, pixels = points_from_depth(depth, k)
    on_axis = points[(pixels[:, 0] == 2) & (pixels[:, 1] == 3)]
    assert on_axis.tolist() == [[0.0, 0.0, 1.0]]
    right = points[(pixels[:, 0] == 2) & (pixels[:, 1] == 13)][0]
    assert np.allclose(right, [0.1, 0.0, 1.0])  # 10 px right at f = 100 px and 1 m: 0.1 m, +x


def test_invalid_depth_mask_and_stride_select_pixels():
    depth = _depth()
    depth[0, 0], depth[0, 2], depth[2, 0] = 0.0, np.nan, -1.0
    mask = np.ones_like(depth, bool)
    mask[4, 4] = False
    points, pixels = points_from_depth(depth, K, mask=mask, stride=2)
    sampled = {(r, c) for r in range(0, K.height, 2) for c in range(0, K.width, 2)}
    assert {tuple(p) for p in pixels.tolist()} == sampled - {(0, 0), (0, 2), (2, 0), (4, 4)}
    assert np.all(np.isfinite(points)) and np.all(points[:, 2] > 0)


@pytest.mark.parametrize('kwargs, text', [
    ({'depth_m': np.ones((3, 3))}, 'does not fit the intrinsics'),
    ({'mask': np.ones((3, 3), bool)}, 'mask of shape'),
    ({'stride': 0}, 'stride must be >= 1'),
])
def test_bad_depth_arguments_are_refused(kwargs, text):
    with pytest.raises(PointCloudError, match=text):
        points_from_depth(**{'depth_m': _depth(), 'intrinsics': K, **kwargs})


def test_rgb_packs_as_rviz_reads_it():
    colors = np.array([[255, 0, 0], [0, 128, 0], [1, 2, 3]], np.uint8)
    packed = pack_rgb(colors)
    assert packed.dtype == np.float32
    assert packed.view(np.uint32).tolist() == [0xFF0000, 0x008000, 0x010203]
    assert np.array_equal(unpack_rgb(packed), colors)


def test_pointcloud2_fields_and_round_trip():
    points, _ = points_from_depth(_depth(), K, stride=3)
    colors = np.random.default_rng(1).integers(0, 256, points.shape, dtype=np.uint8)
    cloud = pointcloud2_msg(points, colors, msgs.builtin_interfaces.msg.Time(sec=5, nanosec=7), 'optical')
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1)]
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (1, len(points), 16, 16 * len(points))
    assert cloud.is_dense and not cloud.is_bigendian and len(cloud.data) == 16 * len(points)
    assert (cloud.header.frame_id, cloud.header.stamp.sec, cloud.header.stamp.nanosec) == ('optical', 5, 7)
    wire = msgs.deserialize(type(cloud), msgs.serialize(cloud))
    back, back_colors = points_from_pointcloud2(wire)
    assert np.array_equal(back, points) and np.array_equal(back_colors, colors)


def test_xyz_only_and_empty_clouds():
    points = np.array([[1.0, 2.0, 3.0]], np.float32)
    cloud = pointcloud2_msg(points)
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z'] and cloud.point_step == 12
    back, colors = points_from_pointcloud2(cloud)
    assert np.array_equal(back, points) and colors is None
    empty, empty_colors = points_from_pointcloud2(pointcloud2_msg(np.zeros((0, 3)), np.zeros((0, 3), np.uint8)))
    assert empty.shape == (0, 3) and empty_colors.shape == (0, 3)


def test_unpacking_reads_padded_big_endian_organised_clouds():
    """Another driver's layout: 2x2 organised, 20-byte points, rgb first, big-endian, padded rows."""
    xyz = np.arange(12, dtype=np.float32).reshape(4, 3)
    record = np.zeros(4, np.dtype({'names': ['rgb', 'x', 'y', 'z'], 'formats': ['>u4', '>f4', '>f4', '>f4'],
                                   'offsets': [0, 4, 8, 12], 'itemsize': 20}))
    record['rgb'] = 0x0A0B0C
    record['x'], record['y'], record['z'] = xyz.T
    rows = record.tobytes()
    data = rows[:40] + b'\0' * 4 + rows[40:] + b'\0' * 4
    PointField = msgs.sensor_msgs.msg.PointField
    fields = [PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in
              (('rgb', 0, 6), ('x', 4, 7), ('y', 8, 7), ('z', 12, 7))]
    cloud = msgs.sensor_msgs.msg.PointCloud2(height=2, width=2, fields=fields, is_bigendian=True, point_step=20,
                                             row_step=44, data=data, is_dense=True)
    points, colors = points_from_pointcloud2(cloud)
    assert np.array_equal(points, xyz) and colors.tolist() == [[10, 11, 12]] * 4


def test_malformed_clouds_are_refused():
    cloud = pointcloud2_msg(np.ones((2, 3)))
    cloud.data = cloud.data[:-1]
    with pytest.raises(PointCloudError, match='do not fit'):
        points_from_pointcloud2(cloud)
    cloud = pointcloud2_msg(np.ones((2, 3)))
    cloud.fields = cloud.fields[:2]
    with pytest.raises(PointCloudError, match='lacks field'):
        points_from_pointcloud2(cloud)
    with pytest.raises(PointCloudError, match='colours of shape'):
        pointcloud2_msg(np.ones((2, 3)), np.ones((3, 3), np.uint8))
