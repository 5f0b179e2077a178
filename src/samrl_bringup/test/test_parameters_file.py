"""config/parameters.yaml lists every parameter of every node with its default (generated, then checked)."""

from __future__ import annotations

from samrl_bringup import parameters_file
from samrl_common.parameter_descriptors import ROS_PARAMETER_TYPES
from samrl_common.params import describe_parameters, load_params_file


def test_parameters_file_is_what_the_nodes_declare():
    assert parameters_file.path().read_text() == parameters_file.generate(), \
        'config/parameters.yaml is out of date: run `samrl params --write`'


def _as_in_yaml(value):
    return list(value) if isinstance(value, tuple) else value


def test_every_node_reads_its_defaults_back_from_the_file():
    """Read with the parser the nodes use: every declared name, with the same value and type as the default."""
    path = str(parameters_file.path())
    checked = 0
    for key, node in parameters_file.our_nodes().items():
        if not parameters_file.importable(node.module):
            continue  # samrl_hardware absent from this checkout
        defaults = {d.name: _as_in_yaml(d.default)
                    for d in describe_parameters(parameters_file.params_class(node.module)) if d.default is not None}
        from_file = load_params_file(path, '/' + key)
        assert from_file == defaults, key
        assert {name: type(value) for name, value in from_file.items()} == \
            {name: type(value) for name, value in defaults.items()}, key
        checked += 1
    assert checked >= 7  # the demo's two nodes and the task graphs' five, at least


def test_every_parameter_has_a_description_a_ros_type_and_a_default_in_its_range():
    """What `ros2 param describe` will show for every node (parameter_descriptors)."""
    for node in parameters_file.our_nodes().values():
        if parameters_file.importable(node.module):
            for described in describe_parameters(parameters_file.params_class(node.module)):
                where = f'{node.module}: {described.name}'
                assert described.description, f'{where} has no description'
                assert described.type in ROS_PARAMETER_TYPES, where
                bounds = described.range
                assert bounds is None or bounds[0] <= described.default <= bounds[1], where


def test_our_nodes_cover_both_worlds():
    names = set(parameters_file.our_nodes())
    assert {'sim_bridge', 'oracle_controller', 'franka_adapter', 'rizon_adapter', 'calibration_publisher',
            'talker', 'listener', 'capture_node', 'segmentation_node', 'model_node'} <= names
    assert 'cartesian_impedance_example_controller_spawner' not in names  # another package's node
