"""launch_ros front end: turns a Graph into a LaunchDescription (used on ROS 2 machines only).

Each graph argument becomes a DeclareLaunchArgument; an OpaqueFunction reads
their values and builds launch_ros Node actions from the same NodeSpecs the
standalone launcher uses. A required node's exit shuts the launch down.
"""

from __future__ import annotations

from samrl_bringup.graphs import get_graph


def generate_launch_description_for(graph_name: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    graph = get_graph(graph_name)

    def nodes(context):
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.arguments}
        return [Node(package=spec.package, executable=spec.executable, name=spec.name,
                     namespace=spec.namespace or None, output='screen',
                     parameters=[*spec.param_files, dict(spec.parameters)],
                     remappings=list(spec.remappings),
                     on_exit=Shutdown() if spec.required else None)
                for spec in graph.nodes(values)]

    declared = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                      choices=list(a.choices) or None)
                for a in graph.arguments]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
