"""Depth image -> 3-D points (pinhole model) and sensor_msgs/PointCloud2 packing and unpacking.

Shared by the capture node (the whole scene) and the segmentation node (the target object's
points). Points are in the camera's optical frame (REP-103: x right, y down, z forward), in
metres; pixel (u, v) is centred on the projection u = fx x / z + cx, v = fy y / z + cy, as the
camera model of samrl_description.camera describes it. Clouds follow the PCL/RViz convention: float32 x, y, z and
the colour packed as 0x00RRGGBB into the bits of a float32 field named rgb.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from samrl_common import msgs
from samrl_description.camera import CameraIntrinsics

XYZ = ('x', 'y', 'z')
RGB_FIELD = 'rgb'
FLOAT32_BYTES = 4
RED_SHIFT, GREEN_SHIFT = 16, 8  # 0x00RRGGBB
BYTE_MASK = 0xFF
# sensor_msgs/PointField datatype -> numpy type (little-endian; swapped for big-endian clouds).
POINT_FIELD_DTYPES = {1: 'i1', 2: 'u1', 3: 'i2', 4: 'u2', 5: 'i4', 6: 'u4', 7: 'f4', 8: 'f8'}
POINT_FIELD_FLOAT32 = 7


class PointCloudError(ValueError):
    """A cloud or depth image whose fields, sizes or data do not fit together."""


class DepthPoints(NamedTuple):
    """points: (N, 3) float32 metres in the optical frame; pixels: (N, 2) (row, column) each came from."""

    points: np.ndarray
    pixels: np.ndarray


def points_from_depth(depth_m: np.ndarray, intrinsics: CameraIntrinsics, mask: np.ndarray | None = None,
                      stride: int = 1) -> DepthPoints:
    """Back-project the valid depth pixels (finite, > 0, inside `mask`) of every `stride`-th row and column.

    Colours of the points are `rgb[pixels[:, 0], pixels[:, 1]]`.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2 or depth.shape != (intrinsics.height, intrinsics.width):
        raise PointCloudError(f'depth of shape {depth.shape} does not fit the intrinsics '
                              f'({intrinsics.width}x{intrinsics.height})')
    if mask is not None and np.shape(mask) != depth.shape:
        raise PointCloudError(f'mask of shape {np.shape(mask)} does not fit the depth of shape {depth.shape}')
    if stride < 1:
        raise PointCloudError(f'stride must be >= 1, got {stride}')
    rows, cols = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride]
    z = depth[rows, cols]
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(z) & (z > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)[rows, cols]
    rows, cols, z = rows[valid], cols[valid], z[valid].astype(np.float64)
    x = (cols - intrinsics.cx) * z / intrinsics.fx
    y = (rows - intrinsics.cy) * z / intrinsics.fy
    return DepthPoints(np.stack([x, y, z], axis=1).astype(np.float32), np.stack([rows, cols], axis=1))


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 -> (N,) float32 whose bits are 0x00RRGGBB (what RViz and PCL read)."""
    c = np.asarray(colors, dtype=np.uint32)
    packed = (c[:, 0] << RED_SHIFT) | (c[:, 1] << GREEN_SHIFT) | c[:, 2]
    return packed.astype('<u4').view('<f4')


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """(N,) float32 (or uint32) with 0x00RRGGBB bits -> (N, 3) uint8."""
    bits = np.ascontiguousarray(packed).view(np.uint32)
    return np.stack([(bits >> RED_SHIFT) & BYTE_MASK, (bits >> GREEN_SHIFT) & BYTE_MASK, bits & BYTE_MASK],
                    axis=1).astype(np.uint8)


def pointcloud2_msg(points: np.ndarray, colors: np.ndarray | None = None, stamp=None, frame_id: str = ''):
    """Unorganised (height 1) sensor_msgs/PointCloud2 with x, y, z and, given colours, rgb."""
    xyz = np.asarray(points, dtype=np.float32)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise PointCloudError(f'points must have shape (N, 3), got {xyz.shape}')
    names = list(XYZ)
    if colors is not None:
        if np.shape(colors) != xyz.shape:
            raise PointCloudError(f'colours of shape {np.shape(colors)} do not fit {len(xyz)} points')
        names.append(RGB_FIELD)
    record = np.zeros(len(xyz), dtype=np.dtype([(name, '<f4') for name in names]))
    for axis, name in enumerate(XYZ):
        record[name] = xyz[:, axis]
    if colors is not None:
        record[RGB_FIELD] = pack_rgb(colors)
    PointField = msgs.sensor_msgs.msg.PointField
    fields = [PointField(name=name, offset=i * FLOAT32_BYTES, datatype=POINT_FIELD_FLOAT32, count=1)
              for i, name in enumerate(names)]
    step = len(names) * FLOAT32_BYTES
    cloud = msgs.sensor_msgs.msg.PointCloud2(
        height=1, width=len(xyz), fields=fields, is_bigendian=False, point_step=step, row_step=step * len(xyz),
        data=record.tobytes(), is_dense=bool(np.isfinite(xyz).all()))
    if stamp is not None:
        cloud.header.stamp = stamp
    cloud.header.frame_id = frame_id
    return cloud


def _field_dtype(cloud) -> np.dtype:
    """The structured dtype of one point: the fields this module reads, at their offsets."""
    byte_order = '>' if cloud.is_bigendian else '<'
    names, formats, offsets = [], [], []
    for field in cloud.fields:
        if field.name not in (*XYZ, RGB_FIELD):
            continue
        if field.datatype not in POINT_FIELD_DTYPES or field.count != 1:
            raise PointCloudError(f'field {field.name!r}: datatype {field.datatype} x {field.count} is not supported')
        dtype = np.dtype(byte_order + POINT_FIELD_DTYPES[field.datatype])
        if field.offset + dtype.itemsize > cloud.point_step:
            raise PointCloudError(f'field {field.name!r} at offset {field.offset} overruns point_step '
                                  f'{cloud.point_step}')
        names.append(field.name)
        formats.append(dtype)
        offsets.append(field.offset)
    missing = [name for name in XYZ if name not in names]
    if missing:
        raise PointCloudError(f'cloud lacks field(s) {", ".join(missing)}')
    return np.dtype({'names': names, 'formats': formats, 'offsets': offsets, 'itemsize': cloud.point_step})


def points_from_pointcloud2(cloud) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 3) float32 points and (N, 3) uint8 colours (None without an rgb field) of any PointCloud2."""
    dtype = _field_dtype(cloud)
    count = cloud.width * cloud.height
    if cloud.row_step < cloud.width * cloud.point_step or len(cloud.data) != cloud.row_step * cloud.height:
        raise PointCloudError(f'{cloud.width}x{cloud.height} points of {cloud.point_step} bytes: row_step '
                              f'{cloud.row_step} and {len(cloud.data)} bytes do not fit')
    rows = np.frombuffer(cloud.data, np.uint8).reshape(cloud.height, cloud.row_step)
    packed = np.ascontiguousarray(rows[:, :cloud.width * cloud.point_step]).reshape(-1)
    record = packed.view(dtype) if count else np.zeros(0, dtype)
    points = np.stack([record[name].astype(np.float32) for name in XYZ], axis=1)
    if RGB_FIELD not in dtype.names:
        return points, None
    return points, unpack_rgb(record[RGB_FIELD].astype(record.dtype[RGB_FIELD].newbyteorder('=')))
