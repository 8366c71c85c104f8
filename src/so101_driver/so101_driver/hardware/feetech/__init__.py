"""Feetech STS3215 servo bus: the control table, the bus driver on feetech-servo-sdk, stable port names, and the
protocol-level emulator that stands in for the servos in tests (no arm is attached to the build machines)."""
