"""Frame names (tf) and topic names shared by the drivers, the sim bridge and the nodes.

The camera topics are realsense2_camera 4.x's with `align_depth.enable:=true` (node
/camera/camera); /joint_states is what both arms' ROS 2 drivers (and the sim bridge) publish.
"""
from __future__ import annotations

WORLD_FRAME = 'world'
OPTICAL_FRAME = 'camera_color_optical_frame'        # REP-103 optical frame of the RealSense colour stream
PANDA_BASE_FRAME = 'panda_link0'
TCP_FRAME = 'panda_grasptarget'                     # the Panda's tool centre point, between the fingertips

COLOR_TOPIC = '/camera/camera/color/image_raw'
COLOR_INFO_TOPIC = '/camera/camera/color/camera_info'
DEPTH_TOPIC = '/camera/camera/aligned_depth_to_color/image_raw'
DEPTH_INFO_TOPIC = '/camera/camera/aligned_depth_to_color/camera_info'
JOINT_STATES_TOPIC = '/joint_states'
CAMERA_GOAL_TOPIC = '/samrl/camera_goal'     # geometry_msgs/PoseStamped of the optical frame in the world

# Published by the sim bridge only (privileged: ablations and monitoring, never on a robot).
GROUND_TRUTH_LABELS_TOPIC = '/samrl/sim/ground_truth/labels'
