"""ros2 launch samrl_bringup peg_insertion.launch.py [episodes:=N] [seed:=S] [controller:=oracle|none]"""

from samrl_bringup.ros_launch import generate_launch_description_for


def generate_launch_description():
    return generate_launch_description_for('peg_insertion')
