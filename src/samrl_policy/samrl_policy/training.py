"""The run driver of Learn@Sim: one directory per run, seeded, resumable, logged.

A run directory holds

    config.json             the stage's configuration; a rerun with another one is refused
    data/                   the collected shards (dataset.py), one file each, written atomically
    checkpoints/            networks and their cards; <name>_training.pt while a fit is under way
    logs/<table>.csv        one row per epoch / round, appended (TensorBoard gets the same scalars)
    logs/tensorboard/       SummaryWriter events: `tensorboard --logdir <run>/logs/tensorboard`
    <stage>_curves.png      the training curves (matplotlib, Agg)

Rerunning the same command goes on where the run stopped: finished shards and checkpoints are
kept, a fit goes on from its last finished epoch (network, optimizer and history are in its
training state), and a row already in the CSV is not written again. Every random draw comes
from a generator seeded by (run seed, what it is for, which round / epoch ...), never from a
stream carried across stages, so a resumed run makes the same draws as one that never stopped.

Episode seeds are disjoint by stage (`episode_seed`): DAgger's training episodes, its held-out
and evaluation episodes, Q's rollouts and the final evaluation (Table I) never share a seed.
"""

from __future__ import annotations

import csv
import json
import math
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samrl_policy.checkpoints import load_training_state, save_training_state
from samrl_policy.networks import Actor, QNetwork

CONFIG_FILE = 'config.json'
STAGE_SEED_STRIDE = 100_000_000         # env seeds of one stage lie in [base, base + STRIDE)
RUN_SEED_STRIDE = 100_000               # ... and of one run seed in a block of this many episodes
SEED_STAGES = {'dagger': 0, 'heldout': 1, 'evaluation': 2, 'q': 3, 'table1': 9}
CURVES_DPI = 100
FIT_TORCH_THREADS = 2                   # batches of 64 images: the keypoint actor's step takes 190 ms on
                                        # two threads, 335 ms on one (the rest of a run keeps its own count)


class RunError(ValueError):
    """A run directory that cannot be used for this command (another configuration)."""


def episode_seed(stage: str, run_seed: int, index: int) -> int:
    """The env seed of episode `index` of a stage; disjoint across stages and run seeds (index < RUN_SEED_STRIDE)."""
    if not 0 <= index < RUN_SEED_STRIDE or not 0 <= run_seed < STAGE_SEED_STRIDE // RUN_SEED_STRIDE:
        raise ValueError(f'episode {index} / run seed {run_seed} outside the seed blocks')
    return SEED_STAGES[stage] * STAGE_SEED_STRIDE + run_seed * RUN_SEED_STRIDE + index


def _key_number(key: str | int) -> int:
    return key & 0xFFFFFFFF if isinstance(key, int) else zlib.crc32(key.encode())   # seed words are uint32


def plain(value):
    """A config or record value as JSON has it (tuples -> lists), so stored and new configs compare equal."""
    return json.loads(json.dumps(value))


class Run:
    """One run directory: configuration, seeds, logs, progress bars, training states."""

    def __init__(self, directory: Path, config: dict, seed: int, command: str, progress: bool = True):
        self.directory = Path(directory)
        self.seed, self.command, self.progress = seed, command, progress
        self.data_dir = self.directory / 'data'
        self.checkpoint_dir = self.directory / 'checkpoints'
        self.log_dir = self.directory / 'logs'
        for folder in (self.data_dir, self.checkpoint_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.config = plain(config)
        self._check_config()
        self._writer = None
        self._last_step: dict[str, int] = {}

    def _check_config(self) -> None:
        path = self.directory / CONFIG_FILE
        if not path.exists():
            path.write_text(json.dumps(self.config, indent=2) + '\n')
            return
        stored = json.loads(path.read_text())
        differing = sorted(k for k in stored.keys() | self.config.keys() if stored.get(k) != self.config.get(k))
        if differing:
            raise RunError(f'{self.directory} is a run with another configuration (differs in {differing}); '
                           f'use a new run directory or the same settings')

    # -- seeds ------------------------------------------------------------------------------------
    def rng(self, *keys: str | int) -> np.random.Generator:
        """A generator for one purpose, e.g. rng('collect', round): the same draws in every (re)run."""
        return np.random.default_rng([self.seed, *map(_key_number, keys)])

    def torch_seed(self, *keys: str | int) -> int:
        return int(self.rng('torch', *keys).integers(2 ** 62))

    # -- logs -------------------------------------------------------------------------------------
    def log(self, table: str, step: int, row: dict) -> None:
        """One row of logs/<table>.csv and the same scalars in TensorBoard, unless this step is logged already."""
        path = self.log_dir / f'{table}.csv'
        if step <= self._logged_step(table, path):
            return
        row = {'step': step, **row}
        new_file = not path.exists()
        with open(path, 'a', newline='') as file:
            writer = csv.DictWriter(file, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        self._last_step[table] = step
        for name, value in row.items():
            if name != 'step' and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f'{table}/{name}', value, step)
        self.writer.flush()

    def _logged_step(self, table: str, path: Path) -> int:
        if table not in self._last_step:
            self._last_step[table] = max((int(row['step']) for row in read_table(path)), default=-1)
        return self._last_step[table]

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(log_dir=str(self.log_dir / 'tensorboard'))
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def bar(self, iterable: Iterable | None = None, **options):
        """A tqdm progress bar, silent when the run was started with progress=False."""
        from tqdm import tqdm
        return tqdm(iterable, disable=not self.progress, dynamic_ncols=True, **options)


class EpisodeLedger:
    """The episode a collection is in, kept in a file beside the shard it fills (`<shard>.running`).

    nimble's LCP solver can abort the whole process on a degenerate contact (ODE's assertion
    `alphanew != 0`, the same in every rerun of the episode), and no Python handler runs then. The
    file outlives such a death, and the resumed collection skips that episode instead of dying in it
    again. A Python exception, Ctrl-C included (and SIGTERM, which the training commands turn into an
    exit), marks the episode finished: only a process killed outright (an abort, SIGKILL) leaves it marked.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        state = json.loads(self.path.read_text()) if self.path.exists() else {'skipped': [], 'running': None}
        died_in = [] if state['running'] is None else [state['running']]
        self.skipped: list[int] = sorted({*state['skipped'], *died_in})

    def pending(self, seeds: Iterable[int]) -> list[int]:
        """`seeds` without the episodes an earlier process died in."""
        return [seed for seed in seeds if seed not in self.skipped]

    @contextmanager
    def episode(self, seed: int) -> Iterator[None]:
        self._write(seed)
        try:
            yield
        finally:
            self._write(None)

    def close(self) -> None:
        """The shard is saved: nothing is left to resume."""
        self.path.unlink(missing_ok=True)

    def _write(self, running: int | None) -> None:
        self.path.write_text(json.dumps({'skipped': self.skipped, 'running': running}) + '\n')


def config_image_zoom(config: dict) -> float:
    """The zoom of the renders a stage's config.json records; runs made before --zoom rendered at 1."""
    return float(config.get('image_zoom', 1.0))


def running_path(shard_path: Path) -> Path:
    """The EpisodeLedger file of a shard."""
    return Path(shard_path).with_suffix('.running')


def read_table(path: Path) -> list[dict]:
    """The rows of a log CSV (numbers as floats), [] when there is none."""
    if not Path(path).exists():
        return []
    with open(path, newline='') as file:
        return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(file)]


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


# -- a resumable fit ------------------------------------------------------------------------------
LEARNING_RATE_SCHEDULES = ('constant', 'cosine')


@dataclass(frozen=True)
class FitSettings:
    """When a fit stops: after `epochs` epochs, or as soon as an epoch's training loss is <= target_loss.
    schedule: 'constant' keeps learning_rate; 'cosine' decays it from learning_rate to 0 over the `epochs`
    budget (half a cosine, as torch's CosineAnnealingLR), so a long fit ends with small steps."""

    epochs: int
    learning_rate: float
    target_loss: float = 0.0
    schedule: str = 'constant'

    def __post_init__(self) -> None:
        if self.schedule not in LEARNING_RATE_SCHEDULES:
            raise ValueError(f'learning-rate schedule must be one of {LEARNING_RATE_SCHEDULES}, got {self.schedule!r}')

    def rate(self, epoch: int) -> float:
        """The learning rate of epoch `epoch` (0-based)."""
        if self.schedule == 'constant':
            return self.learning_rate
        return 0.5 * self.learning_rate * (1.0 + math.cos(math.pi * epoch / self.epochs))


EpochStep = Callable[[Actor | QNetwork, torch.optim.Optimizer, np.random.Generator], dict]


def fit(run: Run, name: str, network: Actor | QNetwork, epoch: EpochStep, settings: FitSettings,
        table: str, first_step: int = 0) -> list[dict]:
    """Train `network` epoch by epoch with Adam, going on from checkpoints/<name>_training.pt if a run stopped.

    `epoch(network, optimizer, rng)` runs one epoch and returns its metrics, 'loss' among them.
    Returns the history, one dict per epoch; each epoch is logged as step first_step + epoch.
    """
    state = run.checkpoint_dir / f'{name}_training.pt'
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    history: list[dict] = []
    if state.exists():
        saved, optimizer_state, progress, _ = load_training_state(state, network.kind)
        network.load_state_dict(saved.state_dict())
        optimizer.load_state_dict(optimizer_state)
        history = list(progress['history'])
        for row in history:                 # rows a stopped run saved but did not log (log skips the others)
            run.log(table, first_step + row['epoch'], {'name': name, **row})
    network.train()
    with torch_threads(FIT_TORCH_THREADS), \
            run.bar(total=settings.epochs, initial=len(history), desc=name, unit='epoch', leave=False) as bar:
        while not _fit_done(history, settings):
            for group in optimizer.param_groups:        # from the epoch index, so a resumed fit goes on the same
                group['lr'] = settings.rate(len(history))
            metrics = {'epoch': len(history), 'learning_rate': settings.rate(len(history)),
                       **epoch(network, optimizer, run.rng(name, 'epoch', len(history)))}
            history.append(metrics)
            save_training_state(state, network, optimizer, {'history': history}, {'command': run.command})
            run.log(table, first_step + metrics['epoch'], {'name': name, **metrics})
            bar.update(1)
            bar.set_postfix(loss=f'{metrics["loss"]:.4g}')
    network.eval()
    return history


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to `count` inside the block, put back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit_done(history: list[dict], settings: FitSettings) -> bool:
    return len(history) >= settings.epochs or bool(history) and history[-1]['loss'] <= settings.target_loss


def finish_fit(run: Run, name: str) -> None:
    """Remove a fit's training state once the checkpoint it led to is saved."""
    (run.checkpoint_dir / f'{name}_training.pt').unlink(missing_ok=True)


# -- curves ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Panel:
    """One plot of a curves PNG: columns of one log table against its step."""

    table: str
    columns: tuple[str, ...]
    ylabel: str
    log_scale: bool = False


def plot_curves(run: Run, panels: tuple[Panel, ...], out: Path, title: str) -> Path:
    """Draw the panels from the run's CSV logs into a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for axis, panel in zip(axes[0], panels):
        rows = read_table(run.log_dir / f'{panel.table}.csv')
        for column in panel.columns:
            points = [(row['step'], row[column]) for row in rows if isinstance(row.get(column), float)]
            if points:
                axis.plot(*zip(*points), marker='.', label=column)
        axis.set(xlabel=f'{panel.table} step', ylabel=panel.ylabel, yscale='log' if panel.log_scale else 'linear')
        axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(out, dpi=CURVES_DPI)
    plt.close(figure)
    return out
