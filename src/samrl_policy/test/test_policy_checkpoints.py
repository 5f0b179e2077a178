"""Actor and Q checkpoints: they round-trip through torch.load(weights_only=True), and every
unusable file is refused with PolicyCheckpointError naming the file and the problem. A pickle
that would run code is refused by the weights-only loader and never executed.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_toys import PROPRIO_DIM, SMALL_NETWORK  # noqa: E402

from samrl_policy.checkpoints import (  # noqa: E402
    PolicyCheckpointError,
    card_path,
    load_actor,
    load_network,
    load_q,
    load_training_state,
    save_network,
    save_training_state,
)
from samrl_policy.networks import Actor, NetworkConfig, QNetwork  # noqa: E402

RECORD = {'command': 'samrl train actor needle_threading --seed 3', 'seed': 3,
          'data': {'rounds': 2, 'samples': 120}, 'metrics': {'heldout_l2': 0.25, 'success_rate': 0.5}}
RANDOM_BYTES = 2000


class RunsCode:
    """Unpickling this would run a shell command creating `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    """(directory, actor, its path, Q, its path)."""
    directory = tmp_path_factory.mktemp('checkpoints')
    torch.manual_seed(0)
    actor, q = Actor(SMALL_NETWORK), QNetwork(SMALL_NETWORK)
    actor.proprio.fit(torch.randn(10, PROPRIO_DIM))
    q.fit_return_scale(torch.tensor([-3.0, 1.0, 2.0]))
    save_network(directory / 'actor.pt', actor, RECORD)
    save_network(directory / 'q.pt', q, RECORD)
    return directory, actor, directory / 'actor.pt', q, directory / 'q.pt'


def _inputs():
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(2, 5, 32, 32, generator=generator), torch.randn(2, PROPRIO_DIM, generator=generator),
            torch.rand(2, 7, generator=generator) * 2 - 1)


def test_networks_round_trip_with_the_weights_only_loader(saved):
    _, actor, actor_path, q, q_path = saved
    image, proprio, action = _inputs()
    assert isinstance(torch.load(actor_path, weights_only=True), dict)
    loaded_actor, record = load_actor(actor_path)
    loaded_q, _ = load_q(q_path)
    assert record == RECORD and not loaded_actor.training
    assert torch.equal(loaded_actor(image, proprio), actor.eval()(image, proprio))
    assert torch.equal(loaded_q(image, proprio, action), q.eval()(image, proprio, action))
    assert loaded_q.return_mean == q.return_mean and torch.equal(loaded_actor.proprio.std, actor.proprio.std)
    assert json.loads(card_path(actor_path).read_text()) == RECORD
    assert not list(actor_path.parent.glob('*.partial'))


def test_a_training_state_keeps_the_optimizer_and_progress(tmp_path):
    actor = Actor(SMALL_NETWORK)
    optimizer = torch.optim.Adam(actor.parameters(), lr=1e-3)
    image, proprio, _ = _inputs()
    actor(image, proprio).sum().backward()
    optimizer.step()
    save_training_state(tmp_path / 'state.pt', actor, optimizer, {'history': [{'epoch': 0, 'loss': 1.5}]}, RECORD)
    loaded, optimizer_state, progress, record = load_training_state(tmp_path / 'state.pt', 'actor')
    restored = torch.optim.Adam(loaded.parameters(), lr=1e-3)
    restored.load_state_dict(optimizer_state)
    assert progress == {'history': [{'epoch': 0, 'loss': 1.5}]} and record == RECORD and loaded.training
    assert restored.state_dict()['state'][0]['step'] == optimizer.state_dict()['state'][0]['step']
    assert not card_path(tmp_path / 'state.pt').exists()            # training states have no card


def _edit(source: Path, target: Path, **changes) -> Path:
    torch.save({**torch.load(source, weights_only=True), **changes}, target)
    return target


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _saved(path: Path, value) -> Path:
    torch.save(value, path)
    return path


def bad_actor_files(d: Path, good: Path, q: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a pattern the message must match)."""
    (d / 'a_directory').mkdir()
    state = torch.load(good, weights_only=True)['state_dict']
    wider = NetworkConfig(**{**SMALL_NETWORK.to_dict(), 'feature_dim': 48}).to_dict()
    return {
        'missing': (d / 'missing.pt', 'no actor checkpoint at'),
        'directory': (d / 'a_directory', 'is a directory'),
        'empty': (_write(d / 'empty.pt', b''), 'is empty'),
        'random bytes': (_write(d / 'random.pt', np.random.default_rng(0).bytes(RANDOM_BYTES)), 'refused'),
        'truncated': (_write(d / 'cut.pt', good.read_bytes()[:1000]), 'not a torch checkpoint file|refused'),
        'code pickle': (_write(d / 'evil.pkl', pickle.dumps(RunsCode(marker))), 'refused'),
        'code in torch file': (_saved(d / 'evil.pt', RunsCode(marker)), 'unsupported GLOBAL'),
        'tensor': (_saved(d / 'tensor.pt', torch.zeros(3)), 'holds a Tensor'),
        'a Q function': (q, "not an actor checkpoint .*kind 'q_function'"),
        'other format': (_edit(good, d / 'format.pt', format=99), 'format 99'),
        'no config': (_edit(good, d / 'noconfig.pt', config=None), "'config' is NoneType"),
        'bad config': (_edit(good, d / 'config.pt', config={'layers': 3}), 'config does not describe an actor'),
        'other shapes': (_edit(good, d / 'shapes.pt', config=wider), 'of other shapes'),
        'missing weights': (_edit(good, d / 'noweights.pt', state_dict={}), 'missing'),
        'not finite': (_edit(good, d / 'nan.pt', state_dict={**state, 'head.0.bias': state['head.0.bias'] * np.nan}),
                       'not finite'),
        'record not a dict': (_edit(good, d / 'record.pt', record=['x']), "'record' is list"),
    }


def test_every_bad_actor_file_is_refused_naming_file_and_problem(saved, tmp_path):
    directory, _, actor_path, _, q_path = saved
    marker = tmp_path / 'code_ran'
    for name, (path, says) in bad_actor_files(tmp_path, actor_path, q_path, marker).items():
        with pytest.raises(PolicyCheckpointError) as info:
            load_actor(path)
        message = str(info.value)
        assert str(path) in message and re.search(says, message), (name, message)
    assert not marker.exists()


def test_a_plain_checkpoint_is_no_training_state_and_kinds_are_checked(saved):
    _, _, actor_path, _, q_path = saved
    with pytest.raises(PolicyCheckpointError, match="is no training state: 'optimizer'"):
        load_training_state(actor_path, 'actor')
    with pytest.raises(PolicyCheckpointError, match='not a Q function checkpoint'):
        load_q(actor_path)
    with pytest.raises(ValueError, match='unknown network kind'):
        load_network(q_path, 'critic')
