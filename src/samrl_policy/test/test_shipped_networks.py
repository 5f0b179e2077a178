"""The networks that ship with samrl_policy: `samrl train ship` puts a finished run's there, and 'shipped' finds
them (the default run directory of the nodes and evaluations)."""
import json
import shutil

import pytest

from samrl_policy import learn_at_sim
from samrl_policy.checkpoints import save_network
from samrl_policy.learn_at_sim import SHIPPED, load_policies, run_dir_of, ship
from samrl_policy.model_env import PROPRIO_SIZE
from samrl_policy.networks import Actor, NetworkConfig, QNetwork
from samrl_policy.policy_core import image_size_of

TASK = 'peg_insertion'
IMAGE_SIZE = (48, 64)        # not the networks' square default, so that the shipped config must be read
TINY = NetworkConfig(proprio_dim=PROPRIO_SIZE, encoder='pooled', channels=(4, 8), feature_dim=16, hidden=(32,))


@pytest.fixture
def shipped_dir(tmp_path, monkeypatch):
    """SHIPPED_DIR in a temporary folder, so that the tests never write into the package."""
    monkeypatch.setattr(learn_at_sim, 'SHIPPED_DIR', tmp_path / 'trained')
    return tmp_path / 'trained'


def _finished_run(run_dir, task=TASK):
    """A run directory as learn_at_sim leaves it, with untrained tiny networks."""
    for name, network in (('actor.pt', Actor(TINY)), ('fixed_actor.pt', Actor(TINY)), ('q.pt', QNetwork(TINY))):
        save_network(run_dir / name, network, {'command': 'test'})
    (run_dir / 'actor').mkdir()
    (run_dir / 'actor' / 'config.json').write_text(json.dumps({'task': task, 'image_size': list(IMAGE_SIZE)}))
    return run_dir


def test_run_dir_arguments():
    assert run_dir_of('out/learn_at_sim/{task}', TASK).as_posix() == 'out/learn_at_sim/peg_insertion'
    assert run_dir_of(SHIPPED, TASK) == learn_at_sim.SHIPPED_DIR / TASK


def test_ship_copies_the_networks_cards_and_render_size(tmp_path, shipped_dir):
    run_dir = _finished_run(tmp_path / 'run')
    written = ship(run_dir, TASK)
    target = run_dir_of(SHIPPED, TASK)
    assert target == shipped_dir / TASK
    assert {p.name for p in written} == {'config.json', 'actor.pt', 'fixed_actor.pt', 'q.pt', 'actor_card.json',
                                         'fixed_actor_card.json', 'q_card.json'}
    policies = load_policies(target)
    assert image_size_of(target, policies.actor) == IMAGE_SIZE
    assert (target / 'actor.pt').read_bytes() == (run_dir / 'actor.pt').read_bytes()


def test_ship_refuses_unfinished_foreign_and_oversized_runs(tmp_path, shipped_dir, monkeypatch):
    run_dir = _finished_run(tmp_path / 'run')
    (run_dir / 'q.pt').unlink()
    with pytest.raises(FileNotFoundError, match='q.pt'):
        ship(run_dir, TASK)
    with pytest.raises(ValueError, match='trained for needle_threading'):
        ship(_finished_run(tmp_path / 'needle', 'needle_threading'), TASK)
    monkeypatch.setattr(learn_at_sim, 'SHIPPED_MAX_BYTES', 1000)
    with pytest.raises(ValueError, match='MiB'):
        ship(_finished_run(tmp_path / 'big'), TASK)
    assert not shipped_dir.exists()


def test_a_task_without_shipped_networks_is_named(shipped_dir):
    with pytest.raises(FileNotFoundError, match='no networks ship for spatula_flipping'):
        load_policies(run_dir_of(SHIPPED, 'spatula_flipping'))


def test_the_cli_names_the_same_shipped_token():
    from samrl_bringup.learning_commands import SHIPPED as CLI_SHIPPED
    assert CLI_SHIPPED == SHIPPED


def test_table1_keeps_the_records_of_shipped_networks_out_of_the_package(tmp_path, shipped_dir, monkeypatch):
    from samrl_bringup.learning_commands import table1_records
    monkeypatch.chdir(tmp_path)
    run = _finished_run(tmp_path / 'run')
    digest = learn_at_sim.networks_digest(run)
    assert table1_records(run, TASK, 7) == run / f'table1_{digest}_seed7.jsonl'
    assert table1_records(run, TASK, 7, 'box') == run / f'table1_{digest}_box_seed7.jsonl'   # another view step
    shutil.copytree(run, shipped_dir / TASK)
    records = table1_records(run_dir_of(SHIPPED, TASK), TASK, 7)
    assert records.as_posix() == f'out/table1/peg_insertion_shipped_{digest}_seed7.jsonl' and records.parent.is_dir()


def test_new_networks_never_resume_from_the_old_ones_records(tmp_path, shipped_dir):
    from samrl_bringup.learning_commands import table1_records
    run = _finished_run(tmp_path / 'run')
    before = table1_records(run, TASK, 0)
    save_network(run / 'q.pt', QNetwork(TINY), {'command': 'retrained'})     # fresh weights: new networks
    assert table1_records(run, TASK, 0) != before


def _shipped_tasks() -> list[str]:
    return sorted(path.name for path in learn_at_sim.SHIPPED_DIR.glob('*') if path.is_dir())


def test_the_package_ships_networks():
    assert _shipped_tasks(), f'no networks under {learn_at_sim.SHIPPED_DIR}'


@pytest.mark.parametrize('task', _shipped_tasks())
def test_each_shipped_network_loads_and_has_a_card_from_the_training_command(task):
    run_dir = run_dir_of(SHIPPED, task)
    policies = load_policies(run_dir)                    # weights_only loads (checkpoints.load_network)
    assert policies.actor.config.proprio_dim == PROPRIO_SIZE
    assert image_size_of(run_dir, policies.actor) == tuple(json.loads(
        (run_dir / 'actor' / 'config.json').read_text())['image_size'])
    size = 0
    for name in ('actor', 'fixed_actor', 'q'):
        card = json.loads((run_dir / f'{name}_card.json').read_text())
        assert card['command'].startswith(f'samrl train learn-at-sim {task}'), card['command']
        assert isinstance(card['seed'], int) and card['metrics']
        size += (run_dir / f'{name}.pt').stat().st_size
    assert size <= learn_at_sim.SHIPPED_MAX_BYTES
