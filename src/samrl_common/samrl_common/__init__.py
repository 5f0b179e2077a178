"""Node runtime (rclpy or Cyclone DDS speaking the ROS 2 wire protocol), message types, parameters, tf and the launcher."""
