"""Learn@Sim (paper Sec. III-D, Alg. 1 lines 4-14) for one task, stage by stage, resumable.

    1. multi-view actor pi_sim(I): DAgger on the trajectory-optimisation expert, every visited state
       rendered from K views of the view distribution (Eq. 8);
    2. Fixed-View actor: the same, from the task's default view only, stopped at the multi-view
       actor's final training error (Table I's protocol);
    3. sensing-aware Q(I, a): regression on the discounted returns of the multi-view actor's own
       rollouts from random views (Eq. 9).

Each stage is a training.Run in its own folder under the run directory; rerunning the command
goes on after the last finished round or epoch. With `actors_from`, stages 1 and 2 are a finished run's
(or the shipped) actors, copied in, and only Q is trained. The final networks are copied to
<run>/actor.pt, fixed_actor.pt and q.pt, each with its card. `ship` copies a finished run's networks
into the package (samrl_policy/trained/<task>), where the nodes and evaluations find them by default.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from samrl_policy.checkpoints import card_path, load_actor, load_q
from samrl_policy.dagger import DAggerConfig, train_dagger
from samrl_policy.expert import ExpertConfig, TrajectoryExpert
from samrl_policy.model_env import ModelEnv
from samrl_policy.q_learning import QConfig, train_q
from samrl_policy.training import Run, config_image_zoom
from samrl_viewpoint.views import ViewSpace

STAGES = ('actor', 'fixed_actor', 'q')
FINAL_FILES = {'actor': 'actor.pt', 'fixed_actor': 'fixed_actor.pt', 'q': 'q.pt'}
TORCH_THREADS = 1          # collection (the expert's small tensors, single images); fits set their own
SHIPPED = 'shipped'        # the run-directory argument naming the networks that ship with the package
SHIPPED_DIR = Path(__file__).resolve().parent / 'trained'
SHIPPED_MAX_BYTES = 20 * 2 ** 20   # a task's shipped networks stay small: they live in the repository
DIGEST_HEX = 12                    # hex digits of networks_digest: enough to tell a task's network sets apart
NEWER_SETTINGS = {'training_fraction': 1.0}   # left out of a stage's config at this default, so run
                                               # directories begun before the setting resume


@dataclass(frozen=True)
class LearnAtSimConfig:
    task: str
    seed: int = 0
    image_size: tuple[int, int] = (64, 64)        # (height, width) of M's renders for the networks
    image_zoom: float = 1.0                       # their zoom about the image centre (CameraIntrinsics.d435)
    dagger: DAggerConfig = field(default_factory=DAggerConfig)
    q: QConfig = field(default_factory=QConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)


def _stage_config(config: LearnAtSimConfig, stage: str, extra) -> dict:
    settings = {name: value for name, value in asdict(extra).items()
                if not (name in NEWER_SETTINGS and value == NEWER_SETTINGS[name])}
    return {'task': config.task, 'image_size': list(config.image_size), 'image_zoom': config.image_zoom,
            'expert': asdict(config.expert),
            'stage': stage, **settings}


def _publish(run_dir: Path, stage: str, checkpoint: Path) -> Path:
    """Copy a stage's final checkpoint and its card to the run directory's top level."""
    final = run_dir / FINAL_FILES[stage]
    shutil.copyfile(checkpoint, final)
    shutil.copyfile(card_path(checkpoint), card_path(final))
    return final


def _check_zoom(config: LearnAtSimConfig) -> None:
    """The networks' configs must name the zoom the renders use (the 3D keypoint encoders back-project with it)."""
    for stage, network in (('dagger', config.dagger.network), ('q', config.q.network)):
        zoom = 1.0 if network is None else network.image_zoom
        if zoom != config.image_zoom:
            raise ValueError(f'{stage} network config has image_zoom {zoom}, the renders use {config.image_zoom}')


class ActorsSourceError(ValueError):
    """The run named to take the actors from cannot give them to this run."""


def learn_at_sim(run_dir: Path, config: LearnAtSimConfig, command: str, progress: bool = True,
                 actors_from: Path | None = None) -> dict:
    """Run (or go on with) every stage; returns each stage's record. `actors_from`: a finished run directory
    whose actors stand in for stages 1 and 2 (adopt_actors)."""
    torch.set_num_threads(TORCH_THREADS)
    run_dir = Path(run_dir)
    _check_zoom(config)
    env = ModelEnv(config.task, image_size=config.image_size, zoom=config.image_zoom)
    views = ViewSpace(config.task)
    if actors_from is None:
        records = _train_actors(run_dir, config, env, views, command, progress)
    else:
        records = adopt_actors(run_dir, Path(actors_from), config)

    # 3. Q on the multi-view actor's returns from random views (Eq. 9).
    actor, _ = load_actor(run_dir / FINAL_FILES['actor'])
    q_config = replace(config.q, seed=config.seed)
    with Run(run_dir / 'q', _stage_config(config, 'q', q_config), config.seed, command, progress) as run:
        _, records['q'] = train_q(run, env, actor, views, q_config)
        _publish(run_dir, 'q', run.checkpoint_dir / 'q.pt')
    return records


def _train_actors(run_dir: Path, config: LearnAtSimConfig, env: ModelEnv, views: ViewSpace, command: str,
                  progress: bool) -> dict:
    """Stages 1 and 2, each resumable; returns their records."""
    expert = TrajectoryExpert(config.expert)
    records = {}

    # 1. The multi-view actor (Eq. 8 over K views of every visited state).
    multi = replace(config.dagger, seed=config.seed, fixed_view=False)
    with Run(run_dir / 'actor', _stage_config(config, 'actor', multi), config.seed, command, progress) as run:
        _, records['actor'] = train_dagger(run, env, expert, views, multi)
        _publish(run_dir, 'actor', run.checkpoint_dir / 'actor.pt')

    # 2. The Fixed-View actor, stopped at the multi-view actor's training error.
    fixed = replace(multi, fixed_view=True, target_error=records['actor']['final_training_error'])
    with Run(run_dir / 'fixed_actor', _stage_config(config, 'fixed_actor', fixed), config.seed, command,
             progress) as run:
        _, records['fixed_actor'] = train_dagger(run, env, expert, views, fixed)
        _publish(run_dir, 'fixed_actor', run.checkpoint_dir / 'actor.pt')
    return records


def adopt_actors(run_dir: Path, source: Path, config: LearnAtSimConfig) -> dict:
    """Copy the finished run `source`'s two actors, their cards and its actor stage's config into `run_dir` as
    its stages 1 and 2, so that only Q is trained there (and `ship` finds a whole run); returns the actors'
    cards as their records. Raises ActorsSourceError if `source` has no finished actors, was trained for
    another task, render size or zoom than `config`, or if `run_dir` already has other actors."""
    if source.resolve() == run_dir.resolve():
        raise ActorsSourceError(f'{source} is the run directory itself; give a new one')
    names = [FINAL_FILES['actor'], FINAL_FILES['fixed_actor']]
    missing = [name for name in names if not (source / name).exists()]
    if missing or not (source / 'actor' / 'config.json').exists():
        raise ActorsSourceError(f'{source} has no finished actors ({", ".join(missing) or "actor/config.json"} '
                                'missing)')
    trained = json.loads((source / 'actor' / 'config.json').read_text())
    theirs = (trained['task'], tuple(trained['image_size']), config_image_zoom(trained))
    ours = (config.task, tuple(config.image_size), config.image_zoom)
    if theirs != ours:
        raise ActorsSourceError(f'{source}\'s actors are for {_renders(*theirs)}, this run is for {_renders(*ours)}')
    if (run_dir / 'actor' / 'checkpoints').exists():
        raise ActorsSourceError(f'{run_dir} trains its own actors ({run_dir / "actor"}); give a new run directory')
    for name in names:
        mine = run_dir / name
        if mine.exists() and mine.read_bytes() != (source / name).read_bytes():
            raise ActorsSourceError(f'{mine} is not {source / name}: Q\'s rollouts there are another actor\'s')
    (run_dir / 'actor').mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / 'actor' / 'config.json', run_dir / 'actor' / 'config.json')
    return {stage: json.loads(card_path(_publish(run_dir, stage, source / FINAL_FILES[stage])).read_text())
            for stage in ('actor', 'fixed_actor')}


def _renders(task: str, size: tuple[int, int], zoom: float) -> str:
    return f'{task} on {size[1]}x{size[0]} renders at zoom {zoom:g}'


def run_dir_of(run_dir: str | Path, task: str) -> Path:
    """A run-directory argument as a path: 'shipped' is the networks shipped for the task; {task} is replaced."""
    if str(run_dir) == SHIPPED:
        return SHIPPED_DIR / task
    return Path(str(run_dir).format(task=task))


def networks_digest(run_dir: Path) -> str:
    """A short SHA-256 of a run's three final networks, to key what was measured with them (records of one set
    are then never read back for another, say after `ship` or a retraining in place)."""
    digest = hashlib.sha256()
    for name in FINAL_FILES.values():
        digest.update((run_dir / name).read_bytes())
    return digest.hexdigest()[:DIGEST_HEX]


def is_shipped(run_dir: Path) -> bool:
    return Path(run_dir).resolve().parent == SHIPPED_DIR


def _missing_networks(run_dir: Path) -> list[str]:
    return [name for name in FINAL_FILES.values() if not (run_dir / name).exists()]


def load_policies(run_dir: Path):
    """The three networks of a finished run, for Table I and the nodes (weights_only loads)."""
    from samrl_policy.table1 import Policies
    run_dir = Path(run_dir)
    missing = _missing_networks(run_dir)
    if missing and is_shipped(run_dir):
        raise FileNotFoundError(f'no networks ship for {run_dir.name} yet: train them with `samrl train learn-at-sim '
                                f'{run_dir.name}` and give that run directory instead of {SHIPPED!r}')
    if missing:
        raise FileNotFoundError(f'{run_dir} has no {", ".join(missing)}: run `samrl train learn-at-sim` to the end')
    actor, _ = load_actor(run_dir / FINAL_FILES['actor'])
    fixed, _ = load_actor(run_dir / FINAL_FILES['fixed_actor'])
    q_network, _ = load_q(run_dir / FINAL_FILES['q'])
    return Policies(actor.eval(), q_network.eval(), fixed.eval())


def run_image_size(run_dir: Path) -> tuple[int, int]:
    """(height, width) of the renders a run's networks were trained on."""
    config = json.loads((Path(run_dir) / 'actor' / 'config.json').read_text())
    return tuple(config['image_size'])


def run_image_zoom(run_dir: Path) -> float:
    """The zoom of the renders a run's networks were trained on (1 for runs from before the option)."""
    return config_image_zoom(json.loads((Path(run_dir) / 'actor' / 'config.json').read_text()))


def ship(run_dir: Path, task: str) -> list[Path]:
    """Copy a finished run's networks, their cards and the actor stage's config (the render size and the whole
    training configuration) to SHIPPED_DIR/<task>; returns the files written. Refuses an unfinished run, one of
    another task and one over SHIPPED_MAX_BYTES."""
    run_dir = Path(run_dir)
    missing = _missing_networks(run_dir)
    if missing:
        raise FileNotFoundError(f'{run_dir} has no {", ".join(missing)}: run `samrl train learn-at-sim` to the end')
    config = run_dir / 'actor' / 'config.json'
    trained_for = json.loads(config.read_text())['task']
    if trained_for != task:
        raise ValueError(f'{run_dir} was trained for {trained_for}, not {task}')
    sources = [run_dir / name for name in FINAL_FILES.values()]
    sources += [card_path(path) for path in sources]
    size = sum(path.stat().st_size for path in sources)
    if size > SHIPPED_MAX_BYTES:
        raise ValueError(f'{run_dir}\'s networks take {size / 2 ** 20:.1f} MiB, over the '
                         f'{SHIPPED_MAX_BYTES / 2 ** 20:.0f} MiB that may ship')
    target = SHIPPED_DIR / task
    (target / 'actor').mkdir(parents=True, exist_ok=True)
    written = [target / 'actor' / 'config.json']
    shutil.copyfile(config, written[0])
    for path in sources:
        shutil.copyfile(path, target / path.name)
        written.append(target / path.name)
    return written
