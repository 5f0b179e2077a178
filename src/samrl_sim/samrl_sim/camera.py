"""The RGB-D camera rendered by PyBullet's TinyRenderer (the pinhole model is samrl_description.camera).

Depth is metric: distance (m) along the optical axis (z of camera_color_optical_frame, REP-103:
z forward, x right, y down), recovered from the OpenGL depth buffer; pixels that hit nothing
read 0.0, as a RealSense reports missing depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as pb

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose
from samrl_description.objects import OBJECT_CLASSES

NEAR_PLANE_M = 0.03     # the D435's minimum depth is ~0.1 m; render closer to keep geometry
FAR_PLANE_M = 3.0
# TinyRenderer samples pixels at integer window coordinates and flips rows, so an image row r
# shows window row r + 1 from the top; shifting the principal point by one row makes the images
# follow the ROS/OpenCV convention (pixel (u, v) centred on the projection u = fx x / z + cx, ...),
# verified to 1e-5 relative depth error in test_camera.py.
TINY_RENDERER_ROW_OFFSET_PX = 1.0
OPTICAL_TO_OPENGL = np.diag([1.0, -1.0, -1.0])   # OpenGL camera: x right, y up, looks along -z


@dataclass(frozen=True)
class CameraImage:
    """rgb: HxWx3 uint8; depth_m: HxW float32 metres (0 = no return); seg: HxW int32 body ids (-1 = none)."""

    rgb: np.ndarray
    depth_m: np.ndarray
    seg: np.ndarray


def projection_matrix(k: CameraIntrinsics, near: float = NEAR_PLANE_M, far: float = FAR_PLANE_M) -> list[float]:
    """OpenGL projection (column-major, 16 floats) reproducing the pinhole model on the image."""
    w, h = k.width, k.height
    cy = k.cy + TINY_RENDERER_ROW_OFFSET_PX
    proj = np.array([
        [2 * k.fx / w, 0.0, 1 - 2 * k.cx / w, 0.0],
        [0.0, 2 * k.fy / h, 2 * cy / h - 1, 0.0],
        [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
        [0.0, 0.0, -1.0, 0.0],
    ])
    return proj.T.reshape(-1).tolist()


def view_matrix(optical_pose: Pose) -> list[float]:
    """OpenGL view matrix (column-major) of a camera whose optical frame has `optical_pose` in world."""
    rot_gl = optical_pose.rotation @ OPTICAL_TO_OPENGL
    view = np.eye(4)
    view[:3, :3] = rot_gl.T
    view[:3, 3] = -rot_gl.T @ optical_pose.position
    return view.T.reshape(-1).tolist()


def depth_buffer_to_metres(buffer: np.ndarray, near: float = NEAR_PLANE_M, far: float = FAR_PLANE_M) -> np.ndarray:
    """Invert the OpenGL perspective depth: b in [0, 1] -> z distance along the optical axis (m)."""
    return (far * near / (far - (far - near) * buffer)).astype(np.float32)


def render(client: int, optical_pose: Pose, k: CameraIntrinsics) -> CameraImage:
    """Render RGB, metric depth and segmentation from `optical_pose` with TinyRenderer."""
    _, _, rgba, depth_buffer, seg = pb.getCameraImage(
        k.width, k.height, viewMatrix=view_matrix(optical_pose), projectionMatrix=projection_matrix(k),
        renderer=pb.ER_TINY_RENDERER, physicsClientId=client)
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(k.height, k.width, 4)[:, :, :3]
    seg = np.asarray(seg, dtype=np.int32).reshape(k.height, k.width)
    depth = depth_buffer_to_metres(np.asarray(depth_buffer, dtype=np.float64).reshape(k.height, k.width))
    depth[seg < 0] = 0.0
    return CameraImage(np.ascontiguousarray(rgb), depth, seg)


def label_image(seg: np.ndarray, object_bodies: dict[str, int]) -> np.ndarray:
    """PyBullet body-id segmentation -> uint8 class labels (0 background, i + 1 for OBJECT_CLASSES[i])."""
    labels = np.zeros(seg.shape, np.uint8)
    for name, body in object_bodies.items():
        labels[seg == body] = OBJECT_CLASSES.index(name) + 1
    return labels
