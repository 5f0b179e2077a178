"""The RGB-D camera's pinhole model, with RealSense D435-like intrinsics (no renderer here).

Reference intrinsics: the D435 colour stream at 640x480 has fx = fy ~ 615 px (principal point
near the centre), i.e. a 42.6 deg vertical and 54.9 deg horizontal field of view; the 69.4 x 42.5
deg figure of the data sheet is the 16:9 mode. Other sizes keep the vertical field of view and
square pixels: the 84x84 image is the centre square crop of the 640x480 image, resized.

Pixels follow the ROS/OpenCV convention: pixel (u, v) is centred on the projection
u = fx x / z + cx, v = fy y / z + cy of a point in the optical frame (REP-103: z forward, x
right, y down). Depth is metric distance along z; 0 means no return, as a RealSense reports it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

D435_WIDTH_PX = 640
D435_HEIGHT_PX = 480
D435_FOCAL_PX = 615.0
MAX_IMAGE_SIDE_PX = 4096     # no RGB-D camera we use streams more; bounds memory for a bad camera_info
MAX_FOV_DEG = 170.0          # a pinhole's field of view must stay below 180 deg (renderers refuse more)


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole model: focal lengths and principal point in pixels, image size in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @staticmethod
    def d435(width: int = D435_WIDTH_PX, height: int = D435_HEIGHT_PX, zoom: float = 1.0) -> CameraIntrinsics:
        """D435 colour intrinsics scaled to width x height (same vertical FOV, square pixels). zoom > 1
        narrows the field of view by that factor about the image centre: the centred crop of the camera's
        image, resampled to width x height at zoom times the pixel density."""
        if not (math.isfinite(zoom) and zoom > 0):
            raise ValueError(f'zoom must be a finite positive factor, got {zoom}')
        focal = D435_FOCAL_PX * height / D435_HEIGHT_PX * zoom
        return CameraIntrinsics(focal, focal, 0.5 * width, 0.5 * height, width, height)

    @staticmethod
    def from_k(k, width: int, height: int) -> CameraIntrinsics:
        """From a row-major 3x3 K (sensor_msgs/CameraInfo.k) and the image size."""
        return CameraIntrinsics(fx=float(k[0]), fy=float(k[4]), cx=float(k[2]), cy=float(k[5]),
                                width=int(width), height=int(height))

    def validate(self) -> CameraIntrinsics:
        """Itself if usable: a size of 1..MAX_IMAGE_SIDE_PX pixels a side, finite positive focal
        lengths and a finite principal point; ValueError naming the problem otherwise."""
        if not (1 <= self.width <= MAX_IMAGE_SIDE_PX and 1 <= self.height <= MAX_IMAGE_SIDE_PX):
            raise ValueError(f'image size {self.width}x{self.height} is outside 1..{MAX_IMAGE_SIDE_PX} px a side')
        if not all(math.isfinite(v) for v in (self.fx, self.fy, self.cx, self.cy)) or self.fx <= 0 or self.fy <= 0:
            raise ValueError(f'intrinsics need finite positive focal lengths and a finite principal point, got '
                             f'fx={self.fx}, fy={self.fy}, cx={self.cx}, cy={self.cy}')
        if max(self.fov_deg()) > MAX_FOV_DEG:
            raise ValueError(f'field of view {self.fov_deg()[0]:.1f} x {self.fov_deg()[1]:.1f} deg is wider than '
                             f'{MAX_FOV_DEG:g} deg (focal lengths fx={self.fx}, fy={self.fy} px too short)')
        return self

    @property
    def matrix(self) -> np.ndarray:
        """3x3 K matrix (sensor_msgs/CameraInfo.k)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def fov_deg(self) -> tuple[float, float]:
        """(horizontal, vertical) field of view in degrees."""
        return (float(np.degrees(2 * np.arctan(0.5 * self.width / self.fx))),
                float(np.degrees(2 * np.arctan(0.5 * self.height / self.fy))))

    def project(self, point_optical) -> np.ndarray:
        """Pixel (u, v) of a point given in the optical frame."""
        x, y, z = point_optical
        return np.array([self.fx * x / z + self.cx, self.fy * y / z + self.cy])
