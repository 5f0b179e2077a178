"""The task graphs: the PyBullet bridge standing in for both robots and the camera (`use_sim:=true`)
or the real cell (`use_sim:=false`, ROS 2 only), perception, the model M and a controller, one
process each.

    samrl launch needle_threading [episodes:=5] [seed:=0] [controller:=oracle|samrl|none]
                                  [segmentation:=mask_rcnn|oracle|none] [model:=true|false]
                                  [lockstep:=false|true] ...
    ros2 launch samrl_bringup needle_threading.launch.py use_sim:=false robot_sn:=... franka_ip:=...

sim_bridge -> capture_node (synchronized RGB-D + camera pose) -> segmentation_node (object masks,
the target's cloud); model_node serves Real2Sim updates and renders of M. `controller:=samrl` runs
the Learn@Sim actor (policy_node) and the view step (viewpoint_node) on M's state instead of the
oracle (Alg. 1 without a residual policy). With `controller:=none` only the world runs, for another
controller (or a person with `ros2 topic pub`) to drive it. `lockstep:=true` runs Algorithm 1 one
control step at a time (samrl_common.lockstep) instead of every node at its own rate.
`segmentation:=oracle` uses the simulator's labels (ablations only); `segmentation:=none` leaves
perception out. With `use_sim:=false` the drivers, the arm adapters and the calibration publisher
(graphs/hardware.py) replace the bridge, and the oracle (it reads the simulator's state) is left out.

In the simulation the bridge is required: it counts the episodes and its exit ends the graph. On
the real cell the adapters and the calibration publisher are required. Every other node respawns
after RESPAWN_DELAY_S if it dies, so a crashed perception or controller process costs a restart,
not the run.
"""

from __future__ import annotations

from functools import partial

from samrl_bringup.graph import (
    Graph,
    IncludeSpec,
    LaunchArgument,
    LaunchArgumentError,
    NodeSpec,
    config_file,
    file_argument,
    int_argument,
)
from samrl_bringup.graphs import hardware
from samrl_description.tasks import TARGETS, TASK_OBJECTS

CONTROLLERS = ('oracle', 'samrl', 'none')
SEGMENTATION = ('mask_rcnn', 'oracle', 'none')
SWITCH = hardware.SWITCH
SIM_PARAMETERS = 'sim.yaml'
RESPAWN_DELAY_S = 1.5
"""Wait (s) before a dead node is started again: long enough for DDS to notice it left."""


def _use_sim(args: dict[str, str]) -> bool:
    return args['use_sim'] == 'true'


def _user_param_files(args: dict[str, str]) -> tuple[str, ...]:
    """The user's parameter file, if any; applied after the shipped ones (launch arguments still win)."""
    return (file_argument(args, 'params_file'),) if args['params_file'] else ()


def _sim_bridge(task: str, args: dict[str, str], param_files: tuple[str, ...]) -> NodeSpec:
    return NodeSpec('samrl_sim', 'sim_bridge', 'samrl_sim.bridge_node', 'sim_bridge', param_files=param_files,
                    parameters={'task': task, 'episodes': int_argument(args, 'episodes'),
                                'seed': int_argument(args, 'seed'),
                                'image_width': int_argument(args, 'image_width', 16),
                                'image_height': int_argument(args, 'image_height', 16),
                                'lockstep': _lockstep(args)})


def _lockstep(args: dict[str, str]) -> bool:
    return args['lockstep'] == 'true'


def _shared_nodes(task: str, args: dict[str, str], user_files: tuple[str, ...]) -> list[NodeSpec]:
    """Perception and the model: the same on both worlds."""
    nodes = []
    if args['segmentation'] != 'none':
        nodes.append(NodeSpec('samrl_perception', 'capture_node', 'samrl_perception.capture_node', 'capture_node',
                              param_files=user_files))
        nodes.append(NodeSpec('samrl_perception', 'segmentation_node', 'samrl_perception.segmentation_node',
                              'segmentation_node', param_files=user_files,
                              parameters={'source': args['segmentation'], 'target_object': TARGETS[task],
                                          'scene_objects': ','.join(TASK_OBJECTS[task])}))
    if args['model'] == 'true':
        nodes.append(NodeSpec('samrl_model', 'model_node', 'samrl_model.model_node', 'model_node',
                              param_files=user_files, parameters={'task': task}))
    return nodes


def _samrl_controller(task: str, args: dict[str, str], user_files: tuple[str, ...]) -> list[NodeSpec]:
    """The learned controller: the actor on M's state and the view step moving the camera."""
    parameters = {'task': task, 'lockstep': _lockstep(args)}
    return [NodeSpec('samrl_policy', 'policy_node', 'samrl_policy.policy_node', 'policy_node',
                     param_files=user_files, parameters=parameters),
            NodeSpec('samrl_viewpoint', 'viewpoint_node', 'samrl_viewpoint.viewpoint_node', 'viewpoint_node',
                     param_files=user_files, parameters=parameters)]


def build(task: str, args: dict[str, str]) -> list[NodeSpec]:
    user_files = _user_param_files(args)
    if _use_sim(args):
        sim_files = (config_file(SIM_PARAMETERS), *user_files)
        required = [_sim_bridge(task, args, sim_files)]  # counts episodes: its exit ends the graph
        others = _shared_nodes(task, args, user_files)
        if args['controller'] == 'oracle':
            others.append(NodeSpec('samrl_sim', 'oracle_controller', 'samrl_sim.oracle_node', 'oracle_controller',
                                   param_files=sim_files, parameters={'task': task}))
        elif args['controller'] == 'samrl':
            others += _samrl_controller(task, args, user_files)
    else:
        hardware.check_arguments(args)
        if args['segmentation'] == 'oracle':
            raise LaunchArgumentError("segmentation:=oracle reads the simulator's labels: use_sim:=true only")
        cell = hardware.nodes(args, user_files)
        required = [node for node in cell if node.required]
        others = [*(node for node in cell if not node.required), *_shared_nodes(task, args, user_files)]
    # Our nodes respawn; another package's one-shot tool (the controller spawner) just runs once.
    return [*required, *(node.respawning(RESPAWN_DELAY_S) if node.module else node for node in others)]


def includes(args: dict[str, str]) -> list[IncludeSpec]:
    return [] if _use_sim(args) else hardware.includes(args)


def task_graph(task: str) -> Graph:
    return Graph(
        name=task,
        description=f'{task}: the PyBullet world (sim bridge) or the real cell (use_sim:=false), perception, '
                    'the model M and a controller',
        arguments=(
            LaunchArgument('use_sim', 'true', 'true: the PyBullet bridge stands in for both arms and the camera; '
                           'false: the real cell (RealSense, Flexiv Rizon and Franka drivers, arm adapters, '
                           'calibration on /tf_static; ROS 2 only), without the bridge and the oracle', SWITCH),
            LaunchArgument('episodes', '0', 'use_sim:=true: stop the graph after this many episodes '
                           '(0: run until Ctrl-C)'),
            LaunchArgument('seed', '0', 'use_sim:=true: seed of the first episode; episode i uses seed + i'),
            LaunchArgument('controller', 'oracle', 'controller driving the Franka: the simulator\'s oracle '
                           '(use_sim:=true only; left out on the real cell), samrl (the Learn@Sim actor and the '
                           'view step on M\'s state; use_sim:=true only) or none', CONTROLLERS),
            LaunchArgument('segmentation', 'mask_rcnn', 'object masks: the trained network, the simulator\'s '
                           'labels (ablations, use_sim:=true only) or no perception nodes', SEGMENTATION),
            LaunchArgument('model', 'true', 'run model_node (Real2Sim and renders of M)', SWITCH),
            LaunchArgument('lockstep', 'false', 'use_sim:=true: Algorithm 1 one control step at a time: the world '
                           'steps when a command comes and sends a frame after each step and camera move; the '
                           'view step and the actor act once per step (the bridge\'s command latency is then the '
                           'time per control step)', SWITCH),
            LaunchArgument('image_width', '640', 'use_sim:=true: camera image width (px)'),
            LaunchArgument('image_height', '480', 'use_sim:=true: camera image height (px)'),
            LaunchArgument('params_file', '', "ROS 2 parameter file for samrl's nodes, applied after the shipped "
                           'ones (start from config/parameters.yaml, which lists every parameter with its '
                           'default); launch arguments still win'),
            *hardware.ARGUMENTS,
        ),
        build=partial(build, task),
        build_includes=includes,
    )
