"""sensor_msgs/Image <-> numpy, for the encodings our nodes exchange, with checks on what arrives.

Depth follows REP-118 and realsense2_camera: 16UC1 in millimetres or 32FC1 in metres.
"""

from __future__ import annotations

import numpy as np

from samrl_common import msgs

# encoding -> (numpy dtype, channels)
ENCODINGS = {'rgb8': ('u1', 3), 'bgr8': ('u1', 3), 'mono8': ('u1', 1), '16UC1': ('u2', 1), '32FC1': ('f4', 1)}
MM_PER_M = 1000.0


class ImageError(ValueError):
    """An image whose encoding, size or data do not fit together."""


def image_to_array(image) -> np.ndarray:
    """HxW or HxWxC array (a view of the message's bytes, read-only)."""
    if image.encoding not in ENCODINGS:
        raise ImageError(f'unsupported encoding {image.encoding!r}; expected one of {", ".join(ENCODINGS)}')
    kind, channels = ENCODINGS[image.encoding]
    dtype = np.dtype(('>' if image.is_bigendian else '<') + kind)
    row_bytes = image.width * channels * dtype.itemsize
    if image.width == 0 or image.height == 0:
        raise ImageError('image has no pixels')
    if image.step < row_bytes or len(image.data) != image.step * image.height:
        raise ImageError(f'{image.encoding} {image.width}x{image.height}: step {image.step} and '
                         f'{len(image.data)} bytes do not fit (need step >= {row_bytes}, data = step * height)')
    rows = np.frombuffer(image.data, np.uint8).reshape(image.height, image.step)[:, :row_bytes]
    array = np.ascontiguousarray(rows).view(dtype).reshape(image.height, image.width, channels)
    return array[..., 0] if channels == 1 else array


def rgb_array(image) -> np.ndarray:
    """HxWx3 uint8 RGB from rgb8 or bgr8."""
    array = image_to_array(image)
    if image.encoding not in ('rgb8', 'bgr8'):
        raise ImageError(f'expected a colour image (rgb8 or bgr8), got {image.encoding}')
    return array[..., ::-1] if image.encoding == 'bgr8' else array


def depth_array_m(image) -> np.ndarray:
    """HxW float32 depth in metres (0 where the sensor has none) from 16UC1 (mm) or 32FC1 (m)."""
    array = image_to_array(image)
    if image.encoding == '16UC1':
        return array.astype(np.float32) / MM_PER_M
    if image.encoding == '32FC1':
        return np.asarray(array, dtype=np.float32)
    raise ImageError(f'expected depth as 16UC1 or 32FC1, got {image.encoding}')


def array_to_image(array: np.ndarray, encoding: str, stamp=None, frame_id: str = ''):
    """sensor_msgs/Image from an HxW or HxWxC array of the encoding's type."""
    kind, channels = ENCODINGS[encoding]
    data = np.ascontiguousarray(array, dtype=np.dtype('<' + kind))
    height, width = data.shape[:2]
    image = msgs.sensor_msgs.msg.Image(height=height, width=width, encoding=encoding,
                                       step=width * channels * data.dtype.itemsize, data=data.tobytes())
    if stamp is not None:
        image.header.stamp = stamp
    image.header.frame_id = frame_id
    return image
