"""launch_ros front end: turns a Graph into a LaunchDescription (used on ROS 2 machines only).

Each graph argument becomes a DeclareLaunchArgument; an OpaqueFunction reads
their values and builds launch_ros Node actions from the same NodeSpecs the
standalone launcher uses. A required node's exit shuts the launch down; a
respawning node is restarted by launch itself (`respawn`, `respawn_delay`).
"""

from __future__ import annotations

from samrl_bringup.graph import NodeSpec
from samrl_bringup.graphs import get_graph


def node_arguments(spec: NodeSpec) -> dict[str, object]:
    """launch_ros Node(...) keyword arguments for one node, except `on_exit` (needs launch itself).

    Pure, so it is tested where ROS 2 is absent; `respawn_delay` only when respawning, as launch_ros
    ignores it otherwise.
    """
    arguments: dict[str, object] = dict(
        package=spec.package, executable=spec.executable, name=spec.name,
        namespace=spec.namespace or None, output='screen',
        parameters=[*spec.param_files, dict(spec.parameters)],
        remappings=list(spec.remappings), respawn=spec.respawn)
    if spec.respawn:
        arguments['respawn_delay'] = spec.respawn_delay_s
    return arguments


def generate_launch_description_for(graph_name: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    graph = get_graph(graph_name)

    def nodes(context):
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.arguments}
        return [Node(**node_arguments(spec), on_exit=Shutdown() if spec.required else None)
                for spec in graph.nodes(values)]

    declared = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                      choices=list(a.choices) or None)
                for a in graph.arguments]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
