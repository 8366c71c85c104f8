"""The servo bus emulator at the byte level: raw packets written to its pseudo-terminal with pyserial (no SDK), the
replies read back, so the emulator is checked against the protocol reference independently of the bus driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import serial

from so101_driver.hardware.feetech import control_table as ct
from so101_driver.hardware.feetech.emulator import ServoBusEmulator
from so101_driver.hardware.feetech.servo_model import MAX_SPEED_TICKS_S


@pytest.fixture
def emulator(tmp_path):
    with ServoBusEmulator(link_path=tmp_path / "ttyBUS") as emu:
        yield emu


@pytest.fixture
def line(emulator):
    with serial.Serial(emulator.port, 1_000_000, timeout=0) as port:
        yield port


def exchange(port: serial.Serial, request: bytes, expect: int, timeout_s: float = 0.2) -> bytes:
    """Write a request; read until ``expect`` bytes came or ``timeout_s`` passed."""
    port.reset_input_buffer()
    port.write(request)
    data, deadline = b"", time.monotonic() + timeout_s
    while len(data) < expect and time.monotonic() < deadline:
        data += port.read(expect - len(data))
        time.sleep(0.0005)
    return data


def status(motor_id: int, data: bytes = b"", error: int = 0) -> bytes:
    return ct.build_packet(motor_id, error, data)


def test_ping_and_read_are_answered_byte_exact(line):
    assert exchange(line, bytes.fromhex("FF FF 01 02 01 FB"), 6) == bytes.fromhex("FF FF 01 02 00 FC")
    # READ Present_Position of id 1 (reference example); the factory pose is 2048 -> the reference's reply bytes
    reply = exchange(line, bytes.fromhex("FF FF 01 04 02 38 02 BE"), 8)
    assert reply == bytes.fromhex("FF FF 01 04 00 00 08 F2")
    model = exchange(line, ct.build_packet(3, ct.READ, [3, 2]), 8)
    assert model == status(3, bytes(ct.to_bytes(ct.STS3215_MODEL_NUMBER, 2)))


def test_other_ids_bad_checksums_and_noise_get_no_reply(line, emulator):
    assert exchange(line, ct.build_packet(9, ct.PING), 6, timeout_s=0.05) == b""
    damaged = bytearray(ct.build_packet(1, ct.PING))
    damaged[-1] ^= 0x55
    assert exchange(line, bytes(damaged), 6, timeout_s=0.05) == b""
    assert emulator.counters["bad_checksum"] == 1 and emulator.counters["ignored"] == 1
    # garbage before the header, and a packet split over two writes, are parsed like a servo would
    assert exchange(line, b"\x00\x13\xff" + ct.build_packet(2, ct.PING), 6) == status(2)
    line.write(ct.build_packet(4, ct.READ, [56, 2])[:3])
    time.sleep(0.002)
    assert exchange(line, ct.build_packet(4, ct.READ, [56, 2])[3:], 8) == status(4, b"\x00\x08")


def test_sync_read_answers_each_listed_id_in_the_listed_order(line, emulator):
    for motor_id, ticks in zip((1, 2, 3, 4, 5, 6), (100, 900, 1700, 2500, 3300, 4095), strict=True):
        emulator.set_external_position(motor_id, ticks)
    request = ct.build_packet(ct.BROADCAST_ID, ct.SYNC_READ, [56, 2, 5, 2, 42, 6])  # id 42 is not on the bus
    replies = exchange(line, request, 3 * 8)
    assert replies == status(5, b"\xe4\x0c") + status(2, b"\x84\x03") + status(6, b"\xff\x0f")


def test_broadcast_sync_write_is_applied_silently_and_recorded(line, emulator):
    goals = {1: 1000, 3: 3000, 6: 2100}
    params = [42, 2] + [b for i, g in goals.items() for b in (i, *ct.to_bytes(g, 2))]
    assert exchange(line, ct.build_packet(ct.BROADCAST_ID, ct.SYNC_WRITE, params), 1, timeout_s=0.05) == b""
    assert emulator.goal_writes[-1][1] == goals
    assert [emulator.register(i, "Goal_Position") for i in (1, 2, 3, 6)] == [1000, 2048, 3000, 2100]
    # a unicast WRITE is confirmed with a status packet; writes to read-only registers are ignored
    assert exchange(line, ct.build_packet(2, ct.WRITE, [21, 16]), 6) == status(2)
    assert emulator.register(2, "P_Coefficient") == 16
    exchange(line, ct.build_packet(2, ct.WRITE, [3, 0, 0]), 6)
    assert emulator.register(2, "Model_Number") == ct.STS3215_MODEL_NUMBER


def test_reg_write_waits_for_action(line, emulator):
    assert exchange(line, ct.build_packet(4, ct.REG_WRITE, [42, *ct.to_bytes(1234, 2)]), 6) == status(4)
    assert emulator.register(4, "Goal_Position") == 2048
    exchange(line, bytes.fromhex("FF FF FE 02 05 FA"), 1, timeout_s=0.02)  # ACTION broadcast: no reply
    assert emulator.register(4, "Goal_Position") == 1234 and emulator.goal_writes[-1][1] == {4: 1234}


def test_replies_take_their_wire_time(line):
    request = ct.build_packet(ct.BROADCAST_ID, ct.SYNC_READ, [56, 8, 1, 2, 3, 4, 5, 6])
    expected_s = ct.wire_time_s(len(request) + 6 * 14, 1_000_000)  # 14-byte request + six 14-byte replies
    best = float("inf")
    for _ in range(20):
        start = time.monotonic()
        assert len(exchange(line, request, 6 * 14)) == 6 * 14
        best = min(best, time.monotonic() - start)
    assert best >= expected_s, f"{best * 1e3:.3f} ms for {expected_s * 1e3:.3f} ms of bytes at 1 Mbps"


def test_status_error_bits_and_status_register(line, emulator):
    emulator.error_bits[3] = 0x20 | 0x04
    assert exchange(line, ct.build_packet(3, ct.PING), 6) == status(3, error=0x24)
    assert exchange(line, ct.build_packet(3, ct.READ, [65, 1]), 7) == status(3, b"\x24", error=0x24)
    assert emulator.register(3, "Status") == 0x24


def test_motion_toward_the_goal_with_torque_on_only(emulator):
    emulator.set_register(1, "Goal_Position", 3048)  # torque off: nothing moves
    time.sleep(0.05)
    assert emulator.register(1, "Present_Position") == 2048 and emulator.register(1, "Moving") == 0
    emulator.set_register(1, "Torque_Enable", 1)
    time.sleep(0.15)
    midway, velocity, load = (emulator.register(1, n) for n in ("Present_Position", "Present_Velocity", "Present_Load"))
    assert 2048 < midway < 3048 and 0 < velocity <= MAX_SPEED_TICKS_S and load > 0
    time.sleep(0.4)  # 1000 ticks at <= 3072 ticks/s plus the ramps: arrived
    assert emulator.register(1, "Present_Position") == 3048 and emulator.register(1, "Present_Velocity") == 0
    emulator.set_register(1, "Goal_Position", 2900)
    time.sleep(0.05)
    assert emulator.register(1, "Present_Velocity") < 0 and emulator.register(1, "Present_Load") < 0
    assert emulator.register_raw(1, "Present_Velocity") & 0x8000  # sign-magnitude on the wire
    # limits clamp the goal; torque off stops the servo where it is and a hand can move it
    emulator.set_register(1, "Max_Position_Limit", 2500)
    emulator.set_register(1, "Goal_Position", 4000)
    time.sleep(0.4)
    assert emulator.register(1, "Present_Position") == 2500
    emulator.set_register(1, "Torque_Enable", 0)
    emulator.set_external_position(1, 1500)
    time.sleep(0.05)
    assert emulator.register(1, "Present_Position") == 1500


def test_homing_offset_shifts_present_position_like_the_firmware(emulator):
    emulator.set_external_position(6, 2000)
    emulator.set_register(6, "Homing_Offset", -209)  # Present = Actual - Homing_Offset
    assert emulator.register(6, "Present_Position") == 2209
    assert emulator.register_raw(6, "Homing_Offset") == 2257


def test_disconnect_breaks_an_open_port_and_reconnect_restores_the_link(emulator):
    port = serial.Serial(emulator.port, 1_000_000, timeout=0)
    assert exchange(port, ct.build_packet(1, ct.PING), 6) == status(1)
    emulator.disconnect()
    assert not os.path.lexists(emulator.port)
    with pytest.raises(serial.SerialException):
        port.write(ct.build_packet(1, ct.PING))
        port.read(6)
    port.close()
    emulator.reconnect()
    with serial.Serial(emulator.port, 1_000_000, timeout=0) as again:
        assert exchange(again, ct.build_packet(1, ct.PING), 6) == status(1)


def test_faults_are_injected_per_status_packet(line, emulator):
    request = ct.build_packet(ct.BROADCAST_ID, ct.SYNC_READ, [56, 2, 1, 2, 3, 4, 5, 6])
    emulator.corrupt_probability = 1.0
    replies = exchange(line, request, 6 * 8)
    packets = [replies[i : i + 8] for i in range(0, len(replies), 8)]
    assert len(packets) == 6 and all(p[-1] != ct.checksum(p[2:-1]) for p in packets)
    emulator.corrupt_probability, emulator.drop_probability = 0.0, 1.0
    assert exchange(line, request, 8, timeout_s=0.05) == b""
    emulator.drop_probability, emulator.late_probability, emulator.late_s = 0.0, 1.0, 0.03
    start = time.monotonic()
    assert exchange(line, ct.build_packet(1, ct.PING), 6) == status(1)
    assert time.monotonic() - start >= 0.03
    assert emulator.counters["corrupted"] == 6 and emulator.counters["dropped"] == 6
    assert emulator.counters["late"] == 1


def test_standalone_emulator_serves_a_link_until_terminated(tmp_path):
    link = tmp_path / "so101_follower"
    process = subprocess.Popen(
        [sys.executable, "-m", "so101_driver.hardware.feetech.emulator", "--link", str(link), "--ids", "7", "8"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "servo bus emulator" in process.stdout.readline()
        with serial.Serial(str(link), 1_000_000, timeout=0) as port:
            assert exchange(port, ct.build_packet(8, ct.PING), 6) == status(8)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not os.path.lexists(link)
    finally:
        process.kill()
        process.wait()
