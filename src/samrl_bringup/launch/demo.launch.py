"""ros2 launch samrl_bringup demo.launch.py [encoding:=rgb8|32FC1] [images:=N]"""

from samrl_bringup.ros_launch import generate_launch_description_for


def generate_launch_description():
    return generate_launch_description_for('demo')
