"""The robot model: the URDF, forward/inverse kinematics and joint limits (no hardware, no ROS graph)."""
