"""so101_driver: the SO-101 robot for ROS 2, in rooms: ``hardware`` (Feetech bus, calibration, follower/leader/camera
nodes: the only code that touches devices), ``model`` (URDF, kinematics, joint command guard), ``sim`` (the MuJoCo
simulation that stands in for the hardware) and ``vision`` (the one camera-frame preprocessing)."""
