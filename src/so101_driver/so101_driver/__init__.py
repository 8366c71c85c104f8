"""so101_driver: the SO-101 robot for ROS 2: Feetech bus, calibration, follower/leader/camera nodes, the MuJoCo
simulation that stands in for them, the robot model and kinematics, and the one camera-frame preprocessing."""
