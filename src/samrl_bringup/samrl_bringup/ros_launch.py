"""launch_ros front end: turns a Graph into a LaunchDescription (used on ROS 2 machines only).

Each graph argument becomes a DeclareLaunchArgument with its description; an OpaqueFunction
reads their values and builds launch_ros Node actions from the same NodeSpecs the standalone
launcher uses, and IncludeLaunchDescription actions for the drivers' launch files. Parameters go
the ROS way (`parameters=[files..., {name: value}]`). A required node's exit shuts the launch
down; a respawning node is restarted by launch itself (`respawn`, `respawn_delay`). Each include
runs in its own launch-configuration scope, so its arguments and ours do not leak into each other,
with the IncludeSpec's parameters set (SetParameter) on every node it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from samrl_bringup.graph import IncludeSpec, LaunchArgumentError, NodeSpec
from samrl_bringup.graphs import get_graph


def node_arguments(spec: NodeSpec) -> dict[str, object]:
    """launch_ros Node(...) keyword arguments for one node, except `on_exit` (needs launch itself).

    Pure, so it is tested where ROS 2 is absent; `respawn_delay` only when respawning, as launch_ros
    ignores it otherwise; `arguments` only for nodes that take some.
    """
    arguments: dict[str, object] = dict(
        package=spec.package, executable=spec.executable, name=spec.name,
        namespace=spec.namespace or None, output='screen',
        parameters=[*spec.param_files, dict(spec.parameters)],
        remappings=list(spec.remappings), respawn=spec.respawn)
    if spec.respawn:
        arguments['respawn_delay'] = spec.respawn_delay_s
    if spec.arguments:
        arguments['arguments'] = list(spec.arguments)
    return arguments


def include_path(spec: IncludeSpec, share_directory: Callable[[str], str]) -> str:
    """The included launch file's path; a missing package or file says how to install it.

    `share_directory` is ament_index_python's get_package_share_directory (raises a KeyError
    subclass for an unknown package), injected so this is tested without ROS 2.
    """
    try:
        path = Path(share_directory(spec.package)) / spec.launch_file
    except (KeyError, LookupError):
        raise LaunchArgumentError(f'{spec.label} is needed, but package {spec.package} is not installed: '
                                  f'{spec.install_hint}') from None
    if not path.is_file():
        raise LaunchArgumentError(f'{spec.label} is needed, but {path} does not exist (another version of '
                                  f'{spec.package}?): {spec.install_hint}')
    return str(path)


def generate_launch_description_for(graph_name: str):
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, OpaqueFunction, Shutdown
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node, SetParameter

    graph = get_graph(graph_name)

    def actions(context):
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.arguments}
        nodes = [Node(**node_arguments(spec), on_exit=Shutdown() if spec.required else None)
                 for spec in graph.nodes(values)]
        includes = [GroupAction([
            *(SetParameter(name, value) for name, value in spec.parameters.items()),
            IncludeLaunchDescription(PythonLaunchDescriptionSource(include_path(spec, get_package_share_directory)),
                                     launch_arguments=list(spec.arguments.items()))], scoped=True, forwarding=False)
            for spec in graph.includes(values)]
        return [*includes, *nodes]

    declared = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                      choices=list(a.choices) or None)
                for a in graph.arguments]
    return LaunchDescription([*declared, OpaqueFunction(function=actions)])
