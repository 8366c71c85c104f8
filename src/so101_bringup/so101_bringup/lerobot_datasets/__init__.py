"""LeRobotDataset v3.0 in and out: the layout, video, reader and writer, and the import and export commands."""
