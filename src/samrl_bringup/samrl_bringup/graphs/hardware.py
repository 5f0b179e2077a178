"""The real cell of a task graph (`use_sim:=false`): drivers, arm adapters and calibration.

    ros2 launch samrl_bringup needle_threading.launch.py use_sim:=false robot_sn:=Rizon4s-123456 \
        franka_ip:=172.16.0.2 [fake_hardware:=true] [franka_controller:=...] [camera_config:=my.yaml]

Included launch files (argument names as of realsense-ros 4.55+, flexiv_ros2 jazzy with robot_sn
and franka_ros2 jazzy v3.4):
  * realsense2_camera/launch/rs_launch.py: the D435 on the Rizon's flange as node /camera/camera
    (the topics in samrl_description.names), aligned depth on; colour and depth profiles come from
    `camera_config` (its values override rs_launch's arguments, so align_depth is also checked there);
  * flexiv_bringup/launch/rizon.launch.py: the camera arm, at the ROS root, its own RViz off, its
    tf frames prefixed `rizon_` (config/calibration.yaml names them so);
  * franka_bringup/launch/franka.launch.py: the FR3 in namespace `franka_namespace` (two
    controller_managers cannot share one name), with the gripper.
The Franka's Cartesian controller is spawned *inactive*: nothing moves until a person has checked
the cell in RViz and activated it (README, "Real robot"). The adapters and the calibration
publisher are required: if one exits, the whole launch (drivers included) shuts down. Parameters
the adapters must share with the drivers (topics in the Franka's namespace, fake hardware, the
calibration file) are set here from the launch arguments; the rest come from their defaults and
params_file.
"""

from __future__ import annotations

from samrl_bringup.graph import IncludeSpec, LaunchArgument, LaunchArgumentError, NodeSpec, config_file, file_argument
from samrl_common.params import validate_namespace

SWITCH = ('true', 'false')
HARDWARE_PACKAGE = 'samrl_hardware'
CAMERA_CONFIG = 'realsense.yaml'
CALIBRATION = 'calibration.yaml'
RIZON_PLANNERS = ('moveit', 'fake')
CAMERA_NAME = 'camera'                  # node /camera/camera: the topics of samrl_description.names
# flexiv_ros2 roots the Rizon at a link "world" and has no prefix argument: its robot_state_publisher
# gets frame_prefix (set on the include's nodes), giving rizon_world, rizon_flange (config/calibration.yaml).
RIZON_FRAME_PREFIX = 'rizon_'
FRANKA_ROBOT_TYPE = 'fr3'               # franka_ros2 drives the FR3 only (a Panda needs multipanda_ros2)
FRANKA_LOAD_GRIPPER = 'true'
FAKE_FRANKA_ADDRESS = 'dont-care'       # franka_ros2's own placeholder for use_fake_hardware:=true
FAKE_RIZON_SN = 'Rizon4s-000000'        # fake hardware needs no serial, but flexiv_ros2 names topics after it
DEFAULT_FRANKA_CONTROLLER = 'cartesian_impedance_example_controller'  # holds the pose it is given
DEFAULT_FRANKA_CONTROLLER_INPUT = 'equilibrium_pose'  # that controller's PoseStamped target topic (~/...)
FRANKA_STATE_TOPIC = 'franka_robot_state_broadcaster/current_pose'  # measured TCP pose, in the namespace
CONTROLLER_MANAGER_TIMEOUT_S = 30       # the spawner waits this long for the Franka's controller_manager

REALSENSE_HINT = 'apt install ros-jazzy-realsense2-camera'
FLEXIV_HINT = 'build flexiv_ros2 (jazzy branch, with RDK) in the workspace (README, "Real robot")'
FRANKA_HINT = 'build franka_ros2 (jazzy branch, with libfranka) in the workspace (README, "Real robot")'

ARGUMENTS = (
    LaunchArgument('robot_sn', '', 'use_sim:=false: serial number of the Flexiv Rizon holding the camera, '
                   'without spaces (e.g. Rizon4s-123456); may stay empty with fake_hardware:=true'),
    LaunchArgument('rizon_type', 'Rizon4s', 'use_sim:=false: model of the camera arm (Rizon4, Rizon4s, Rizon10, '
                   'Rizon10s, ...)'),
    LaunchArgument('franka_ip', '', "use_sim:=false: IP address or host name of the Franka FR3's control box "
                   '(e.g. 172.16.0.2); may stay empty with fake_hardware:=true'),
    LaunchArgument('franka_controller', DEFAULT_FRANKA_CONTROLLER, "use_sim:=false: the Franka's Cartesian "
                   'controller, spawned inactive (activate it after the RViz checks); it must be defined in '
                   'franka_controllers_yaml'),
    LaunchArgument('franka_controller_input', DEFAULT_FRANKA_CONTROLLER_INPUT, 'use_sim:=false: topic, relative '
                   "to the controller, on which franka_adapter publishes its targets (the controller's ~/ topic)"),
    LaunchArgument('franka_controllers_yaml', '', "use_sim:=false: controllers file of the Franka's "
                   "controller_manager ('': franka_bringup's config/controllers.yaml)"),
    LaunchArgument('franka_namespace', 'franka', "use_sim:=false: ROS namespace of the Franka's driver "
                   '(controller_manager, joint_states); the Rizon driver runs at the root'),
    LaunchArgument('fake_hardware', 'false', "use_sim:=false: both arm drivers run ros2_control's fake hardware, "
                   'which mirrors commands to states (a dry run without the arms; the camera is still needed)',
                   SWITCH),
    LaunchArgument('calibration_file', '', 'use_sim:=false: the cell\'s calibration (intrinsics, hand-eye, the '
                   f"Rizon's base), read by calibration_publisher and rizon_adapter ('': config/{CALIBRATION})"),
    LaunchArgument('rizon_planner', 'moveit', "use_sim:=false: rizon_adapter's planner: moveit (moveit_py, the real "
                   'or the fake Rizon) or fake (a kinematic stand-in without MoveIt)', RIZON_PLANNERS),
    LaunchArgument('camera_config', '', 'use_sim:=false: realsense2_camera parameter file with the colour and '
                   f"depth profiles ('': config/{CAMERA_CONFIG})"),
)


def check_arguments(args: dict[str, str]) -> None:
    """Refuse a real-cell launch that could not reach its robots, naming the argument to set."""
    fake = args['fake_hardware'] == 'true'
    if not fake and not args['robot_sn']:
        raise LaunchArgumentError('use_sim:=false needs robot_sn:=<serial number of the Rizon, e.g. '
                                  'Rizon4s-123456> (or fake_hardware:=true for a dry run)')
    if ' ' in args['robot_sn']:
        raise LaunchArgumentError(f'robot_sn:={args["robot_sn"]!r} must not contain spaces (flexiv_ros2)')
    if not fake and not args['franka_ip']:
        raise LaunchArgumentError("use_sim:=false needs franka_ip:=<address of the FR3's control box> "
                                  '(or fake_hardware:=true for a dry run)')
    if not args['franka_controller']:
        raise LaunchArgumentError('franka_controller must name a controller')
    if not args['franka_namespace'].strip('/'):
        raise LaunchArgumentError("franka_namespace must not be empty: the Rizon's controller_manager is at the root")
    try:
        validate_namespace('/' + args['franka_namespace'].strip('/'))
    except ValueError as exc:
        raise LaunchArgumentError(f'franka_namespace:={args["franka_namespace"]}: {exc}') from None


def includes(args: dict[str, str]) -> list[IncludeSpec]:
    """The three drivers' launch files with their arguments."""
    fake = args['fake_hardware']
    camera = IncludeSpec('realsense2_camera', 'launch/rs_launch.py', {
        'camera_name': CAMERA_NAME, 'camera_namespace': CAMERA_NAME, 'align_depth.enable': 'true',
        'config_file': file_argument(args, 'camera_config') if args['camera_config'] else config_file(CAMERA_CONFIG)},
        REALSENSE_HINT)
    # flexiv_ros2 1.x calls the model rizon_type (rizon4s), 2.x robot_type (Rizon4s): pass both, each
    # version reads the one it declares.
    rizon = IncludeSpec('flexiv_bringup', 'launch/rizon.launch.py', {
        'robot_sn': args['robot_sn'] or FAKE_RIZON_SN, 'rizon_type': args['rizon_type'].lower(),
        'robot_type': args['rizon_type'],
        'use_fake_hardware': fake, 'start_rviz': 'false'}, FLEXIV_HINT,
        parameters={'frame_prefix': RIZON_FRAME_PREFIX})
    franka_arguments = {
        'robot_type': FRANKA_ROBOT_TYPE, 'robot_ip': args['franka_ip'] or FAKE_FRANKA_ADDRESS,
        'namespace': args['franka_namespace'].strip('/'), 'use_fake_hardware': fake,
        'load_gripper': FRANKA_LOAD_GRIPPER}
    if args['franka_controllers_yaml']:
        franka_arguments['controllers_yaml'] = file_argument(args, 'franka_controllers_yaml')
    franka = IncludeSpec('franka_bringup', 'launch/franka.launch.py', franka_arguments, FRANKA_HINT)
    return [camera, rizon, franka]


def _namespace(args: dict[str, str]) -> str:
    return '/' + args['franka_namespace'].strip('/')


def franka_adapter_parameters(args: dict[str, str]) -> dict[str, object]:
    """What franka_adapter must agree on with the Franka driver this launch starts."""
    namespace, controller = _namespace(args), args['franka_controller']
    return {'controller_topic': f'{namespace}/{controller}/{args["franka_controller_input"]}',
            'state_topic': f'{namespace}/{FRANKA_STATE_TOPIC}',
            'base_frame': f'{FRANKA_ROBOT_TYPE}_link0',
            'fake_hardware': args['fake_hardware'] == 'true'}


def nodes(args: dict[str, str], param_files: tuple[str, ...]) -> list[NodeSpec]:
    """Calibration on /tf_static, the two arm adapters and the Franka controller's spawner."""
    controller, namespace = args['franka_controller'], _namespace(args)
    calibration = file_argument(args, 'calibration_file') if args['calibration_file'] else config_file(CALIBRATION)
    # Not required: a spawner exits once the controller is loaded.
    spawner = NodeSpec('controller_manager', 'spawner', '', f'{controller}_spawner', namespace=namespace,
                       required=False, arguments=(
                           controller, '--inactive', '--controller-manager', f'{namespace}/controller_manager',
                           '--controller-manager-timeout', str(CONTROLLER_MANAGER_TIMEOUT_S)))
    return [
        NodeSpec(HARDWARE_PACKAGE, 'calibration_publisher', 'samrl_hardware.calibration_node',
                 'calibration_publisher', param_files=param_files, parameters={'calibration_file': calibration}),
        NodeSpec(HARDWARE_PACKAGE, 'franka_adapter', 'samrl_hardware.franka_node', 'franka_adapter',
                 param_files=param_files, parameters=franka_adapter_parameters(args)),
        NodeSpec(HARDWARE_PACKAGE, 'rizon_adapter', 'samrl_hardware.rizon_node', 'rizon_adapter',
                 param_files=param_files, parameters={'calibration_file': calibration,
                                                      'planner': args['rizon_planner']}),
        spawner,
    ]
