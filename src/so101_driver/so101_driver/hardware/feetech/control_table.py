"""The STS3215 control table and protocol constants: ONE definition used by the bus driver and by the emulator.

Facts from LeRobot's Feetech control tables, the Feetech SDK and Feetech memory-table write-ups. Multi-byte
registers are little-endian (STS/SMS series, SDK ``PacketHandler(0)``). Signed registers use sign-magnitude, not two's
complement: bit ``sign_bit`` is the sign, the bits below it the magnitude (Feetech's convention). Units are the servo's
own: ticks (4096 per turn), ticks/s, 0.1 % of max load, 0.1 V, °C.
"""

from __future__ import annotations

from collections.abc import Iterable

FACTORY_BAUDRATE = 1_000_000  # the STS3215's factory bus speed (bit/s): what the arms run at

# ---- instructions and ids -------------------------------------------------------------------------
PING = 0x01
READ = 0x02
WRITE = 0x03
REG_WRITE = 0x04
ACTION = 0x05
SYNC_READ = 0x82
SYNC_WRITE = 0x83
INSTRUCTION_NAMES = {
    PING: "PING",
    READ: "READ",
    WRITE: "WRITE",
    REG_WRITE: "REG_WRITE",
    ACTION: "ACTION",
    SYNC_READ: "SYNC_READ",
    SYNC_WRITE: "SYNC_WRITE",
}
BROADCAST_ID = 0xFE
MAX_ID = 0xFC
HEADER = b"\xff\xff"
STS3215_MODEL_NUMBER = 777
TICKS_PER_TURN = 4096
MAX_TICK = 4095
BITS_PER_BYTE_ON_WIRE = 10  # 8N1: start bit + 8 data bits + stop bit

# ---- the control table: name -> (address, size in bytes, sign bit or None) --------------------
CONTROL_TABLE: dict[str, tuple[int, int, int | None]] = {
    # EEPROM (persisted; LeRobot writes these with torque off and Lock = 0)
    "Firmware_Major_Version": (0, 1, None),
    "Firmware_Minor_Version": (1, 1, None),
    "Model_Number": (3, 2, None),
    "ID": (5, 1, None),
    "Baud_Rate": (6, 1, None),
    "Return_Delay_Time": (7, 1, None),  # unit 2 µs
    "Response_Status_Level": (8, 1, None),  # 0: reply to READ/PING only; 1: reply to all
    "Min_Position_Limit": (9, 2, None),
    "Max_Position_Limit": (11, 2, None),
    "Max_Temperature_Limit": (13, 1, None),
    "Max_Voltage_Limit": (14, 1, None),
    "Min_Voltage_Limit": (15, 1, None),
    "Max_Torque_Limit": (16, 2, None),
    "Phase": (18, 1, None),
    "Unloading_Condition": (19, 1, None),
    "LED_Alarm_Condition": (20, 1, None),
    "P_Coefficient": (21, 1, None),
    "D_Coefficient": (22, 1, None),
    "I_Coefficient": (23, 1, None),
    "Minimum_Startup_Force": (24, 2, None),
    "CW_Dead_Zone": (26, 1, None),
    "CCW_Dead_Zone": (27, 1, None),
    "Protection_Current": (28, 2, None),
    "Angular_Resolution": (30, 1, None),
    "Homing_Offset": (31, 2, 11),
    "Operating_Mode": (33, 1, None),
    "Protective_Torque": (34, 1, None),
    "Protection_Time": (35, 1, None),
    "Overload_Torque": (36, 1, None),
    "Velocity_closed_loop_P_proportional_coefficient": (37, 1, None),
    "Over_Current_Protection_Time": (38, 1, None),
    "Velocity_closed_loop_I_integral_coefficient": (39, 1, None),
    # SRAM (volatile)
    "Torque_Enable": (40, 1, None),
    "Acceleration": (41, 1, None),  # unit 100 ticks/s², 0 = no ramp
    "Goal_Position": (42, 2, 15),
    "Goal_Time": (44, 2, None),
    "Goal_Velocity": (46, 2, 15),  # ticks/s, 0 = the servo's maximum
    "Torque_Limit": (48, 2, None),
    "Lock": (55, 1, None),
    "Present_Position": (56, 2, 15),
    "Present_Velocity": (58, 2, 15),
    "Present_Load": (60, 2, 10),
    "Present_Voltage": (62, 1, None),  # 0.1 V
    "Present_Temperature": (63, 1, None),  # °C
    "Status": (65, 1, None),  # same bits as the status packet's error byte
    "Moving": (66, 1, None),
    "Present_Current": (69, 2, None),  # 6.5 mA per unit
    "Goal_Position_2": (71, 2, None),
    # factory area (LeRobot names)
    "Moving_Velocity": (80, 1, None),
    "DTs": (81, 1, None),
    "Velocity_Unit_factor": (82, 1, None),
    "Hts": (83, 1, None),
    "Maximum_Velocity_Limit": (84, 1, None),
    "Maximum_Acceleration": (85, 1, None),
    "Acceleration_Multiplier": (86, 1, None),
}
READ_ONLY = frozenset(
    {
        "Firmware_Major_Version",
        "Firmware_Minor_Version",
        "Model_Number",
        "Present_Position",
        "Present_Velocity",
        "Present_Load",
        "Present_Voltage",
        "Present_Temperature",
        "Status",
        "Moving",
        "Present_Current",
        "Goal_Position_2",
    }
)
# The block read_arm() fetches with one SYNC_READ: Present_Position .. Present_Temperature (addresses 56..63).
ARM_READ_START = CONTROL_TABLE["Present_Position"][0]
ARM_READ_LENGTH = CONTROL_TABLE["Present_Temperature"][0] + 1 - ARM_READ_START

# Factory values of a fresh STS3215 (what the emulator powers up with). Model, limits, P = 32, baud index 0 and the
# Return_Delay_Time of 250 (500 µs) are documented; the protection thresholds are plausible values
# from Feetech's memory table write-ups and matter only as readable numbers.
FACTORY_DEFAULTS: dict[str, int] = {
    "Firmware_Major_Version": 3,
    "Firmware_Minor_Version": 10,
    "Model_Number": STS3215_MODEL_NUMBER,
    "Baud_Rate": 0,
    "Return_Delay_Time": 250,
    "Response_Status_Level": 1,
    "Min_Position_Limit": 0,
    "Max_Position_Limit": MAX_TICK,
    "Max_Temperature_Limit": 70,
    "Max_Voltage_Limit": 140,
    "Min_Voltage_Limit": 40,
    "Max_Torque_Limit": 1000,
    "Phase": 0,
    "Unloading_Condition": 44,
    "LED_Alarm_Condition": 47,
    "P_Coefficient": 32,
    "D_Coefficient": 32,
    "I_Coefficient": 0,
    "Minimum_Startup_Force": 16,
    "CW_Dead_Zone": 1,
    "CCW_Dead_Zone": 1,
    "Protection_Current": 500,
    "Angular_Resolution": 1,
    "Homing_Offset": 0,
    "Operating_Mode": 0,
    "Protective_Torque": 20,
    "Protection_Time": 200,
    "Overload_Torque": 80,
    "Velocity_closed_loop_P_proportional_coefficient": 10,
    "Over_Current_Protection_Time": 200,
    "Velocity_closed_loop_I_integral_coefficient": 200,
    "Torque_Enable": 0,
    "Acceleration": 0,
    "Goal_Time": 0,
    "Goal_Velocity": 0,
    "Torque_Limit": 1000,
    "Lock": 0,
    "Present_Voltage": 121,
    "Present_Temperature": 30,
    "Maximum_Velocity_Limit": 80,
    "Maximum_Acceleration": 254,
}

# ---- status packet error byte (identical to the SDK's ERRBIT_* constants) -------------------------
ERROR_BITS: dict[int, str] = {
    0x01: "input_voltage",
    0x02: "angle_sensor",
    0x04: "overheat",
    0x08: "overcurrent",
    0x20: "overload",
}


def register(name: str) -> tuple[int, int, int | None]:
    """(address, size, sign bit) of a register, with an error that lists the known names."""
    try:
        return CONTROL_TABLE[name]
    except KeyError:
        raise ValueError(f"unknown STS3215 register {name!r}; known: {', '.join(CONTROL_TABLE)}") from None


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """Signed value -> raw register value with the sign at bit ``sign_bit`` (LeRobot ``encode_sign_magnitude``)."""
    magnitude_max = (1 << sign_bit) - 1
    if abs(value) > magnitude_max:
        raise ValueError(f"Magnitude {abs(value)} exceeds {magnitude_max} (max for sign_bit_index={sign_bit})")
    return ((1 << sign_bit) if value < 0 else 0) | abs(value)


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    """Raw register value -> signed value; bits above the sign bit are ignored."""
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude


def encode_value(name: str, value: int) -> int:
    """A register's value in servo units -> its raw unsigned content, range-checked with a message naming it."""
    _, size, sign_bit = register(name)
    value = int(value)
    if sign_bit is not None:
        try:
            return encode_sign_magnitude(value, sign_bit)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    if not 0 <= value < 1 << (8 * size):
        raise ValueError(f"{name}: {value} out of range 0..{(1 << (8 * size)) - 1}")
    return value


def decode_value(name: str, raw: int) -> int:
    """A register's raw content -> its value in servo units (sign-magnitude decoded where the register is signed)."""
    _, _, sign_bit = register(name)
    return decode_sign_magnitude(raw, sign_bit) if sign_bit is not None else raw


def to_bytes(raw: int, size: int) -> list[int]:
    """Little-endian bytes of a raw register value (STS/SMS byte order)."""
    return [(raw >> (8 * i)) & 0xFF for i in range(size)]


def from_bytes(data: Iterable[int]) -> int:
    return sum((b & 0xFF) << (8 * i) for i, b in enumerate(data))


def error_names(error: int) -> list[str]:
    """Names of the bits set in a status byte; undocumented bits come out as ``bit<n>`` so nothing is hidden."""
    names = [name for bit, name in ERROR_BITS.items() if error & bit]
    names += [f"bit{n}" for n in range(8) if error & (1 << n) and (1 << n) not in ERROR_BITS]
    return names


def checksum(body: Iterable[int]) -> int:
    """~(ID + LENGTH + INSTRUCTION/ERROR + params) & 0xFF: the sum excludes the FF FF header."""
    return ~sum(body) & 0xFF


def build_packet(motor_id: int, instruction_or_error: int, params: Iterable[int] = ()) -> bytes:
    """FF FF ID LENGTH INSTRUCTION|ERROR PARAMS CHECKSUM, LENGTH = len(params) + 2. Used for instruction packets
    (host -> servo) and status packets (servo -> host) alike; they differ only in the meaning of byte 4."""
    params = [p & 0xFF for p in params]
    body = [motor_id & 0xFF, len(params) + 2, instruction_or_error & 0xFF, *params]
    return HEADER + bytes([*body, checksum(body)])


def wire_time_s(n_bytes: int, baudrate: int) -> float:
    """Seconds ``n_bytes`` occupy a half-duplex 8N1 line at ``baudrate`` (10 bits per byte)."""
    return n_bytes * BITS_PER_BYTE_ON_WIRE / baudrate
