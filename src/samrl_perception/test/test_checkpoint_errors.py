"""Unusable checkpoints and refiners: refused with a message naming the file and the problem.

Every case is checked against the loaders in-process; a few representative ones also as
segmentation_node processes, which must exit with code 2 (bad parameter) and no traceback.
A pickle that would run code is refused by torch's weights-only loader and never executed.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from samrl_common.runtime.main import EXIT_BAD_PARAMETERS
from samrl_common.testing import isolated_environment
from samrl_perception.segmentation.model import MaskRCNNConfig, build_mask_rcnn
from samrl_perception.segmentation.refine import (
    MaskRefiner,
    RefinerConfig,
    RefinerError,
    load_refiner,
    save_refiner,
)
from samrl_perception.segmentation.segmenter import (
    CheckpointError,
    MaskRCNNSegmenter,
    load_checkpoint,
    save_checkpoint,
    weights_fingerprint,
)

SEGMENTATION = 'samrl_perception.segmentation_node'
SMALL_DETECTOR = MaskRCNNConfig(fpn_channels=16, box_head_dim=32, mask_head_channels=16, mask_head_layers=1)
SMALL_REFINER = RefinerConfig(crop_px=32, channels=(4, 8))
RANDOM_BYTES = 2000
PROCESS_TIMEOUT_S = 60.0        # per node process; they start together and mostly import torch
MAX_MESSAGE_LINES = 3           # what a refused start-up may print


class RunsCode:
    """Unpickling this would run a shell command creating `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def _edit(source: Path, target: Path, **changes) -> Path:
    """A copy of a checkpoint with some of its top-level entries replaced."""
    torch.save({**torch.load(source, weights_only=True), **changes}, target)
    return target


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _saved(path: Path, value) -> Path:
    torch.save(value, path)
    return path


def _common_cases(d: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    """Bad files of any kind: name -> (path, a pattern the message must match)."""
    (d / 'a_directory').mkdir()
    return {
        'directory': (d / 'a_directory', 'is a directory'),
        'empty': (_write(d / 'empty.pt', b''), 'is empty'),
        'random bytes': (_write(d / 'random.pt', np.random.default_rng(0).bytes(RANDOM_BYTES)), 'refused'),
        'text': (_write(d / 'notes.txt', b'not a checkpoint\n'), 'refused|not a torch checkpoint file'),
        'code pickle': (_write(d / 'evil.pkl', pickle.dumps(RunsCode(marker))), 'refused'),
        'code in torch file': (_saved(d / 'evil.pt', RunsCode(marker)), 'unsupported GLOBAL'),
        'tensor': (_saved(d / 'tensor.pt', torch.zeros(3)), 'holds a Tensor'),
        'list': (_saved(d / 'list.pt', [1, 2]), 'holds a list'),
    }


def detector_cases(d: Path, good: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    other = MaskRCNNConfig(**{**SMALL_DETECTOR.to_dict(), 'fpn_channels': 32})
    return {
        **_common_cases(d, marker),
        'missing': (d / 'missing.pt', 'no checkpoint at'),
        'dict without keys': (_saved(d / 'dict.pt', {'weights': torch.zeros(2)}), 'checkpoint format None'),
        'other classes': (_edit(good, d / 'classes.pt', classes=['cat']), 'trained for classes'),
        'no config': (_edit(good, d / 'noconfig.pt', config=None), "'config' is NoneType"),
        'bad config': (_edit(good, d / 'config.pt', config={'layers': 3}), 'does not describe a Mask R-CNN'),
        'wrong shapes': (_edit(good, d / 'shapes.pt', config=other.to_dict()), 'of other shapes'),
        'missing weights': (_edit(good, d / 'noweights.pt', state_dict={}), 'missing'),
        'no tensors': (_edit(good, d / 'notensors.pt', state_dict={'w': 1}), 'no named tensors'),
        'record not a dict': (_edit(good, d / 'record.pt', record=['x']), "'record' is list"),
        'threshold not a number': (_edit(good, d / 'threshold.pt', record={'score_threshold': 'high'}),
                                   'score_threshold'),
    }


def refiner_cases(d: Path, good: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    wider = {'crop_px': 32, 'channels': [8, 16]}
    return {
        **_common_cases(d, marker),
        'missing': (d / 'missing.pt', 'no mask refiner at'),
        'dict without keys': (_saved(d / 'dict.pt', {'weights': torch.zeros(2)}), 'not a mask refiner'),
        'a detector': (_saved(d / 'detector.pt', {'format': 1, 'classes': []}), 'not a mask refiner'),
        'bad config': (_edit(good, d / 'config.pt', config={'crop_px': 32}), 'does not describe a mask refiner'),
        'no levels': (_edit(good, d / 'levels.pt', config={'crop_px': 32, 'channels': []}),
                      'does not describe a mask refiner'),
        'wrong shapes': (_edit(good, d / 'shapes.pt', config=wider), 'of other shapes'),
        'record not a dict': (_edit(good, d / 'record.pt', record=3), "'record' is int"),
        'bad fingerprint': (_edit(good, d / 'fingerprint.pt', record={'detector_fingerprint': 7}),
                            'detector_fingerprint'),
    }


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """(good detector, good refiner, marker that code in a pickle would create, directory for cases)."""
    d = tmp_path_factory.mktemp('checkpoints')
    torch.manual_seed(0)
    save_checkpoint(d / 'detector.pt', build_mask_rcnn(SMALL_DETECTOR), SMALL_DETECTOR, {'command': 'test'})
    save_refiner(d / 'refiner.pt', MaskRefiner(SMALL_REFINER), {'command': 'test'})
    return d / 'detector.pt', d / 'refiner.pt', d / 'code_ran', d


@pytest.fixture(scope='module')
def detector_bad(files):
    detector, _, marker, d = files
    (d / 'detector_cases').mkdir()
    return detector_cases(d / 'detector_cases', detector, marker)


@pytest.fixture(scope='module')
def refiner_bad(files):
    _, refiner, marker, d = files
    (d / 'refiner_cases').mkdir()
    return refiner_cases(d / 'refiner_cases', refiner, marker)


def _refusal(load: Callable[[Path], object], error: type[ValueError], path: Path) -> str:
    with pytest.raises(error) as info:
        load(path)
    return str(info.value)


def test_every_bad_detector_checkpoint_is_refused_naming_file_and_problem(files, detector_bad):
    _, _, marker, _ = files
    for name, (path, says) in detector_bad.items():
        message = _refusal(MaskRCNNSegmenter, CheckpointError, path)
        assert str(path) in message and re.search(says, message), (name, message)
    assert not marker.exists()


def test_every_bad_refiner_is_refused_naming_file_and_problem(files, refiner_bad):
    detector, _, marker, _ = files
    for name, (path, says) in refiner_bad.items():
        message = _refusal(lambda p: MaskRCNNSegmenter(detector, refiner=p), RefinerError, path)
        assert str(path) in message and re.search(says, message), (name, message)
    assert not marker.exists()


def test_the_card_file_beside_a_checkpoint_is_not_read(files, tmp_path):
    """The card (_card.json) documents a checkpoint; the loader reads the record stored inside it."""
    detector, _, _, _ = files
    copy = tmp_path / 'm.pt'
    copy.write_bytes(detector.read_bytes())
    assert load_checkpoint(copy)['record'] == {'command': 'test'}           # no card at all
    (tmp_path / 'm_card.json').write_text('{"command": ')                   # a malformed card
    assert MaskRCNNSegmenter(copy).record == {'command': 'test'}


def test_a_refiner_of_another_detector_is_used_without_its_thresholds(files, tmp_path):
    detector, _, _, _ = files
    record = {'score_threshold': 0.1, 'detector_fingerprint': weights_fingerprint(build_mask_rcnn().state_dict())}
    save_refiner(tmp_path / 'r.pt', MaskRefiner(SMALL_REFINER), record)
    segmenter = MaskRCNNSegmenter(detector, refiner=tmp_path / 'r.pt')
    assert segmenter.refiner is not None and segmenter.refiner_calibrated_here is False
    assert segmenter.score_threshold != record['score_threshold']


def _run_nodes(runs: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """segmentation_node with each list of parameters, all started at once (each mostly imports torch)."""
    env = isolated_environment()
    processes = [subprocess.Popen([sys.executable, '-m', SEGMENTATION, '--ros-args',
                                   *(arg for param in params for arg in ('-p', param))],
                                  env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for params in runs]
    try:
        return [subprocess.CompletedProcess(p.args, p.wait(PROCESS_TIMEOUT_S), p.communicate()[0])
                for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


@pytest.mark.processes
def test_node_exits_with_code_2_and_a_message_for_bad_files(files, detector_bad, refiner_bad):
    detector, _, marker, _ = files
    cases = [('checkpoint', detector_bad['missing'][0], 'does not exist')]      # caught with the parameters
    cases += [('checkpoint', *detector_bad[name]) for name in ('code in torch file', 'wrong shapes')]
    cases += [('refiner', *refiner_bad['random bytes'])]
    # Refiner cases take the good small detector, so that only the refiner is wrong.
    results = _run_nodes([[f'checkpoint:={path}'] if param == 'checkpoint' else
                          [f'checkpoint:={detector}', f'refiner:={path}'] for param, path, _ in cases])
    for (param, path, says), result in zip(cases, results):
        output = result.stdout
        assert result.returncode == EXIT_BAD_PARAMETERS, (param, path, output[-2000:])
        assert 'Traceback' not in output and len(output.strip().splitlines()) <= MAX_MESSAGE_LINES, output
        assert param in output and str(path) in output and re.search(says, output), output
    assert not marker.exists()
