"""Hand-eye calibration on synthetic samples with a known camera mount, with and without noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from samrl_hardware.calibration import CalibrationError, load_calibration, pose_to_yaml
from samrl_hardware.handeye import METHODS, HandEyeSample, load_samples, residual, solve_hand_eye
from scipy.spatial.transform import Rotation

from samrl_bringup.cli import main as samrl
from samrl_description.geometry import Pose

EXAMPLE = Path(__file__).resolve().parents[2] / 'samrl_bringup' / 'config' / 'calibration.yaml'
TRUE_HAND_EYE = Pose(np.array([0.012, 0.018, 0.034]),
                     Rotation.from_euler('xyz', [2.0, -3.0, -88.0], degrees=True).as_quat())
TRUE_TARGET_IN_BASE = Pose(np.array([0.62, 0.08, 0.01]), Rotation.from_euler('z', 25.0, degrees=True).as_quat())
FLANGE_DOWN = Rotation.from_euler('x', 180.0, degrees=True)     # flange z pointing at the table
SAMPLES = 20
TILT_RAD = 0.35                     # spread of the flange's orientation about looking down (~20 deg)
DETECTION_NOISE_M, DETECTION_NOISE_RAD = 0.0005, np.radians(0.2)     # a ChArUco pose at ~0.5 m
KINEMATIC_NOISE_M, KINEMATIC_NOISE_RAD = 0.0001, np.radians(0.02)    # the arm's forward kinematics
EXACT_M, EXACT_RAD = 1e-6, 1e-6
NOISY_ERROR_M, NOISY_ERROR_DEG = 0.003, 0.6     # what 20 noisy samples must reach (40 seeds: at most 1.8 mm, 0.41 deg)


def _perturb(pose: Pose, rng, sigma_m: float, sigma_rad: float) -> Pose:
    rotation = Rotation.from_rotvec(rng.normal(0.0, sigma_rad, 3)) * Rotation.from_quat(pose.quaternion)
    return Pose(np.asarray(pose.position) + rng.normal(0.0, sigma_m, 3), rotation.as_quat())


def synthetic_samples(seed: int, noisy: bool, count: int = SAMPLES) -> list[HandEyeSample]:
    """Flange poses over the table looking down; the target seen through the true mount."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        rotation = Rotation.from_rotvec(rng.normal(0.0, TILT_RAD, 3)) * FLANGE_DOWN
        flange = Pose(np.array([0.6, 0.05, 0.45]) + rng.uniform(-0.12, 0.12, 3), rotation.as_quat())
        target_in_camera = (flange * TRUE_HAND_EYE).inverse() * TRUE_TARGET_IN_BASE
        if noisy:
            flange = _perturb(flange, rng, KINEMATIC_NOISE_M, KINEMATIC_NOISE_RAD)
            target_in_camera = _perturb(target_in_camera, rng, DETECTION_NOISE_M, DETECTION_NOISE_RAD)
        samples.append(HandEyeSample(flange, target_in_camera))
    return samples


def _error(found: Pose, truth: Pose) -> tuple[float, float]:
    """(m, deg) between two poses."""
    turn = Rotation.from_quat(found.quaternion) * Rotation.from_quat(truth.quaternion).inv()
    return float(np.linalg.norm(found.position - truth.position)), float(np.degrees(turn.magnitude()))


@pytest.mark.parametrize('method', METHODS)
def test_exact_samples_give_the_true_mount_and_no_residual(method):
    result = solve_hand_eye(synthetic_samples(0, noisy=False), method)
    error_m, error_deg = _error(result.camera_in_flange, TRUE_HAND_EYE)
    assert error_m < EXACT_M and np.radians(error_deg) < EXACT_RAD
    assert result.residual.translation_max_mm < 1e-3 and result.residual.rotation_max_deg < 1e-4
    assert result.residual.target_in_base.is_close(TRUE_TARGET_IN_BASE, atol=1e-6)


@pytest.mark.parametrize('seed', [1, 2, 3])
@pytest.mark.parametrize('method', ['park', 'tsai', 'daniilidis'])
def test_noisy_samples_give_the_mount_within_bounds_and_an_honest_residual(method, seed):
    result = solve_hand_eye(synthetic_samples(seed, noisy=True), method)
    error_m, error_deg = _error(result.camera_in_flange, TRUE_HAND_EYE)
    assert error_m < NOISY_ERROR_M and error_deg < NOISY_ERROR_DEG, (error_m, error_deg)
    # the residual reflects the noise, not 0: the detection's 0.2 deg per axis is ~0.35 deg of rotation,
    # which at the target ~0.45 m away is ~1 mm
    r = result.residual
    assert 0.3 < r.translation_rms_mm < 3.0 and 0.15 < r.rotation_rms_deg < 0.8, r
    assert r.translation_max_mm >= r.translation_rms_mm and r.rotation_max_deg >= r.rotation_rms_deg


def test_the_residual_grows_with_a_wrong_mount():
    samples = synthetic_samples(0, noisy=False)
    wrong = Pose(TRUE_HAND_EYE.position + np.array([0.01, 0.0, 0.0]), TRUE_HAND_EYE.quaternion)
    assert residual(samples, wrong).translation_rms_mm > 3.0
    assert residual(samples, TRUE_HAND_EYE).translation_rms_mm < 1e-6


@pytest.mark.parametrize('samples, words', [
    (lambda s: s[:2], '2 samples; the hand-eye calibration needs at least 3'),
    (lambda s: [HandEyeSample(Pose(x.flange_in_base.position, s[0].flange_in_base.quaternion), x.target_in_camera)
                for x in s], 'turned by more than 5 deg in only 0 sample'),
])
def test_degenerate_sample_sets_are_refused(samples, words):
    with pytest.raises(CalibrationError, match=words):
        solve_hand_eye(samples(synthetic_samples(0, noisy=False)), 'park')


def test_rotations_about_one_axis_only_are_refused():
    flanges = [Pose(np.array([0.5, 0.0, 0.4]) + 0.01 * i, (Rotation.from_euler('z', 20.0 * i, degrees=True)
                                                          * FLANGE_DOWN).as_quat()) for i in range(6)]
    samples = [HandEyeSample(f, (f * TRUE_HAND_EYE).inverse() * TRUE_TARGET_IN_BASE) for f in flanges]
    with pytest.raises(CalibrationError, match='nearly the same axis'):
        solve_hand_eye(samples)


def _samples_document(samples: list[HandEyeSample]) -> dict:
    return {'samples': [{'flange_in_base': pose_to_yaml(s.flange_in_base),
                         'target_in_camera': pose_to_yaml(s.target_in_camera)} for s in samples]}


def test_samples_file_errors_name_the_sample(tmp_path):
    document = _samples_document(synthetic_samples(0, noisy=False, count=4))
    document['samples'][2]['target_in_camera']['quaternion_xyzw'] = [0.0, 0.0, 0.0, 3.0]
    path = tmp_path / 'samples.yaml'
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(CalibrationError, match=r'samples\[2\].target_in_camera.quaternion_xyzw: norm 3 is not 1'):
        load_samples(path)
    path.write_text(json.dumps({'samples': [{'flange_in_base': document['samples'][0]['flange_in_base']}]}))
    with pytest.raises(CalibrationError, match=r'samples\[0\]: expected exactly flange_in_base and target_in_camera'):
        load_samples(path)


def test_samrl_calibrate_hand_eye_writes_a_hand_eye_section_the_calibration_reads(tmp_path, capsys):
    samples, out = tmp_path / 'samples.json', tmp_path / 'hand_eye.yaml'
    samples.write_text(json.dumps(_samples_document(synthetic_samples(4, noisy=True))))
    assert samrl(['calibrate', 'hand-eye', '--samples', str(samples), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'hand-eye (park, 20 samples)' in printed
    assert 'base -> target consistency:' in printed and ' mm rms' in printed
    written = yaml.safe_load(out.read_text())
    assert written['hand_eye_residual']['samples'] == 20 and written['hand_eye_residual']['translation_rms_mm'] > 0
    # pasted into the example calibration, it loads and carries the computed mount
    calibration = yaml.safe_load(EXAMPLE.read_text())
    calibration['hand_eye'] = written['hand_eye']
    merged = tmp_path / 'calibration.yaml'
    merged.write_text(yaml.safe_dump(calibration))
    error_m, error_deg = _error(load_calibration(merged).hand_eye, TRUE_HAND_EYE)
    assert error_m < NOISY_ERROR_M and error_deg < NOISY_ERROR_DEG


def test_samrl_calibrate_hand_eye_reports_bad_samples_without_a_traceback(tmp_path, capsys):
    samples = tmp_path / 'samples.yaml'
    samples.write_text(yaml.safe_dump(_samples_document(synthetic_samples(0, noisy=False, count=2))))
    assert samrl(['calibrate', 'hand-eye', '--samples', str(samples), '--out', str(tmp_path / 'x.yaml')]) == 2
    assert 'needs at least 3' in capsys.readouterr().err
