"""The task graphs' launch descriptions for both worlds: node set, parameters, included drivers (issue 15)."""

from __future__ import annotations

import importlib.metadata

import pytest
import yaml

from samrl_bringup import parameters_file
from samrl_bringup.cli import main
from samrl_bringup.graph import (
    IncludeSpec,
    LaunchArgumentError,
    NeedsRos2Error,
    NodeSpec,
    check_standalone,
    process_specs,
    share_directory,
)
from samrl_bringup.graphs import get_graph, hardware
from samrl_bringup.ros_launch import include_path, node_arguments
from samrl_common.params import resolve_parameters, split_ros_args
from samrl_description.tasks import TASK_NAMES

DRY_RUN = {'use_sim': 'false', 'fake_hardware': 'true'}
REAL_CELL = {'use_sim': 'false', 'robot_sn': 'Rizon4s-123456', 'franka_ip': '172.16.0.2'}
SIM_NODES = {'sim_bridge', 'capture_node', 'segmentation_node', 'model_node', 'oracle_controller'}
SHARED_NODES = {'capture_node', 'segmentation_node', 'model_node'}
HARDWARE_NODES = {'calibration_publisher', 'franka_adapter', 'rizon_adapter'}
DRIVERS = {'realsense2_camera/launch/rs_launch.py', 'flexiv_bringup/launch/rizon.launch.py',
           'franka_bringup/launch/franka.launch.py'}


def _by_name(nodes: list[NodeSpec]) -> dict[str, NodeSpec]:
    return {node.name: node for node in nodes}


@pytest.mark.parametrize('task', TASK_NAMES)
def test_simulated_graph_has_the_bridge_and_the_oracle_and_no_drivers(task):
    graph = get_graph(task)
    nodes = _by_name(graph.nodes({'use_sim': 'true'}))
    assert set(nodes) == SIM_NODES and not graph.includes({'use_sim': 'true'})
    assert nodes['sim_bridge'].required and nodes['sim_bridge'].parameters['task'] == task
    assert all(node.respawn for name, node in nodes.items() if name != 'sim_bridge')
    assert graph.nodes() == graph.nodes({'use_sim': 'true'})  # the simulation stays the default


@pytest.mark.parametrize('task', TASK_NAMES)
@pytest.mark.parametrize('given', [DRY_RUN, REAL_CELL], ids=['fake_hardware', 'real'])
def test_real_cell_replaces_bridge_and_oracle_by_drivers_adapters_and_calibration(task, given):
    graph = get_graph(task)
    nodes = _by_name(graph.nodes(given))
    spawner = f'{hardware.DEFAULT_FRANKA_CONTROLLER}_spawner'
    assert set(nodes) == HARDWARE_NODES | SHARED_NODES | {spawner}
    assert all(nodes[name].required and not nodes[name].respawn for name in HARDWARE_NODES)
    assert all(nodes[name].respawn for name in SHARED_NODES)
    assert {include.label for include in graph.includes(given)} == DRIVERS
    assert nodes['model_node'].parameters == {'task': task}
    calibration = share_directory() / 'config' / hardware.CALIBRATION
    assert nodes['calibration_publisher'].parameters == {'calibration_file': str(calibration)}
    assert nodes['rizon_adapter'].parameters == {'calibration_file': str(calibration), 'planner': 'moveit'}


def test_real_cell_driver_arguments():
    includes = {include.package: include.arguments for include in get_graph('peg_insertion').includes(REAL_CELL)}
    camera = includes['realsense2_camera']
    assert camera['align_depth.enable'] == 'true' and camera['config_file'].endswith('config/realsense.yaml')
    assert (camera['camera_namespace'], camera['camera_name']) == ('camera', 'camera')  # names.COLOR_TOPIC
    assert includes['flexiv_bringup'] == {'robot_sn': 'Rizon4s-123456', 'rizon_type': 'rizon4s',
                                          'robot_type': 'Rizon4s', 'use_fake_hardware': 'false',
                                          'start_rviz': 'false'}
    rizon = next(i for i in get_graph('peg_insertion').includes(REAL_CELL) if i.package == 'flexiv_bringup')
    assert rizon.parameters == {'frame_prefix': 'rizon_'}  # config/calibration.yaml's rizon_world, rizon_flange
    franka = includes['franka_bringup']
    assert franka['robot_ip'] == '172.16.0.2' and franka['namespace'] == 'franka'
    assert franka['use_fake_hardware'] == 'false' and franka['robot_type'] == 'fr3'
    assert 'controllers_yaml' not in franka  # franka_bringup's own unless given


def test_dry_run_puts_both_arms_and_the_adapter_on_fake_hardware():
    graph = get_graph('needle_threading')
    includes = {include.package: include.arguments for include in graph.includes(DRY_RUN)}
    assert includes['flexiv_bringup']['use_fake_hardware'] == 'true'
    assert includes['flexiv_bringup']['robot_sn'] == hardware.FAKE_RIZON_SN
    assert includes['franka_bringup']['use_fake_hardware'] == 'true'
    assert includes['franka_bringup']['robot_ip'] == hardware.FAKE_FRANKA_ADDRESS
    assert _by_name(graph.nodes(DRY_RUN))['franka_adapter'].parameters['fake_hardware'] is True


def test_franka_controller_is_spawned_inactive_in_the_franka_namespace():
    given = {**REAL_CELL, 'franka_controller': 'my_cartesian_controller', 'franka_namespace': 'arm',
             'franka_controller_input': 'target_frame'}
    nodes = _by_name(get_graph('spatula_flipping').nodes(given))
    spawner = nodes['my_cartesian_controller_spawner']
    assert (spawner.package, spawner.executable, spawner.module) == ('controller_manager', 'spawner', '')
    assert spawner.arguments[:2] == ('my_cartesian_controller', '--inactive')
    assert '/arm/controller_manager' in spawner.arguments and spawner.namespace == '/arm'
    assert not spawner.required and not spawner.respawn  # a spawner exits once the controller is loaded
    adapter = nodes['franka_adapter'].parameters
    assert adapter['controller_topic'] == '/arm/my_cartesian_controller/target_frame'
    assert adapter['state_topic'] == '/arm/franka_robot_state_broadcaster/current_pose'
    assert node_arguments(spawner)['arguments'] == list(spawner.arguments)


@pytest.mark.parametrize('given, message', [
    ({'use_sim': 'false'}, 'needs robot_sn'),
    ({'use_sim': 'false', 'robot_sn': 'Rizon4s-1'}, 'needs franka_ip'),
    ({**REAL_CELL, 'robot_sn': 'Rizon4s 1'}, 'must not contain spaces'),
    ({**DRY_RUN, 'segmentation': 'oracle'}, "simulator's labels"),
    ({**DRY_RUN, 'franka_namespace': '9arm'}, 'franka_namespace'),
    ({**DRY_RUN, 'franka_namespace': '/'}, "franka_namespace must not be empty"),
    ({**DRY_RUN, 'franka_controller': ''}, 'franka_controller'),
    ({**DRY_RUN, 'camera_config': '/nonexistent/rs.yaml'}, 'camera_config:=/nonexistent/rs.yaml cannot be read'),
    ({'params_file': '/nonexistent/p.yaml'}, 'params_file:=/nonexistent/p.yaml cannot be read'),
    ({'use_sim': 'maybe'}, 'use_sim:=maybe is not one of true, false'),
])
def test_bad_real_cell_arguments_are_named(given, message):
    graph = get_graph('needle_threading')
    with pytest.raises(LaunchArgumentError, match=message):
        graph.nodes(given)
        graph.includes(given)


def test_every_parameter_a_graph_passes_is_accepted_by_its_node():
    """Each node's --ros-args (what ros2 launch also passes, as parameters=[...]) resolve without error."""
    for task in TASK_NAMES:
        for given in ({}, {'controller': 'none', 'segmentation': 'oracle'}, DRY_RUN, REAL_CELL):
            for node in get_graph(task).nodes(given):
                if not node.module or not parameters_file.importable(node.module):
                    continue  # another package's tool, or samrl_hardware absent from this checkout
                _, ros_args = split_ros_args(node.ros_arguments())
                resolve_parameters(parameters_file.params_class(node.module), ros_args, '/' + node.name)


def test_user_params_file_reaches_every_samrl_node(tmp_path):
    user = tmp_path / 'lab.yaml'
    user.write_text('capture_node:\n  ros__parameters:\n    sync_tolerance_s: 0.01\n')
    for given in ({}, DRY_RUN):
        for node in get_graph('peg_insertion').nodes({**given, 'params_file': str(user)}):
            assert (str(user) in node.param_files) == node.package.startswith('samrl_'), node.name
            assert node.param_files[-1:] == (str(user),) or not node.package.startswith('samrl_')


def test_hardware_executables_exist():
    """The adapters and the calibration publisher are console scripts of samrl_hardware."""
    scripts = {entry.name: entry.value for entry in importlib.metadata.entry_points(group='console_scripts')}
    nodes = [node for node in get_graph('needle_threading').nodes(DRY_RUN) if node.package == 'samrl_hardware']
    assert nodes
    for node in nodes:
        assert node.executable in scripts, f'{node.executable}: not installed (pip install -e src/samrl_hardware)'
        assert scripts[node.executable] == f'{node.module}:main', node.executable


def test_launch_arguments_carry_descriptions():
    for task in TASK_NAMES:
        for argument in get_graph(task).arguments:
            assert len(argument.description) > 15, argument.name


def test_camera_profile_file():
    """Aligned depth on; colour and depth at one size (capture_node pairs them pixel for pixel)."""
    config = yaml.safe_load((share_directory() / 'config' / hardware.CAMERA_CONFIG).read_text())
    assert config['align_depth.enable'] is True and config['enable_sync'] is True
    color = config['rgb_camera.color_profile'].split(',')
    depth = config['depth_module.depth_profile'].split(',')
    assert len(color) == len(depth) == 3 and color[:2] == depth[:2]
    assert config['publish_tf'] is True  # camera_link -> optical; calibration puts camera_link on the flange


def test_include_path_names_the_missing_package(tmp_path):
    spec = IncludeSpec('flexiv_bringup', 'launch/rizon.launch.py', {}, 'build flexiv_ros2')

    def unknown(package):
        raise LookupError(package)

    with pytest.raises(LaunchArgumentError, match='package flexiv_bringup is not installed: build flexiv_ros2'):
        include_path(spec, unknown)
    with pytest.raises(LaunchArgumentError, match='rizon.launch.py does not exist'):
        include_path(spec, lambda package: str(tmp_path))
    (tmp_path / 'launch').mkdir()
    (tmp_path / 'launch' / 'rizon.launch.py').write_text('')
    assert include_path(spec, lambda package: str(tmp_path)) == str(tmp_path / 'launch' / 'rizon.launch.py')


def test_standalone_launcher_refuses_the_real_cell_with_the_ros2_command(capsys):
    with pytest.raises(NeedsRos2Error, match='ros2 launch samrl_bringup needle_threading.launch.py use_sim:=false'):
        check_standalone(get_graph('needle_threading'), DRY_RUN)
    assert main(['launch', 'needle_threading', 'use_sim:=false', 'fake_hardware:=true']) == 2
    error = capsys.readouterr().err
    assert 'need ROS 2' in error and 'realsense2_camera/launch/rs_launch.py' in error
    with pytest.raises(NeedsRos2Error, match='controller_manager/spawner'):
        process_specs(get_graph('needle_threading').nodes(DRY_RUN))
    assert check_standalone(get_graph('needle_threading'), {}) == get_graph('needle_threading').nodes()
