"""PyBullet "real world": bridge node for the Franka, the camera arm and the RealSense; tasks, gymnasium environments and oracle controllers."""
