"""Where Real2Sim looks: a fixed-size window of the camera frame around the target, binned by an integer factor.

Rendering the whole frame spends most pixels on the table; rendering it small loses a 3 mm
thread (4 px wide at 640x480, under a pixel at 128x96). A window of the camera's own pixels
around the predicted target, binned k x k only when the target is too large for the window,
keeps both the thread and the cost in hand. A window is a pinhole camera of its own: the same
focal lengths over k and a principal point shifted by its corner, so the renderer draws it with a
shear of the scene (Renderer.render's `principal_point`) and never rebuilds its sensor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from samrl_description.camera import CameraIntrinsics
from samrl_model.real2sim.observation import Observation

WINDOW_SIZE_PX = (128, 96)        # width, height of the rendered window (binned pixels)
MAX_BINNING = 7                   # coarsest binning tried when the target does not fit (odd: see crop)
TARGET_MARGIN = 1.5               # window side over the target's extent in the image


@dataclass(frozen=True)
class Window:
    """`width` x `height` binned pixels whose top-left binned pixel is (x0, y0); binning `scale`."""

    x0: int
    y0: int
    width: int
    height: int
    scale: int

    def intrinsics(self, frame: CameraIntrinsics) -> CameraIntrinsics:
        """The window's own pinhole camera: binned pixel u' covers frame pixels k(x0 + u') .. +k-1,
        whose centre is at k(x0 + u') + (k - 1) / 2."""
        k = self.scale
        return CameraIntrinsics(frame.fx / k, frame.fy / k, (frame.cx - 0.5 * (k - 1)) / k - self.x0,
                                (frame.cy - 0.5 * (k - 1)) / k - self.y0, self.width, self.height)

    def frame_slices(self) -> tuple[slice, slice]:
        """The rows and columns of the frame's own pixels the window covers."""
        k = self.scale
        return slice(k * self.y0, k * (self.y0 + self.height)), slice(k * self.x0, k * (self.x0 + self.width))

    def renderer_intrinsics(self, frame: CameraIntrinsics) -> CameraIntrinsics:
        """Intrinsics a renderer is built with for windows of this size and binning (centred)."""
        k = self.scale
        return CameraIntrinsics(frame.fx / k, frame.fy / k, 0.5 * self.width, 0.5 * self.height,
                                self.width, self.height)


def binning_for(extent_px: float, size_px: tuple[int, int] = WINDOW_SIZE_PX) -> int:
    """Smallest odd binning at which a target `extent_px` frame pixels across fits the window."""
    scale = 1
    while scale < MAX_BINNING and extent_px * TARGET_MARGIN > min(size_px) * scale:
        scale += 2
    return scale


def window_around(frame: CameraIntrinsics, centre_px: tuple[float, float], scale: int,
                  size_px: tuple[int, int] = WINDOW_SIZE_PX) -> Window:
    """The window of `size_px` binned pixels centred on frame pixel `centre_px`, kept inside the frame."""
    width, height = size_px
    columns, rows = frame.width // scale, frame.height // scale
    if width > columns or height > rows:
        raise ValueError(f'a {width}x{height} window binned {scale}x does not fit a {frame.width}x{frame.height} frame')
    x0 = int(round((centre_px[0] - 0.5 * (scale - 1)) / scale - 0.5 * width))
    y0 = int(round((centre_px[1] - 0.5 * (scale - 1)) / scale - 0.5 * height))
    return Window(min(max(x0, 0), columns - width), min(max(y0, 0), rows - height), width, height, scale)


def crop(observation: Observation, window: Window) -> Observation:
    """The observation seen through `window`: colour averaged over each k x k block, the mask where
    most of the block is the target, depth from the block's centre pixel (averaging would mix
    surfaces at an edge, and 0 marks no return; odd k puts that pixel on the block's centre)."""
    if window.scale % 2 == 0:
        raise ValueError(f'binning must be odd, got {window.scale}')
    k = window.scale
    rows, columns = window.frame_slices()
    rgb = _bin_mean(observation.rgb[rows, columns], k)
    mask = _bin_mean(observation.mask[rows, columns].astype(np.float32), k) >= 0.5
    depth = observation.depth_m[rows, columns][k // 2::k, k // 2::k]
    return replace(observation, rgb=rgb.astype(np.float32), mask=mask, depth_m=np.ascontiguousarray(depth),
                   intrinsics=window.intrinsics(observation.intrinsics))


def _bin_mean(image: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return image
    height, width = image.shape[0] // k, image.shape[1] // k
    blocks = image[:height * k, :width * k].reshape(height, k, width, k, *image.shape[2:])
    return blocks.mean(axis=(1, 3))


def project(points_world: np.ndarray, camera_pose, frame: CameraIntrinsics) -> np.ndarray:
    """(N, 2) pixel coordinates of world points in front of the camera (others dropped)."""
    rotation = camera_pose.as_matrix()[:3, :3]
    points = (np.asarray(points_world) - camera_pose.position) @ rotation
    points = points[points[:, 2] > 1e-6]
    return np.stack([frame.fx * points[:, 0] / points[:, 2] + frame.cx,
                     frame.fy * points[:, 1] / points[:, 2] + frame.cy], axis=1)
