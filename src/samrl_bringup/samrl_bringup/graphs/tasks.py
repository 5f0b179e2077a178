"""The task graphs: the PyBullet bridge standing in for both robots and the camera, perception, the
model M and a controller, one process each.

    samrl launch needle_threading [episodes:=5] [seed:=0] [controller:=oracle|none]
                                  [segmentation:=mask_rcnn|oracle|none] [model:=true|false] ...

sim_bridge -> capture_node (synchronized RGB-D + camera pose) -> segmentation_node (object masks,
the target's cloud); model_node serves Real2Sim updates and renders of M. With `controller:=none`
only the world runs, for another controller (or a person with `ros2 topic pub`) to drive it;
`segmentation:=oracle` uses the simulator's labels (ablations only); `segmentation:=none` leaves
perception out. On hardware the bridge is replaced by the drivers (later issue).

The bridge is required: it counts the episodes and its exit ends the graph. Every other node
respawns after RESPAWN_DELAY_S if it dies, so a crashed perception or controller process costs
a restart, not the run.
"""

from __future__ import annotations

from functools import partial

from samrl_bringup.graph import Graph, LaunchArgument, NodeSpec, config_file, int_argument
from samrl_description.tasks import TARGETS, TASK_OBJECTS

CONTROLLERS = ('oracle', 'none')
SEGMENTATION = ('mask_rcnn', 'oracle', 'none')
SWITCH = ('true', 'false')
RESPAWN_DELAY_S = 1.5
"""Wait (s) before a dead node is started again: long enough for DDS to notice it left."""


def build(task: str, args: dict[str, str]) -> list[NodeSpec]:
    params = config_file('sim.yaml')
    bridge = NodeSpec('samrl_sim', 'sim_bridge', 'samrl_sim.bridge_node', 'sim_bridge', param_files=(params,),
                      parameters={'task': task, 'episodes': int_argument(args, 'episodes'),
                                  'seed': int_argument(args, 'seed'),
                                  'image_width': int_argument(args, 'image_width', 16),
                                  'image_height': int_argument(args, 'image_height', 16)})
    nodes: list[NodeSpec] = []  # each respawns; the bridge stays required (it counts episodes)
    if args['segmentation'] != 'none':
        nodes.append(NodeSpec('samrl_perception', 'capture_node', 'samrl_perception.capture_node', 'capture_node'))
        nodes.append(NodeSpec('samrl_perception', 'segmentation_node', 'samrl_perception.segmentation_node',
                              'segmentation_node', parameters={'source': args['segmentation'],
                                                               'target_object': TARGETS[task],
                                                               'scene_objects': ','.join(TASK_OBJECTS[task])}))
    if args['model'] == 'true':
        nodes.append(NodeSpec('samrl_model', 'model_node', 'samrl_model.model_node', 'model_node',
                              parameters={'task': task}))
    if args['controller'] == 'oracle':
        nodes.append(NodeSpec('samrl_sim', 'oracle_controller', 'samrl_sim.oracle_node', 'oracle_controller',
                              param_files=(params,), parameters={'task': task}))
    return [bridge, *(node.respawning(RESPAWN_DELAY_S) for node in nodes)]


def task_graph(task: str) -> Graph:
    return Graph(
        name=task,
        description=f'{task}: PyBullet world (sim bridge), perception, the model M and a controller',
        arguments=(
            LaunchArgument('episodes', '0', 'stop the graph after this many episodes (0: run until Ctrl-C)'),
            LaunchArgument('seed', '0', 'seed of the first episode; episode i uses seed + i'),
            LaunchArgument('controller', 'oracle', 'controller driving the Franka', CONTROLLERS),
            LaunchArgument('segmentation', 'mask_rcnn', 'object masks: the trained network, the simulator\'s '
                           'labels (ablations only) or no perception nodes', SEGMENTATION),
            LaunchArgument('model', 'true', 'run model_node (Real2Sim and renders of M)', SWITCH),
            LaunchArgument('image_width', '640', 'camera image width (px)'),
            LaunchArgument('image_height', '480', 'camera image height (px)'),
        ),
        build=partial(build, task),
    )
