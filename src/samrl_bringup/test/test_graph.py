"""Graph descriptions: pure functions from launch arguments to node specifications."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from samrl_bringup.graph import LaunchArgumentError, NodeSpec, parse_launch_arguments, process_specs, share_directory
from samrl_bringup.graphs import GRAPHS, get_graph
from samrl_common.params import split_ros_args


def test_every_graph_builds_with_its_defaults():
    for graph in GRAPHS.values():
        nodes = graph.nodes()
        assert nodes and len({n.name for n in nodes}) == len(nodes)
        for node in nodes:
            assert importlib.util.find_spec(node.module) is not None, node.module
            for path in node.param_files:
                assert Path(path).exists()


def test_every_graph_has_a_ros2_launch_file():
    launch_dir = share_directory() / 'launch'
    for name in GRAPHS:
        text = (launch_dir / f'{name}.launch.py').read_text()
        assert f"generate_launch_description_for('{name}')" in text


def test_ros_arguments_round_trip_through_our_parser():
    spec = NodeSpec('pkg', 'exe', 'pkg.mod', 'cam', namespace='/robot', param_files=('/tmp/p.yaml',),
                    parameters={'rate_hz': 15.0, 'enabled': True, 'ids': [1, 2]}, remappings=(('image', '/x'),))
    rest, ros_args = split_ros_args(spec.ros_arguments())
    assert rest == []
    assert ros_args.node_name == 'cam' and ros_args.namespace == '/robot'
    assert ros_args.param_files == ('/tmp/p.yaml',)
    assert ros_args.params == {'rate_hz': 15.0, 'enabled': True, 'ids': [1, 2]}
    assert ros_args.remaps == {'image': '/x'}


def test_process_specs_run_each_node_as_its_module():
    specs = process_specs(get_graph('demo').nodes({'images': '5'}), env={'ROS_DOMAIN_ID': '3'})
    assert [s.name for s in specs] == ['talker', 'listener']
    assert specs[1].argv[1:3] == ('-m', 'samrl_common.demo.listener')
    assert 'exit_after_images:=5' in specs[1].argv


@pytest.mark.parametrize('given, message', [
    ({'colour': 'red'}, "unknown launch argument 'colour' for demo; declared: encoding, images"),
    ({'encoding': 'bgr16'}, 'encoding:=bgr16 is not one of rgb8, 32FC1'),
    ({'images': 'many'}, 'images:=many is not an integer'),
    ({'images': '-1'}, 'images:=-1 must be >= 0'),
])
def test_bad_launch_arguments_are_named(given, message):
    with pytest.raises(LaunchArgumentError, match=message):
        get_graph('demo').nodes(given)


def test_launch_argument_syntax():
    assert parse_launch_arguments(['a:=1', 'b:=x:=y']) == {'a': '1', 'b': 'x:=y'}
    with pytest.raises(LaunchArgumentError, match="name:=value, got 'a=1'"):
        parse_launch_arguments(['a=1'])


def test_unknown_graph_lists_the_known_ones():
    with pytest.raises(KeyError, match='available: demo'):
        get_graph('nope')


def test_rviz_config_shows_topics_the_nodes_publish():
    """The RViz view names live topics: a renamed topic must be renamed there too."""
    import yaml

    from samrl_description.names import COLOR_TOPIC
    from samrl_perception.capture_node import POINTS_TOPIC
    from samrl_perception.segmentation_node import OVERLAY_TOPIC, TARGET_POINTS_TOPIC
    config = yaml.safe_load((share_directory() / 'rviz' / 'samrl.rviz').read_text())
    displays = config['Visualization Manager']['Displays']
    topics = {d['Topic']['Value'] for d in displays if 'Topic' in d}
    assert {POINTS_TOPIC, TARGET_POINTS_TOPIC, OVERLAY_TOPIC, COLOR_TOPIC, '/samrl/model/rendered/image_raw'} == topics
    assert config['Visualization Manager']['Global Options']['Fixed Frame'] == 'world'
    model_node = Path(importlib.util.find_spec('samrl_model.model_node').origin).read_text()
    assert "'/samrl/model/rendered/image_raw'" in model_node


def test_task_graphs_tell_segmentation_the_scene_objects():
    """Each task's segmentation_node knows its two objects, and its parameters pass the node's checks."""
    from samrl_description.tasks import TASK_OBJECTS
    from samrl_perception.segmentation_node import SegmentationParams
    for task, objects in TASK_OBJECTS.items():
        node = next(n for n in get_graph(task).nodes() if n.name == 'segmentation_node')
        params = SegmentationParams(**node.parameters)
        assert params.scene_object_names() == objects and params.target_object in objects
