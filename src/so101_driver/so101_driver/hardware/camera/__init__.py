"""The wrist camera: frame sources, the reader thread and camera-info files."""
