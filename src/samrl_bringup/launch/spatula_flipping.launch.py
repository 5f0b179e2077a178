"""ros2 launch samrl_bringup spatula_flipping.launch.py [use_sim:=true|false] [episodes:=N] [seed:=S] ...

use_sim:=false runs the real cell (robot_sn:=..., franka_ip:=..., or fake_hardware:=true); --show-args
lists every argument with its description (samrl_bringup.graphs.tasks and .hardware).
"""

from samrl_bringup.ros_launch import generate_launch_description_for


def generate_launch_description():
    return generate_launch_description_for('spatula_flipping')
