"""docker/: what can be checked without a Docker engine (none on our machines)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from samrl_bringup.graph import parse_launch_arguments
from samrl_bringup.graphs import get_graph

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / 'docker'
COMPOSE = DOCKER / 'compose.yaml'
DOCKERFILE = DOCKER / 'Dockerfile'
COMPOSE_VARIABLE = re.compile(r'\$\{(\w+)(?::-([^}]*))?\}')


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r'\\\n', ' ', DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith('#')]
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in lines]


def _with_defaults(text: str) -> str:
    """A compose string as compose runs it with no variables set."""
    return COMPOSE_VARIABLE.sub(lambda match: match.group(2) or '', text)


def test_dockerfile_builds_jazzy_from_the_one_requirements_file():
    instructions = _dockerfile_instructions()
    assert instructions[0] == ('FROM', 'ros:jazzy-ros-base')  # Ubuntu 24.04, Python 3.12
    copies = [shlex.split(arguments) for kind, arguments in instructions if kind == 'COPY']
    for *sources, _destination in copies:
        for source in sources:
            assert (ROOT / source).exists(), f'COPY {source}: not in the build context'
    assert ['requirements.txt', '/tmp/requirements.txt'] in copies
    runs = ' '.join(arguments for kind, arguments in instructions if kind == 'RUN')
    assert '-r /tmp/requirements.txt' in runs and 'colcon build' in runs


def test_dockerignore_keeps_the_venv_and_outputs_out_of_the_context():
    ignored = (ROOT / '.dockerignore').read_text().split()
    assert {'.venv', 'out', '.git'} <= set(ignored)
    for kind, arguments in _dockerfile_instructions():
        if kind == 'COPY':
            assert not set(shlex.split(arguments)[:-1]) & set(ignored)


def test_compose_has_a_sim_and_a_hardware_profile_with_rviz():
    compose = _compose()
    services = compose['services']
    assert services['sim']['profiles'] == ['sim'] and services['hardware']['profiles'] == ['hardware']
    assert set(services['rviz']['profiles']) == {'sim', 'hardware'}
    for service in services.values():
        assert service['build'] == {'context': '..', 'dockerfile': 'docker/Dockerfile'}
        assert (COMPOSE.parent / service['build']['context'] / service['build']['dockerfile']).is_file()
        assert 'pip' not in service['command']  # the image fetches nothing at run time
    rviz = services['rviz']
    assert '/tmp/.X11-unix:/tmp/.X11-unix:rw' in rviz['volumes'] and 'DISPLAY' in rviz['environment']
    assert 'rviz/samrl.rviz' in rviz['command']


def _launch(service: dict) -> tuple[str, dict[str, str]]:
    """The graph and launch arguments of a `ros2 launch samrl_bringup X.launch.py ...` command."""
    words = _with_defaults(service['command']).split()
    assert words[:3] == ['ros2', 'launch', 'samrl_bringup']
    return words[3].removesuffix('.launch.py'), parse_launch_arguments(words[4:])


def test_compose_commands_are_valid_launches():
    services = _compose()['services']
    graph, arguments = _launch(services['sim'])
    assert arguments['use_sim'] == 'true'
    get_graph(graph).nodes(arguments)
    graph, arguments = _launch(services['hardware'])
    assert arguments['use_sim'] == 'false'
    declared = {a.name for a in get_graph(graph).arguments}
    assert set(arguments) <= declared
    calibration = _with_defaults(services['hardware']['volumes'][1]).split(':')[0]
    assert (COMPOSE.parent / calibration).is_file()
