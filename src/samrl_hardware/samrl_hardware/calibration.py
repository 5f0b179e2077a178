"""The real cell's calibration, read from one YAML file, and the /tf_static edges it implies.

The file (see samrl_bringup/config/calibration.yaml for a documented example) holds:
  * frames: the names of the frames the edges join;
  * camera_intrinsics: the colour stream's pinhole model (to check the camera driver's camera_info);
  * rizon_base_in_franka_base: the camera arm's base in the Franka's base frame;
  * hand_eye: camera_color_optical_frame in the Rizon's flange frame (`samrl calibrate hand-eye`);
  * optical_in_camera_root: camera_color_optical_frame in camera_link, as realsense2_camera
    publishes it from the device's extrinsics.
A pose is {translation_m: [x, y, z], quaternion_xyzw: [x, y, z, w]}: the child frame's pose in the
parent frame (tf2's T_parent_child).

The world (task) frame is the Franka's base frame, as in the simulation, so the edges are
  world -> franka_base      identity
  world -> rizon_root       rizon_base_in_franka_base
  rizon_flange -> camera_root   hand_eye * optical_in_camera_root^-1
and realsense2_camera's own camera_root -> ... -> optical edges complete the chain, so that
world -> camera_color_optical_frame through the flange is exactly the calibrated camera pose.
No ROS here: calibration_node.py publishes the edges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose
from samrl_description.names import OPTICAL_FRAME, PANDA_BASE_FRAME, WORLD_FRAME

FORMAT_VERSION = 1
QUATERNION_NORM_TOLERANCE = 1e-3    # hand-typed quaternions: 4 decimals are well within this
MAX_BASE_DISTANCE_M = 3.0           # two arms sharing a table
MAX_HAND_EYE_OFFSET_M = 0.3         # a camera mounted on the flange
MAX_OPTICAL_OFFSET_M = 0.1          # optical frame inside the camera housing
INTRINSICS_TOLERANCE_PX = 2.0       # calibrated vs the driver's camera_info

DEFAULT_FRAMES = {
    'world': WORLD_FRAME,
    'franka_base': PANDA_BASE_FRAME,        # the root frame of the Franka driver's tf tree
    'rizon_root': 'rizon_world',            # the root frame of the Rizon driver's tf tree, at its base
    'rizon_flange': 'rizon_flange',
    'camera_root': 'camera_link',           # realsense2_camera's root frame
    'camera_optical': OPTICAL_FRAME,
}
POSE_KEYS = ('translation_m', 'quaternion_xyzw')
SECTIONS = ('format', 'frames', 'camera_intrinsics', 'rizon_base_in_franka_base', 'hand_eye',
            'optical_in_camera_root')
INTRINSICS_KEYS = ('width', 'height', 'fx', 'fy', 'cx', 'cy')


class CalibrationError(ValueError):
    """The calibration file is missing, malformed or implausible; the message names the field."""


class StaticEdge(NamedTuple):
    parent: str
    child: str
    pose: Pose


@dataclass(frozen=True)
class Calibration:
    frames: dict[str, str]
    intrinsics: CameraIntrinsics
    rizon_base_in_franka_base: Pose
    hand_eye: Pose                      # T_flange_optical
    optical_in_camera_root: Pose        # T_camera_root_optical

    @property
    def rizon_base_in_world(self) -> Pose:
        return self.rizon_base_in_franka_base      # the world frame is the Franka's base frame

    def static_edges(self) -> list[StaticEdge]:
        f = self.frames
        return [StaticEdge(f['world'], f['franka_base'], Pose.identity()),
                StaticEdge(f['world'], f['rizon_root'], self.rizon_base_in_world),
                StaticEdge(f['rizon_flange'], f['camera_root'], self.hand_eye * self.optical_in_camera_root.inverse())]


# -- reading ------------------------------------------------------------------------------------------

def load_calibration(path: str | Path) -> Calibration:
    """Read and validate a calibration file; CalibrationError naming the file and the field otherwise."""
    return read_yaml_file(path, 'calibration file', parse_calibration)


def read_yaml_file(path, what: str, parse):
    """parse(the YAML or JSON document at `path`); CalibrationError naming the file otherwise."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())      # JSON is YAML too
    except OSError as exc:
        raise CalibrationError(f'{path}: cannot read the {what}: {exc.strerror or exc}') from None
    except yaml.YAMLError as exc:
        raise CalibrationError(f'{path}: not valid YAML or JSON: {exc}') from None
    try:
        return parse(document)
    except CalibrationError as exc:
        raise CalibrationError(f'{path}: {exc}') from None


def parse_calibration(document: Any) -> Calibration:
    section = _mapping(document, 'the calibration file', SECTIONS, required=SECTIONS[2:])
    version = section.get('format', FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise CalibrationError(f'format: version {version!r} is not supported (expected {FORMAT_VERSION})')
    return Calibration(
        frames=parse_frames(section.get('frames', {})),
        intrinsics=parse_intrinsics(section['camera_intrinsics']),
        rizon_base_in_franka_base=parse_pose(section['rizon_base_in_franka_base'], 'rizon_base_in_franka_base',
                                             MAX_BASE_DISTANCE_M),
        hand_eye=parse_pose(section['hand_eye'], 'hand_eye', MAX_HAND_EYE_OFFSET_M),
        optical_in_camera_root=parse_pose(section['optical_in_camera_root'], 'optical_in_camera_root',
                                          MAX_OPTICAL_OFFSET_M))


def parse_frames(value: Any) -> dict[str, str]:
    given = _mapping(value, 'frames', tuple(DEFAULT_FRAMES))
    frames = {**DEFAULT_FRAMES, **given}
    for key, name in frames.items():
        if not isinstance(name, str) or not name or name.startswith('/') or any(c.isspace() for c in name):
            raise CalibrationError(f'frames.{key}: {name!r} is not a tf frame id (non-empty, no leading "/", '
                                   f'no spaces)')
    names = list(frames.values())
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CalibrationError(f'frames: {repeated[0]!r} names more than one frame')
    return frames


def parse_intrinsics(value: Any) -> CameraIntrinsics:
    section = _mapping(value, 'camera_intrinsics', INTRINSICS_KEYS, required=INTRINSICS_KEYS)
    numbers = {}
    for key in INTRINSICS_KEYS:
        number = section[key]
        integer = key in ('width', 'height')
        if isinstance(number, bool) or not isinstance(number, int if integer else (int, float)):
            kind = 'an integer number of pixels' if integer else 'a number of pixels'
            raise CalibrationError(f'camera_intrinsics.{key}: {number!r} is not {kind}')
        numbers[key] = number if integer else float(number)
    try:
        return CameraIntrinsics(**numbers).validate()
    except ValueError as exc:
        raise CalibrationError(f'camera_intrinsics: {exc}') from None


def parse_pose(value: Any, name: str, max_translation_m: float = math.inf) -> Pose:
    """A {translation_m, quaternion_xyzw} mapping as a Pose (quaternion normalised)."""
    section = _mapping(value, name, POSE_KEYS, required=POSE_KEYS)
    translation = _numbers(section['translation_m'], 3, f'{name}.translation_m')
    quaternion = _numbers(section['quaternion_xyzw'], 4, f'{name}.quaternion_xyzw')
    norm = float(np.linalg.norm(quaternion))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise CalibrationError(f'{name}.quaternion_xyzw: norm {norm:.6g} is not 1 (tolerance '
                               f'{QUATERNION_NORM_TOLERANCE:g}); give a unit quaternion [x, y, z, w]')
    distance = float(np.linalg.norm(translation))
    if distance > max_translation_m:
        raise CalibrationError(f'{name}.translation_m: {distance:.3f} m from the parent frame is implausible '
                               f'(at most {max_translation_m:g} m); are the units metres?')
    return Pose.checked(translation, quaternion)


def pose_to_yaml(pose: Pose) -> dict[str, list[float]]:
    """The file's form of a pose (the inverse of parse_pose)."""
    translation, quaternion = pose.as_tuple()
    return {'translation_m': [round(v, 6) for v in translation], 'quaternion_xyzw': [round(v, 7) for v in quaternion]}


def _mapping(value: Any, name: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        raise CalibrationError(f'{name}: expected a mapping with {", ".join(allowed)}, got {type(value).__name__}')
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise CalibrationError(f'{name}: unknown field {unknown[0]!r}; expected {", ".join(allowed)}')
    missing = [k for k in required if k not in value]
    if missing:
        raise CalibrationError(f'{name}: missing field {missing[0]!r}')
    return value


def _numbers(value: Any, size: int, name: str) -> np.ndarray:
    if not isinstance(value, (list, tuple)) or len(value) != size:
        raise CalibrationError(f'{name}: expected a list of {size} numbers, got {value!r}')
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value):
        raise CalibrationError(f'{name}: every entry must be a finite number, got {value!r}')
    return np.array(value, dtype=float)


# -- checks against the live cell -------------------------------------------------------------------------

def intrinsics_mismatch(calibrated: CameraIntrinsics, live: CameraIntrinsics,
                        tolerance_px: float = INTRINSICS_TOLERANCE_PX) -> str:
    """Why the camera driver's intrinsics disagree with the calibrated ones ('' if they agree)."""
    if (live.width, live.height) != (calibrated.width, calibrated.height):
        return (f'the camera streams {live.width}x{live.height} px, calibrated for '
                f'{calibrated.width}x{calibrated.height} px')
    worst = max(('fx', 'fy', 'cx', 'cy'), key=lambda k: abs(getattr(live, k) - getattr(calibrated, k)))
    difference = abs(getattr(live, worst) - getattr(calibrated, worst))
    if difference > tolerance_px:
        return (f'{worst} is {getattr(live, worst):.2f} px on the camera, {getattr(calibrated, worst):.2f} px '
                f'calibrated ({difference:.2f} px apart, tolerance {tolerance_px:g} px)')
    return ''
