"""Hand-eye calibration of the camera on the Rizon's flange (eye-in-hand), with OpenCV.

Each sample pairs the flange pose in the robot's base frame (T_base_flange, from the arm's
forward kinematics) with the calibration target's pose in the camera's optical frame
(T_camera_target, e.g. from a ChArUco board and solvePnP), recorded with the arm still.
cv2.calibrateHandEye solves T_base_flange_i X T_camera_target_i = T_base_target for the unknown
X = T_flange_camera, the `hand_eye` of the calibration file.

The residual is how well one fixed target explains every sample: with X, each sample implies its
own T_base_target_i; their spread about the mean (translation in mm, rotation in deg) is what the
calibration leaves unexplained (detection noise, kinematic error, timing).

Samples file (YAML or JSON):
    samples:
      - flange_in_base:   {translation_m: [x, y, z], quaternion_xyzw: [x, y, z, w]}
        target_in_camera: {translation_m: [x, y, z], quaternion_xyzw: [x, y, z, w]}
      - ...
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from samrl_description.geometry import Pose
from samrl_hardware.calibration import CalibrationError, parse_pose, pose_to_yaml, read_yaml_file

MIN_SAMPLES = 3                     # calibrateHandEye needs two motions with non-parallel axes
MIN_MOTION_ANGLE_RAD = np.radians(5.0)   # smaller relative rotations carry no information (noise)
MIN_AXIS_SPREAD_RAD = np.radians(10.0)   # the motions' rotation axes must not all be parallel
MAX_FLANGE_DISTANCE_M = 3.0
MAX_TARGET_DISTANCE_M = 5.0
METHODS = ('tsai', 'park', 'horaud', 'andreff', 'daniilidis')
DEFAULT_METHOD = 'park'
M_TO_MM = 1000.0


@dataclass(frozen=True)
class HandEyeSample:
    flange_in_base: Pose            # T_base_flange
    target_in_camera: Pose          # T_camera_target


@dataclass(frozen=True)
class Residual:
    """Spread of the implied base -> target transforms about their mean."""

    translation_rms_mm: float
    translation_max_mm: float
    rotation_rms_deg: float
    rotation_max_deg: float
    target_in_base: Pose            # the mean

    def summary(self) -> str:
        return (f'base -> target consistency: {self.translation_rms_mm:.2f} mm rms '
                f'({self.translation_max_mm:.2f} max), '
                f'{self.rotation_rms_deg:.3f} deg rms ({self.rotation_max_deg:.3f} max)')


@dataclass(frozen=True)
class HandEyeResult:
    camera_in_flange: Pose          # X = T_flange_camera
    residual: Residual
    method: str
    samples: int

    def to_yaml(self) -> dict:
        """The `hand_eye` section of the calibration file, with the residual for the record."""
        r = self.residual
        return {'hand_eye': pose_to_yaml(self.camera_in_flange),
                'hand_eye_residual': {'method': self.method, 'samples': self.samples,
                                      'translation_rms_mm': round(r.translation_rms_mm, 3),
                                      'translation_max_mm': round(r.translation_max_mm, 3),
                                      'rotation_rms_deg': round(r.rotation_rms_deg, 4),
                                      'rotation_max_deg': round(r.rotation_max_deg, 4)}}


# -- samples ------------------------------------------------------------------------------------------

def load_samples(path: str | Path) -> list[HandEyeSample]:
    """Read a samples file; CalibrationError naming the file and the sample otherwise."""
    return read_yaml_file(path, 'samples file', parse_samples)


def parse_samples(document: Any) -> list[HandEyeSample]:
    if not isinstance(document, dict) or not isinstance(document.get('samples'), list):
        raise CalibrationError('expected a mapping with a list "samples"')
    samples = []
    for index, item in enumerate(document['samples']):
        name = f'samples[{index}]'
        if not isinstance(item, dict) or set(item) != {'flange_in_base', 'target_in_camera'}:
            raise CalibrationError(f'{name}: expected exactly flange_in_base and target_in_camera')
        flange = parse_pose(item['flange_in_base'], f'{name}.flange_in_base', MAX_FLANGE_DISTANCE_M)
        target = parse_pose(item['target_in_camera'], f'{name}.target_in_camera', MAX_TARGET_DISTANCE_M)
        samples.append(HandEyeSample(flange, target))
    return samples


def check_samples(samples: list[HandEyeSample]) -> None:
    """CalibrationError unless the flange rotated enough, about axes that are not all parallel."""
    if len(samples) < MIN_SAMPLES:
        raise CalibrationError(f'{len(samples)} samples; the hand-eye calibration needs at least {MIN_SAMPLES}')
    first = Rotation.from_quat(samples[0].flange_in_base.quaternion)
    motions = [(first.inv() * Rotation.from_quat(s.flange_in_base.quaternion)).as_rotvec() for s in samples[1:]]
    axes = [m / np.linalg.norm(m) for m in motions if np.linalg.norm(m) > MIN_MOTION_ANGLE_RAD]
    if len(axes) < 2:
        raise CalibrationError(f'the flange turned by more than {np.degrees(MIN_MOTION_ANGLE_RAD):g} deg in only '
                               f'{len(axes)} sample(s) after the first: record poses with larger rotations')
    spread = max(np.arccos(np.clip(abs(float(np.dot(axes[0], a))), 0.0, 1.0)) for a in axes[1:])
    if spread < MIN_AXIS_SPREAD_RAD:
        raise CalibrationError(f'every flange rotation is about nearly the same axis (spread {np.degrees(spread):.1f} '
                               f'deg): rotate the flange about at least two different axes')


# -- solving ------------------------------------------------------------------------------------------

def solve_hand_eye(samples: list[HandEyeSample], method: str = DEFAULT_METHOD) -> HandEyeResult:
    """X = T_flange_camera from the samples with cv2.calibrateHandEye, and its residual."""
    import cv2  # only here: everything else in samrl_hardware runs without OpenCV
    if method not in METHODS:
        raise CalibrationError(f'unknown method {method!r}; one of {", ".join(METHODS)}')
    check_samples(samples)
    flange_r = [s.flange_in_base.rotation for s in samples]
    flange_t = [np.asarray(s.flange_in_base.position).reshape(3, 1) for s in samples]
    target_r = [s.target_in_camera.rotation for s in samples]
    target_t = [np.asarray(s.target_in_camera.position).reshape(3, 1) for s in samples]
    flag = getattr(cv2, f'CALIB_HAND_EYE_{method.upper()}')
    rotation, translation = cv2.calibrateHandEye(flange_r, flange_t, target_r, target_t, method=flag)
    if not (np.all(np.isfinite(rotation)) and np.all(np.isfinite(translation))):
        raise CalibrationError(f'calibrateHandEye ({method}) gave no finite solution: check the samples')
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = _nearest_rotation(rotation), np.asarray(translation, dtype=float).reshape(3)
    camera_in_flange = Pose.from_matrix(matrix)
    return HandEyeResult(camera_in_flange, residual(samples, camera_in_flange), method, len(samples))


def residual(samples: list[HandEyeSample], camera_in_flange: Pose) -> Residual:
    """Spread of T_base_target_i = T_base_flange_i X T_camera_target_i about their mean."""
    targets = [s.flange_in_base * camera_in_flange * s.target_in_camera for s in samples]
    positions = np.array([t.position for t in targets])
    rotations = Rotation.from_quat([t.quaternion for t in targets])
    mean_position, mean_rotation = positions.mean(axis=0), rotations.mean()
    offsets_mm = np.linalg.norm(positions - mean_position, axis=1) * M_TO_MM
    angles_deg = np.degrees((mean_rotation.inv() * rotations).magnitude())
    return Residual(float(np.sqrt(np.mean(offsets_mm ** 2))), float(offsets_mm.max()),
                    float(np.sqrt(np.mean(angles_deg ** 2))), float(angles_deg.max()),
                    Pose(mean_position, mean_rotation.as_quat()))


def _nearest_rotation(matrix) -> np.ndarray:
    """The proper rotation nearest to `matrix` (SVD), removing the solver's rounding."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=float))
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def write_result(path: str | Path, result: HandEyeResult) -> None:
    """The result as a YAML fragment: paste its hand_eye section into the calibration file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ('# Hand-eye calibration (samrl calibrate hand-eye): camera_color_optical_frame in the Rizon\'s flange.\n'
              '# Copy the hand_eye section into the calibration file (samrl_bringup/config/calibration.yaml).\n')
    path.write_text(header + yaml.safe_dump(result.to_yaml(), sort_keys=False, default_flow_style=None))
