"""so101_bringup: launch files, parameter files, rviz2 config, and the runner and recorder for machines without ROS
tools."""
