"""The task graphs: the PyBullet bridge standing in for both robots and the camera, plus a controller.

    samrl launch needle_threading [episodes:=5] [seed:=0] [controller:=oracle|none] ...

With `controller:=none` only the world runs, for another controller (or a person with
`ros2 topic pub`) to drive it. On hardware the bridge is replaced by the drivers (later issue).
"""

from __future__ import annotations

from functools import partial

from samrl_bringup.graph import Graph, LaunchArgument, NodeSpec, config_file, int_argument

TASKS = ('needle_threading', 'peg_insertion', 'spatula_flipping')
CONTROLLERS = ('oracle', 'none')


def build(task: str, args: dict[str, str]) -> list[NodeSpec]:
    params = config_file('sim.yaml')
    nodes = [NodeSpec('samrl_sim', 'sim_bridge', 'samrl_sim.bridge_node', 'sim_bridge', param_files=(params,),
                      parameters={'task': task, 'episodes': int_argument(args, 'episodes'),
                                  'seed': int_argument(args, 'seed'),
                                  'image_width': int_argument(args, 'image_width', 16),
                                  'image_height': int_argument(args, 'image_height', 16)})]
    if args['controller'] == 'oracle':
        nodes.append(NodeSpec('samrl_sim', 'oracle_controller', 'samrl_sim.oracle_node', 'oracle_controller',
                              param_files=(params,), parameters={'task': task}))
    return nodes


def task_graph(task: str) -> Graph:
    return Graph(
        name=task,
        description=f'{task}: PyBullet world (sim bridge) and a controller, one process each',
        arguments=(
            LaunchArgument('episodes', '0', 'stop the graph after this many episodes (0: run until Ctrl-C)'),
            LaunchArgument('seed', '0', 'seed of the first episode; episode i uses seed + i'),
            LaunchArgument('controller', 'oracle', 'controller driving the Franka', CONTROLLERS),
            LaunchArgument('image_width', '640', 'camera image width (px)'),
            LaunchArgument('image_height', '480', 'camera image height (px)'),
        ),
        build=partial(build, task),
    )
