"""One emulated STS3215: its control-table memory and the motion model behind Present_Position/Velocity.

No wire, no thread: ``emulator.ServoBusEmulator`` owns the pseudo-terminal, parses the packets and calls these methods
under its lock. ``EmulatedServo`` states the motion model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from so101_driver.hardware.feetech import control_table as ct

MAX_SPEED_TICKS_S = 3072.0  # 45 rpm no-load (Feetech's datasheet): 0.75 turn/s * 4096 ticks
NO_RAMP_ACCEL_TICKS_S2 = 50_000.0  # Acceleration = 0 (no ramp): full speed within ~60 ms
STEP_S = 0.001  # integration step of the motion model
_ADDRESS_OWNER = {
    address + offset: name for name, (address, size, _) in ct.CONTROL_TABLE.items() for offset in range(size)
}


@dataclass
class EmulatedServo:
    """One servo: its control-table memory and the continuous motion state behind Present_Position/Velocity.

    In position mode with torque on, Present_Position moves toward Goal_Position (clamped to the position limits) with
    a trapezoidal speed profile: at most ``MAX_SPEED_TICKS_S`` or Goal_Velocity when set, accelerating at
    Acceleration x 100 ticks/s^2 (0 = no ramp, taken as 50 000 ticks/s^2). Present_Velocity, Present_Load and Moving
    follow the motion. Torque off, the position stays unless something outside moves it. The goal register keeps its
    value when torque is switched on (a real driver writes goal = present first); at power-up goal = present.
    Homing_Offset works as in the firmware: Present_Position = Actual - Homing_Offset.
    """

    motor_id: int
    mem: bytearray
    position: float  # present frame (after Homing_Offset), ticks
    velocity: float = 0.0  # ticks/s
    updated_s: float = 0.0
    pending: tuple[int, bytes] | None = None  # a REG_WRITE waiting for ACTION: (address, data)
    load: int = 0

    def get(self, name: str) -> int:
        address, size, _ = ct.CONTROL_TABLE[name]
        return ct.decode_value(name, ct.from_bytes(self.mem[address : address + size]))

    def put(self, name: str, value: int) -> None:
        address, size, _ = ct.CONTROL_TABLE[name]
        self.mem[address : address + size] = bytes(ct.to_bytes(ct.encode_value(name, value), size))

    def advance(self, now: float, status: int = 0) -> None:
        """Integrate the motion up to ``now`` (monotonic seconds); ``status`` is the error byte to report."""
        dt = now - self.updated_s
        if dt <= 0:
            self.sync_present(status)
            return
        self.updated_s = now
        goal = float(self.get("Goal_Position"))
        low, high = self.get("Min_Position_Limit"), self.get("Max_Position_Limit")
        if low < high:
            goal = min(max(goal, low), high)
        if self.get("Torque_Enable") == 0 or self.get("Operating_Mode") != 0:
            self.velocity = 0.0
        elif self.position != goal or self.velocity != 0.0:
            vmax = MAX_SPEED_TICKS_S
            if self.get("Goal_Velocity"):
                vmax = min(vmax, abs(self.get("Goal_Velocity")))
            amax = self.get("Acceleration") * 100.0 or NO_RAMP_ACCEL_TICKS_S2
            steps = min(math.ceil(dt / STEP_S), 2000)
            h = dt / steps
            for _ in range(steps):
                error = goal - self.position
                if abs(error) < 0.5 and abs(self.velocity) <= amax * h:
                    self.position, self.velocity = goal, 0.0
                    break
                wanted = math.copysign(min(vmax, math.sqrt(2.0 * amax * abs(error))), error)
                self.velocity += min(max(wanted - self.velocity, -amax * h), amax * h)
                new_position = self.position + self.velocity * h
                if (goal - new_position) * error <= 0:  # reached or crossed the goal within this step
                    self.position, self.velocity = goal, 0.0
                    break
                self.position = new_position
        self.sync_present(status)

    def sync_present(self, status: int = 0) -> None:
        """Write the motion state into the Present_* registers the host reads."""
        moving = self.velocity != 0.0
        load = 0
        if moving:
            magnitude = min(1000.0, 60.0 + 300.0 * abs(self.velocity) / MAX_SPEED_TICKS_S)
            load = int(math.copysign(magnitude, self.velocity))
        self.put("Present_Position", round(self.position) % ct.TICKS_PER_TURN)
        self.put("Present_Velocity", round(self.velocity))
        self.put("Present_Load", load)
        self.put("Present_Current", abs(load) // 4)
        self.put("Moving", int(moving))
        self.put("Status", status & 0xFF)

    def write_memory(self, address: int, data: bytes, force: bool = False) -> set[str]:
        """Write bytes as the firmware does: read-only registers keep their value (unless ``force``), and writes to
        Homing_Offset / Torque_Enable / Present_Position take effect on the motion state. Returns the registers
        touched (the bus handles an ID change)."""
        old_offset = self.get("Homing_Offset")
        touched = set()
        for offset, byte in enumerate(data):
            a = address + offset
            if a > 255:
                break
            name = _ADDRESS_OWNER.get(a)
            if name in ct.READ_ONLY and not force:
                continue
            self.mem[a] = byte
            touched.add(name)
        if "Homing_Offset" in touched:
            shift = self.get("Homing_Offset") - old_offset
            self.position = (self.position - shift) % ct.TICKS_PER_TURN  # Present = Actual - Homing_Offset
        if "Torque_Enable" in touched and self.get("Torque_Enable") == 0:
            self.velocity = 0.0
        if "Present_Position" in touched:
            self.position, self.velocity = float(self.get("Present_Position")), 0.0
        return touched
