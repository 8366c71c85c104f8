"""The weight-file toolchain: the agent-file format, importers of RoboBase and LeRobot checkpoints (read without
running code from them), and the checkpoint_tool CLI that inspects, imports, exports and repairs."""
