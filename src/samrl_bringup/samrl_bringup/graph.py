"""One description of a node graph, used by `ros2 launch` (launch_ros) and by `samrl launch` alike.

A graph declares its launch arguments (each with a default and a description)
and pure functions from argument values to node specifications and to the other
packages' launch files it includes (the robot drivers); both launch front ends
only translate these specifications. Includes and nodes without a Python module
of ours (a controller spawner) exist only under ROS 2: `samrl launch` refuses a
graph that needs them, naming them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from samrl_common.launcher import ProcessSpec

PACKAGE = 'samrl_bringup'


class LaunchArgumentError(ValueError):
    """A launch argument that is unknown, malformed or outside its choices."""


class NeedsRos2Error(LaunchArgumentError):
    """The graph, with these arguments, includes ROS 2 launch files or ROS-only nodes."""


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSpec:
    """One node: `package`/`executable` for ROS 2; `module` (with a main()) for the standalone launcher.

    `module` is '' for another package's node that only ROS 2 can start (a controller spawner);
    `arguments` are its command-line arguments (launch_ros' `arguments`).
    Exactly as launch_ros: a `required` node's exit (any code) ends the graph; a `respawn` node is
    started again `respawn_delay_s` after it exits, so a crash costs the graph a restart, not the run.
    """

    package: str
    executable: str
    module: str
    name: str
    namespace: str = ''
    param_files: tuple[str, ...] = ()
    parameters: Mapping[str, object] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    required: bool = True
    respawn: bool = False
    respawn_delay_s: float = 0.0
    arguments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.respawn and self.required:
            raise ValueError(f'node {self.name}: a respawning node cannot be required (use respawning())')
        if self.respawn_delay_s < 0:
            raise ValueError(f'node {self.name}: respawn_delay_s must be >= 0')

    def respawning(self, delay_s: float) -> NodeSpec:
        """This node, not required, restarted `delay_s` seconds after each exit."""
        return dataclasses.replace(self, required=False, respawn=True, respawn_delay_s=delay_s)

    def ros_arguments(self) -> list[str]:
        """The --ros-args section equivalent to launch_ros' Node(name=..., parameters=..., remappings=...)."""
        argv = ['--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            argv += ['-r', f'__ns:={self.namespace}']
        for path in self.param_files:
            argv += ['--params-file', path]
        for key, value in self.parameters.items():
            argv += ['-p', f'{key}:={_param_text(value)}']
        for source, target in self.remappings:
            argv += ['-r', f'{source}:={target}']
        return argv


@dataclass(frozen=True)
class IncludeSpec:
    """Another package's launch file, included with `arguments` (ROS 2 only).

    `launch_file` is relative to the package's share directory; `install_hint` says how to get
    the package when it is missing; `parameters` are set on every node of the included launch
    (launch_ros SetParameter in the include's scope) where its own arguments cannot reach.
    """

    package: str
    launch_file: str
    arguments: Mapping[str, str]
    install_hint: str
    parameters: Mapping[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f'{self.package}/{self.launch_file}'


def _no_includes(_args: dict[str, str]) -> list[IncludeSpec]:
    return []


@dataclass(frozen=True)
class Graph:
    name: str
    description: str
    arguments: tuple[LaunchArgument, ...]
    build: Callable[[dict[str, str]], list[NodeSpec]]
    build_includes: Callable[[dict[str, str]], list[IncludeSpec]] = _no_includes

    def resolve_arguments(self, given: Mapping[str, str]) -> dict[str, str]:
        declared = {a.name: a for a in self.arguments}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise LaunchArgumentError(
                f'unknown launch argument {unknown[0]!r} for {self.name}; declared: {", ".join(declared) or "none"}')
        values = {name: given.get(name, arg.default) for name, arg in declared.items()}
        for name, value in values.items():
            choices = declared[name].choices
            if choices and value not in choices:
                raise LaunchArgumentError(f'launch argument {name}:={value} is not one of {", ".join(choices)}')
        return values

    def nodes(self, given: Mapping[str, str] | None = None) -> list[NodeSpec]:
        return self.build(self.resolve_arguments(given or {}))

    def includes(self, given: Mapping[str, str] | None = None) -> list[IncludeSpec]:
        return self.build_includes(self.resolve_arguments(given or {}))


def ros2_only_parts(nodes: list[NodeSpec], includes: list[IncludeSpec]) -> list[str]:
    """What of a graph only `ros2 launch` can start: included launch files and nodes without a module."""
    return [include.label for include in includes] + [f'{n.package}/{n.executable}' for n in nodes if not n.module]


def check_standalone(graph: Graph, given: Mapping[str, str]) -> list[NodeSpec]:
    """The graph's nodes if the standalone launcher can start all of it (the real drivers need ROS 2).

    Raises:
        LaunchArgumentError: a bad argument.
        NeedsRos2Error: the graph includes ROS 2 launch files or ROS-only nodes; the message gives the
            `ros2 launch` command line that starts it.
    """
    nodes = graph.nodes(given)
    ros_only = ros2_only_parts(nodes, graph.includes(given))
    if ros_only:
        command = ' '.join([f'ros2 launch {PACKAGE} {graph.name}.launch.py',
                            *(f'{name}:={value}' for name, value in given.items())])
        raise NeedsRos2Error(f'{graph.name} with these arguments starts {", ".join(ros_only)}, which need ROS 2; '
                             f'samrl launch runs only our own nodes. On a ROS 2 Jazzy machine, or in the Docker '
                             f'image (README, "Real robot"), run: {command}')
    return nodes


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_param_text(v) for v in value) + ']'
    return str(value)


def parse_launch_arguments(tokens: list[str]) -> dict[str, str]:
    """['a:=1', 'b:=x'] -> {'a': '1', 'b': 'x'} as `ros2 launch` takes them."""
    values = {}
    for token in tokens:
        name, sep, value = token.partition(':=')
        if not sep or not name:
            raise LaunchArgumentError(f'launch arguments are name:=value, got {token!r}')
        values[name] = value
    return values


def share_directory(package: str = PACKAGE) -> Path:
    """The package's share directory: ament index where ROS 2 is present, else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(package))
    except (ImportError, LookupError):
        pass
    module = __import__(package)
    source = Path(module.__file__).resolve().parents[1]
    if (source / 'package.xml').exists():
        return source
    return Path(sys.prefix) / 'share' / package


def config_file(name: str, package: str = PACKAGE) -> str:
    path = share_directory(package) / 'config' / name
    if not path.exists():
        raise FileNotFoundError(f'parameter file {path} does not exist')
    return str(path)


def process_specs(nodes: list[NodeSpec], env: Mapping[str, str] | None = None) -> list[ProcessSpec]:
    """Standalone launch: each node its own Python process with the same --ros-args as under ROS 2.

    Raises:
        NeedsRos2Error: a node has no Python module of ours (only ROS 2 can start it).
    """
    ros_only = ros2_only_parts(nodes, [])
    if ros_only:
        raise NeedsRos2Error(f'only ROS 2 can start {", ".join(ros_only)}')
    return [ProcessSpec(name=node.name, argv=(sys.executable, '-m', node.module, *node.ros_arguments()),
                        env=dict(env) if env else None, required=node.required,
                        respawn=node.respawn, respawn_delay_s=node.respawn_delay_s)
            for node in nodes]


def environment_for(local: bool) -> dict[str, str]:
    """Child environment: loopback-only DDS when `local` (CI, a laptop without a robot network)."""
    from samrl_common.runtime.dds_config import loopback_environment
    return loopback_environment() if local else dict(os.environ)


def file_argument(args: Mapping[str, str], name: str) -> str:
    """A launch argument naming a file that must be readable now, not when a node starts; made absolute."""
    path = args[name]
    try:
        with open(path, encoding='utf-8'):
            return os.path.abspath(path)
    except OSError as exc:
        raise LaunchArgumentError(f'launch argument {name}:={path} cannot be read: {exc.strerror}') from None


def int_argument(args: Mapping[str, str], name: str, minimum: int = 0) -> int:
    """A launch argument read as an integer >= minimum, with an error naming it."""
    try:
        value = int(args[name])
    except ValueError:
        raise LaunchArgumentError(f'launch argument {name}:={args[name]} is not an integer') from None
    if value < minimum:
        raise LaunchArgumentError(f'launch argument {name}:={value} must be >= {minimum}')
    return value
