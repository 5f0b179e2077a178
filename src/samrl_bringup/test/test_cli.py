"""The `samrl` parser: one vocabulary across subcommands (parsing only; no command is run)."""

from __future__ import annotations

import argparse
import re

import pytest

from samrl_bringup.cli import build_parser, cmd_graphs
from samrl_bringup.graphs import GRAPHS
from samrl_description.tasks import TASK_NAMES

ARGPARSE_USAGE_ERROR = 2
TASK_COMMANDS = (('bench', 'sim'), ('bench', 'physics'), ('bench', 'real2sim'))


def _parse(*argv: str):
    return build_parser().parse_args(list(argv))


def _usage_error(capsys, *argv: str) -> str:
    """Parse argv expecting argparse's usage error; return its stderr."""
    with pytest.raises(SystemExit) as exc:
        _parse(*argv)
    assert exc.value.code == ARGPARSE_USAGE_ERROR
    return capsys.readouterr().err


def _leaf_commands() -> list[tuple[str, ...]]:
    """Every runnable command path, e.g. ('bench', 'segmentation'), read from the parser itself."""
    def walk(parser, path):
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not nested:
            return [path]
        return [leaf for name, child in nested[0].choices.items() for leaf in walk(child, (*path, name))]
    return walk(build_parser(), ())


@pytest.mark.parametrize('command', TASK_COMMANDS)
def test_tasks_default_to_all(command):
    assert _parse(*command).tasks == TASK_NAMES
    assert _parse(*command, '--tasks', 'all').tasks == TASK_NAMES


@pytest.mark.parametrize('command', TASK_COMMANDS)
def test_tasks_take_a_comma_separated_list(command):
    first, last = TASK_NAMES[0], TASK_NAMES[-1]
    assert _parse(*command, '--tasks', f'{last},{first}').tasks == (last, first)
    assert _parse(*command, '--tasks', f'{first},{first}').tasks == (first,)


@pytest.mark.parametrize('value', ['needle', f'{TASK_NAMES[0]},', f'all,{TASK_NAMES[0]}', ''])
def test_unknown_task_is_a_usage_error_naming_the_valid_tasks(capsys, value):
    err = _usage_error(capsys, 'bench', 'sim', '--tasks', value)
    assert 'argument --tasks' in err and 'unknown task' in err and '"all"' in err
    assert all(name in err for name in TASK_NAMES)


def test_old_spellings(capsys):
    """--task still works as argparse's prefix of --tasks; renamed checkpoint flags fail loudly."""
    assert _parse('bench', 'sim', '--task', TASK_NAMES[0]).tasks == (TASK_NAMES[0],)
    assert 'unrecognized arguments' in _usage_error(capsys, 'perception', 'train', '--checkpoint', 'a.pt')
    assert 'unrecognized arguments' in _usage_error(capsys, 'perception', 'train-refiner', '--detector', 'a.pt')


def test_eval_keeps_one_positional_task_from_the_task_names(capsys):
    assert _parse('eval', TASK_NAMES[1]).task == TASK_NAMES[1]
    err = _usage_error(capsys, 'eval', 'needle')
    assert all(name in err for name in TASK_NAMES)


def test_size_defaults_are_unchanged():
    assert _parse('bench', 'render').size == 84
    assert _parse('bench', 'real2sim').size == (128, 96)
    assert _parse('perception', 'data').size == (640, 480)


def test_size_parses_wxh():
    assert _parse('bench', 'real2sim', '--size', '64x48').size == (64, 48)
    assert _parse('perception', 'data', '--size', '320x240').size == (320, 240)
    assert _parse('bench', 'render', '--size', '128x128').size == 128


@pytest.mark.parametrize('value', ['640', '640x', 'x480', '640*480', '640x480x3', 'axb', '0x480', '640x0', '1.5x2'])
@pytest.mark.parametrize('command', [('bench', 'real2sim'), ('perception', 'data'), ('bench', 'render')])
def test_bad_size_is_a_clear_usage_error(capsys, command, value):
    err = _usage_error(capsys, *command, '--size', value)
    assert 'argument --size' in err and repr(value) in err and ('WxH' in err or '>= 1 px' in err)


def test_square_bench_rejects_a_rectangle(capsys):
    assert 'square' in _usage_error(capsys, 'bench', 'render', '--size', '84x60')


def test_resume_and_init_from_exclude_each_other(capsys):
    assert _parse('perception', 'train', '--resume', 'a.pt').resume == 'a.pt'
    assert _parse('perception', 'train', '--init-from', 'b.pt').init_from == 'b.pt'
    err = _usage_error(capsys, 'perception', 'train', '--resume', 'a.pt', '--init-from', 'b.pt')
    assert 'not allowed with argument' in err


def test_out_names_only_outputs_and_inputs_have_their_own_names():
    train = _parse('perception', 'train')
    assert train.out == 'out/segmentation/maskrcnn_r18fpn.pt' and not hasattr(train, 'checkpoint')
    refiner = _parse('perception', 'train-refiner', '--checkpoint', 'det.pt')
    assert refiner.checkpoint == 'det.pt' and refiner.out == 'out/segmentation/mask_refiner.pt'
    assert _parse('perception', 'data').out is None
    for command in (('bench', 'segmentation'), ('perception', 'calibrate')):
        assert not hasattr(_parse(*command), 'out')


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        _parse('--help')
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    leaves = _leaf_commands()
    assert ('bench', 'segmentation') in leaves and ('perception', 'train-refiner') in leaves
    for leaf in leaves:
        assert re.search(rf'samrl {re.escape(" ".join(leaf))}\b', help_text), leaf


def test_bench_usage_names_segmentation(capsys):
    usage = _usage_error(capsys, 'bench').split('error:')[0]
    assert 'usage: samrl bench' in usage and 'segmentation' in usage


def test_graphs_prints_each_name_once(capsys):
    assert cmd_graphs(None) == 0
    headers = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(' ')]
    assert [line.split(':')[0] for line in headers] == list(GRAPHS)
    for name, line in zip(GRAPHS, headers):
        assert line.count(name) == 1, line
