"""Actor and Q checkpoints: plain dicts of tensors and numbers, read with torch.load(weights_only=True).

A checkpoint holds:

* 'format', 'kind' ('actor' or 'q_function'), 'config' (NetworkConfig as a dict);
* 'state_dict': the weights and the normalisation buffers (proprioception mean / std, and for Q
  the returns' mean / std: networks.py);
* 'record': the card: exact command, seed, data, metrics (numbers, strings, lists, dicts);
* for a training state only, 'optimizer' (its state dict) and 'progress' (epoch, history), so
  that a stopped run goes on from its last epoch.

Beside every checkpoint `<stem>_card.json` repeats the record for people; loaders never read it.
Files are written atomically (a temporary file renamed into place), so a run stopped while
saving leaves the previous checkpoint, not a truncated one.

Unusable files (missing, empty, not a torch file, a pickle that would run code, another kind,
another format, weights that do not fit the config) raise PolicyCheckpointError naming the file
and the problem; the file-level checks are the perception checkpoints' (refine.py), so every
checkpoint of the project fails the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from samrl_perception.segmentation.refine import load_weights, read_weights_file
from samrl_policy.networks import Actor, NetworkConfig, QNetwork

CHECKPOINT_FORMAT = 1
NETWORKS: dict[str, type[nn.Module]] = {Actor.kind: Actor, QNetwork.kind: QNetwork}
TRAINING_KEYS = ('optimizer', 'progress')
DESCRIPTIONS = {Actor.kind: 'an actor', QNetwork.kind: 'a Q function'}


class PolicyCheckpointError(ValueError):
    """An actor or Q checkpoint that is missing, unreadable or does not fit its network."""


def card_path(checkpoint: Path) -> Path:
    return Path(checkpoint).with_name(f'{Path(checkpoint).stem}_card.json')


def write_card(checkpoint: Path, record: dict) -> None:
    card_path(checkpoint).write_text(json.dumps(record, indent=2) + '\n')


def _atomic_save(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + '.partial')
    torch.save(payload, partial)
    os.replace(partial, path)


def save_network(path: Path, network: Actor | QNetwork, record: dict) -> None:
    """A shipped checkpoint and its card."""
    path = Path(path)
    _atomic_save(_payload(network, record), path)
    write_card(path, record)


def save_training_state(path: Path, network: Actor | QNetwork, optimizer: torch.optim.Optimizer,
                        progress: dict, record: dict) -> None:
    """A checkpoint to go on training from: the network, its optimizer and where training stands."""
    payload = {**_payload(network, record), 'optimizer': optimizer.state_dict(), 'progress': progress}
    _atomic_save(payload, Path(path))


def _payload(network: Actor | QNetwork, record: dict) -> dict:
    return {'format': CHECKPOINT_FORMAT, 'kind': network.kind, 'config': network.config.to_dict(),
            'state_dict': {name: value.detach().clone() for name, value in network.state_dict().items()},
            'record': record}


def load_network(path: Path, kind: str) -> tuple[Actor | QNetwork, dict]:
    """(the network of `kind` in eval mode, its record)."""
    network, payload = _network_and_payload(Path(path), kind)
    return network, payload['record']


def load_actor(path: Path) -> tuple[Actor, dict]:
    return load_network(path, Actor.kind)


def load_q(path: Path) -> tuple[QNetwork, dict]:
    return load_network(path, QNetwork.kind)


def load_training_state(path: Path, kind: str) -> tuple[Actor | QNetwork, dict, dict, dict]:
    """(network in train mode, optimizer state dict, progress, record) of a training state."""
    path = Path(path)
    network, payload = _network_and_payload(path, kind)
    for key in TRAINING_KEYS:
        if not isinstance(payload.get(key), dict):
            raise PolicyCheckpointError(f'{path} is no training state: {key!r} is '
                                        f'{type(payload.get(key)).__name__}, expected a dict')
    return network.train(), payload['optimizer'], payload['progress'], payload['record']


def _network_and_payload(path: Path, kind: str) -> tuple[Actor | QNetwork, dict]:
    if kind not in NETWORKS:
        raise ValueError(f'unknown network kind {kind!r}; one of {sorted(NETWORKS)}')
    if not path.exists():
        raise PolicyCheckpointError(f'no {kind} checkpoint at {path}; train one with `samrl train`')
    name = DESCRIPTIONS[kind]
    payload = read_weights_file(path, PolicyCheckpointError)
    if payload.get('kind') != kind or payload.get('format') != CHECKPOINT_FORMAT:
        raise PolicyCheckpointError(f'{path} is not {name} checkpoint of format {CHECKPOINT_FORMAT} '
                                    f'(kind {payload.get("kind")!r}, format {payload.get("format")!r})')
    _check_fields(payload, path)
    try:
        network = NETWORKS[kind](NetworkConfig.from_dict(payload['config']))
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise PolicyCheckpointError(f'{path}: its config does not describe {name} '
                                    f'({type(exc).__name__}: {exc})') from exc
    load_weights(network, payload['state_dict'], path, PolicyCheckpointError)
    return network.eval(), payload


def _check_fields(payload: dict, path: Path) -> None:
    for key in ('config', 'state_dict', 'record'):
        if not isinstance(payload.get(key), dict):
            raise PolicyCheckpointError(f'{path}: {key!r} is {type(payload.get(key)).__name__}, expected a dict')
    bad = [name for name, value in payload['state_dict'].items()
           if not isinstance(name, str) or not isinstance(value, torch.Tensor)]
    if bad:
        raise PolicyCheckpointError(f'{path}: state_dict entries that are no named tensors: {bad[:3]}')
    nonfinite = [name for name, value in payload['state_dict'].items()
                 if value.is_floating_point() and not torch.isfinite(value).all()]
    if nonfinite:
        raise PolicyCheckpointError(f'{path}: weights that are not finite: {nonfinite[:3]}')
