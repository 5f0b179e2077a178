"""demo: the minimal two-process graph of the runtime (talker -> listener over DDS).

The talker publishes a 640x480 test image, chatter and tf and serves a reset
service; the listener receives them, calls the service, looks the camera up in
tf and, with `images:=N`, ends the graph after N images.
"""

from __future__ import annotations

from samrl_bringup.graph import Graph, LaunchArgument, NodeSpec, config_file, int_argument


def build(args: dict[str, str]) -> list[NodeSpec]:
    params = config_file('demo.yaml')
    return [
        NodeSpec('samrl_common', 'demo_talker', 'samrl_common.demo.talker', 'talker', param_files=(params,),
                 parameters={'encoding': args['encoding']}, remappings=(('image', '/camera/image_raw'),)),
        NodeSpec('samrl_common', 'demo_listener', 'samrl_common.demo.listener', 'listener', param_files=(params,),
                 parameters={'exit_after_images': int_argument(args, 'images')},
                 remappings=(('image', '/camera/image_raw'),)),
    ]


GRAPH = Graph(
    name='demo',
    description=__doc__.splitlines()[0],
    arguments=(
        LaunchArgument('encoding', 'rgb8', 'image encoding of the talker', ('rgb8', '32FC1')),
        LaunchArgument('images', '150', 'images after which the listener ends the graph (0: run until Ctrl-C)'),
    ),
    build=build,
)
