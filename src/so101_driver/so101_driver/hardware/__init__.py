"""Everything that touches the real robot: the Feetech bus, calibration, the arm and camera nodes."""
