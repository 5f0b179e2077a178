"""The calibration file: validation with errors that name the field, and the /tf_static edges."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from samrl_hardware.calibration import (
    CalibrationError,
    intrinsics_mismatch,
    load_calibration,
    parse_calibration,
)

from samrl_description.camera import CameraIntrinsics
from samrl_description.geometry import Pose

EXAMPLE = Path(__file__).resolve().parents[2] / 'samrl_bringup' / 'config' / 'calibration.yaml'


@pytest.fixture
def document() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def _edit(document: dict, path: str, value) -> dict:
    """A copy of `document` with the dotted `path` set to `value` (or removed when value is ...)."""
    edited = copy.deepcopy(document)
    *parents, last = path.split('.')
    node = edited
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return edited


def test_the_example_file_loads_with_its_documented_frames():
    calibration = load_calibration(EXAMPLE)
    edges = [(e.parent, e.child) for e in calibration.static_edges()]
    assert edges == [('world', 'base'), ('world', 'rizon_world'), ('rizon_flange', 'camera_link')]
    assert calibration.intrinsics == CameraIntrinsics(615.0, 615.0, 320.0, 240.0, 640, 480)


def test_the_edges_put_the_optical_frame_where_the_hand_eye_says():
    calibration = load_calibration(EXAMPLE)
    edges = {e.child: e.pose for e in calibration.static_edges()}
    # realsense2_camera's camera_link -> optical edge completes the chain through the flange
    optical_in_flange = edges['camera_link'] * calibration.optical_in_camera_root
    assert optical_in_flange.is_close(calibration.hand_eye, atol=1e-9)
    assert edges['rizon_world'].is_close(calibration.rizon_base_in_world)
    assert edges['base'].is_close(Pose.identity())


def test_the_example_matches_the_simulated_camera_mount():
    """The example's values are the sim's URDF: the optical frame 15 mm left of and 32.5 mm above the flange."""
    hand_eye = load_calibration(EXAMPLE).hand_eye
    assert np.allclose(hand_eye.position, [0.0, 0.015, 0.0325])
    assert np.allclose(hand_eye.rotation[:, 2], [0.0, 0.0, 1.0])        # looking along the flange's z


def test_frames_may_be_left_out_and_take_the_defaults(document):
    calibration = parse_calibration(_edit(document, 'frames', ...))
    assert calibration.frames['franka_base'] == 'panda_link0' and calibration.frames['rizon_root'] == 'rizon_world'


@pytest.mark.parametrize('path, value, words', [
    ('hand_eye', ..., "missing field 'hand_eye'"),
    ('hand_eye.quaternion_xyzw', ..., "hand_eye: missing field 'quaternion_xyzw'"),
    ('hand_eye.rotation', [0, 0, 0, 1], "hand_eye: unknown field 'rotation'"),
    ('hand_eye.quaternion_xyzw', [0.0, 0.0, 0.0, 2.0], 'hand_eye.quaternion_xyzw: norm 2 is not 1'),
    ('hand_eye.quaternion_xyzw', [0.0, 0.0, 0.0, 0.0], 'hand_eye.quaternion_xyzw: norm 0 is not 1'),
    ('hand_eye.translation_m', [0.0, 0.0], 'hand_eye.translation_m: expected a list of 3 numbers'),
    ('hand_eye.translation_m', [0.0, math.nan, 0.0], 'hand_eye.translation_m: every entry must be a finite number'),
    ('hand_eye.translation_m', [0.0, '1', 0.0], 'hand_eye.translation_m: every entry must be a finite number'),
    ('hand_eye.translation_m', [0.0, True, 0.0], 'hand_eye.translation_m: every entry must be a finite number'),
    ('hand_eye.translation_m', [0.0, 15.0, 32.5],
     'hand_eye.translation_m: 35.795 m from the parent frame is implausible'),
    ('rizon_base_in_franka_base.translation_m', [550.0, -650.0, 0.0], 'are the units metres?'),
    ('rizon_base_in_franka_base', [0.55, -0.65, 0.0], 'rizon_base_in_franka_base: expected a mapping'),
    ('optical_in_camera_root.quaternion_xyzw', None, 'optical_in_camera_root.quaternion_xyzw: expected a list of 4'),
    ('camera_intrinsics.fx', -615.0, 'camera_intrinsics: intrinsics need finite positive focal lengths'),
    ('camera_intrinsics.width', 640.5, 'camera_intrinsics.width: 640.5 is not an integer number of pixels'),
    ('camera_intrinsics.cy', 'centre', "camera_intrinsics.cy: 'centre' is not a number of pixels"),
    ('camera_intrinsics.k', [1, 2, 3], "camera_intrinsics: unknown field 'k'"),
    ('frames.rizon_flange', '/rizon_flange', 'frames.rizon_flange: \'/rizon_flange\' is not a tf frame id'),
    ('frames.camera_root', 'rizon_flange', "frames: 'rizon_flange' names more than one frame"),
    ('frames.gripper', 'hand', "frames: unknown field 'gripper'"),
    ('format', 2, 'format: version 2 is not supported'),
    ('extrinsics', {}, "the calibration file: unknown field 'extrinsics'"),
])
def test_a_bad_field_is_named_in_the_error(document, path, value, words):
    with pytest.raises(CalibrationError) as error:
        parse_calibration(_edit(document, path, value))
    assert words in str(error.value)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(CalibrationError, match='cannot read the calibration file'):
        load_calibration(tmp_path / 'missing.yaml')
    broken = tmp_path / 'broken.yaml'
    broken.write_text('hand_eye: [unclosed\n')
    with pytest.raises(CalibrationError, match=f'{broken}: not valid YAML'):
        load_calibration(broken)
    empty = tmp_path / 'empty.yaml'
    empty.write_text('')
    with pytest.raises(CalibrationError, match=f'{empty}: the calibration file: expected a mapping'):
        load_calibration(empty)


def test_quaternions_are_normalised_within_the_tolerance(document):
    calibration = parse_calibration(_edit(document, 'hand_eye.quaternion_xyzw', [0.0, 0.0, -0.7071, 0.7071]))
    assert np.isclose(np.linalg.norm(calibration.hand_eye.quaternion), 1.0)


def test_intrinsics_mismatch_names_the_difference():
    calibrated = CameraIntrinsics(615.0, 615.0, 320.0, 240.0, 640, 480)
    assert intrinsics_mismatch(calibrated, CameraIntrinsics(616.0, 614.5, 321.0, 239.0, 640, 480)) == ''
    assert 'streams 1280x720 px, calibrated for 640x480' in intrinsics_mismatch(
        calibrated, CameraIntrinsics(920.0, 920.0, 640.0, 360.0, 1280, 720))
    assert intrinsics_mismatch(calibrated, CameraIntrinsics(615.0, 615.0, 330.0, 240.0, 640, 480)).startswith(
        'cx is 330.00 px on the camera, 320.00 px calibrated')
