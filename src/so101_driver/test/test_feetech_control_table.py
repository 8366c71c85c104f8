"""The STS3215 control table and packet rules against the published STS3215 protocol:
its worked packet examples, its sign-magnitude examples, its error bits. Pure functions, no bus."""

import pytest

from so101_driver.hardware.feetech import control_table as ct

# Worked byte examples, copied from the reference (§3), each built here from its fields.
WORKED_EXAMPLES = [
    ("PING id 1", (1, ct.PING, []), "FF FF 01 02 01 FB"),
    ("READ id 1 Present_Position", (1, ct.READ, [56, 2]), "FF FF 01 04 02 38 02 BE"),
    ("status id 1 position 2048", (1, 0, [0x00, 0x08]), "FF FF 01 04 00 00 08 F2"),
    ("WRITE id 1 Torque_Enable 1", (1, ct.WRITE, [40, 1]), "FF FF 01 04 03 28 01 CE"),
    ("WRITE id 1 Goal_Position 2048", (1, ct.WRITE, [42, 0x00, 0x08]), "FF FF 01 05 03 2A 00 08 C4"),
    (
        "SYNC_READ 1..6 position",
        (0xFE, ct.SYNC_READ, [56, 2, 1, 2, 3, 4, 5, 6]),
        "FF FF FE 0A 82 38 02 01 02 03 04 05 06 26",
    ),
    (
        "SYNC_WRITE 1..6 goal 2048",
        (0xFE, ct.SYNC_WRITE, [42, 2] + [b for i in range(1, 7) for b in (i, 0x00, 0x08)]),
        "FF FF FE 16 83 2A 02 01 00 08 02 00 08 03 00 08 04 00 08 05 00 08 06 00 08 F7",
    ),
    ("ACTION broadcast", (0xFE, ct.ACTION, []), "FF FF FE 02 05 FA"),
]


@pytest.mark.parametrize(("what", "fields", "expected"), WORKED_EXAMPLES, ids=[w[0] for w in WORKED_EXAMPLES])
def test_packets_match_the_references_worked_examples(what, fields, expected):
    assert ct.build_packet(*fields) == bytes.fromhex(expected), what


def test_register_addresses_used_on_the_wire_match_the_reference():
    assert ct.CONTROL_TABLE["Present_Position"] == (56, 2, 15)
    assert ct.CONTROL_TABLE["Goal_Position"] == (42, 2, 15)
    assert ct.CONTROL_TABLE["Torque_Enable"] == (40, 1, None)
    assert ct.CONTROL_TABLE["Homing_Offset"] == (31, 2, 11)
    assert ct.CONTROL_TABLE["Present_Load"] == (60, 2, 10)
    assert (ct.ARM_READ_START, ct.ARM_READ_LENGTH) == (56, 8)  # position, velocity, load, voltage, temperature


def test_registers_do_not_overlap_and_defaults_fit_their_registers():
    owner = {}
    for name, (address, size, sign_bit) in ct.CONTROL_TABLE.items():
        for a in range(address, address + size):
            assert a not in owner, f"{name} overlaps {owner.get(a)} at address {a}"
            owner[a] = name
        assert sign_bit is None or sign_bit < 8 * size
    for name, value in ct.FACTORY_DEFAULTS.items():
        ct.encode_value(name, value)  # raises if a default does not fit
    assert ct.READ_ONLY <= set(ct.CONTROL_TABLE)


@pytest.mark.parametrize(
    ("name", "value", "raw"),
    [
        ("Homing_Offset", -209, 2257),
        ("Homing_Offset", 1946, 1946),
        ("Present_Velocity", -100, 0x8064),
        ("Present_Load", -300, 0x052C),
        ("Goal_Position", 2048, 2048),
    ],
)
def test_sign_magnitude_matches_the_references_examples(name, value, raw):
    assert ct.encode_value(name, value) == raw
    assert ct.decode_value(name, raw) == value


def test_sign_magnitude_round_trips_and_rejects_what_does_not_fit():
    for sign_bit in (10, 11, 15):
        for value in (0, 1, -1, 777, -(2**sign_bit - 1), 2**sign_bit - 1):
            assert ct.decode_sign_magnitude(ct.encode_sign_magnitude(value, sign_bit), sign_bit) == value
    assert ct.decode_sign_magnitude(0x8000, 15) == 0  # "minus zero" reads as zero
    with pytest.raises(ValueError, match="Magnitude 2114 exceeds 2047"):
        ct.encode_value("Homing_Offset", -2114)
    with pytest.raises(ValueError, match="Torque_Enable: 256 out of range"):
        ct.encode_value("Torque_Enable", 256)
    with pytest.raises(ValueError, match="unknown STS3215 register 'Goal_Pos'"):
        ct.register("Goal_Pos")


def test_little_endian_bytes():
    assert ct.to_bytes(2048, 2) == [0x00, 0x08]
    assert ct.from_bytes([0x64, 0x80]) == 0x8064
    assert ct.from_bytes(ct.to_bytes(0xBEEF, 2)) == 0xBEEF


def test_status_error_bits_decode_to_names():
    assert ct.error_names(0) == []
    assert ct.error_names(0x01) == ["input_voltage"]
    assert ct.error_names(0x02 | 0x04) == ["angle_sensor", "overheat"]
    assert ct.error_names(0x08 | 0x20) == ["overcurrent", "overload"]
    assert ct.error_names(0x10 | 0x40) == ["bit4", "bit6"]  # undocumented bits are not hidden


def test_wire_time_is_ten_bits_per_byte():
    assert ct.wire_time_s(100, 1_000_000) == pytest.approx(1e-3)
    assert ct.wire_time_s(12, 115_200) == pytest.approx(120 / 115_200)
