"""A bus of emulated STS3215 servos behind a real pseudo-terminal: the hardware replaced at its wire, nothing else.

A driver opens ``emulator.port`` exactly as it would open /dev/serial/by-id/...; the emulator's thread parses the byte
stream the way a servo does and answers from a per-servo control table and motion model (``servo_model``), at the
wire's timing and with the faults a test sets (``ServoBusEmulator``), so drivers are tested without an arm.

    python -m so101_driver.hardware.feetech.emulator --link /tmp/so101_follower     # a standalone bus for manual tests
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import select
import signal
import sys
import threading
import time
import tty
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from so101_contract.cli import int_in, positive_int, probability
from so101_driver.hardware.feetech import control_table as ct
from so101_driver.hardware.feetech.servo_model import EmulatedServo

STALE_PARTIAL_S = 0.01  # an incomplete packet older than this is garbage: resynchronise past its first byte


@dataclass
class _Reply:
    """A status packet to send, with the servo whose Return_Delay_Time precedes it."""

    servo: EmulatedServo
    packet: bytes


class ServoBusEmulator:
    """Six STS3215s (ids 1..6 by default) behind a pseudo-terminal, served by a thread.

    Protocol: FF FF header, id, length, instruction, params, checksum; a bad checksum or another id is ignored;
    broadcast writes get no reply; SYNC_READ is answered by one status packet per listed servo, in the listed order.
    Each servo answers from its control table (``control_table.FACTORY_DEFAULTS``) and motion model
    (``servo_model.EmulatedServo``).

    Timing: with ``wire_timing`` each status packet is written when it would have finished arriving on a real line:
    after the request's own bytes, the servo's Return_Delay_Time (2 µs units) and the packet's bytes, all at 10 bits
    per byte at ``baudrate``, so a driver sees the delays of a real 1 Mbps bus. The thread blocks in select() between
    requests and sleeps to deadlines, so an idle bus costs no CPU. Return_Delay_Time starts at 0, the value LeRobot
    writes at every connect (factory 250 = 500 µs; pass ``return_delay_time=250`` for a factory-fresh servo).

    Faults (settable at any time from any thread): ``corrupt_probability`` (the status packet's checksum is damaged),
    ``drop_probability`` (the status packet is lost on the wire), ``late_probability`` with ``late_s`` (the packet
    comes ``late_s`` later), ``error_bits`` {id: status byte} (reported in every status packet of that servo and in
    its Status register), ``disconnect()`` (the pty is closed and the link removed: a driver's open port fails like an
    unplugged adapter) and ``reconnect()`` (a new pty behind the same link, like a replug). Probabilities apply per
    status packet. ``set_external_position`` moves a servo whose torque is off (a hand on a leader arm).
    """

    def __init__(
        self,
        motor_ids: Sequence[int] = (1, 2, 3, 4, 5, 6),
        link_path: str | Path | None = None,
        baudrate: int = ct.FACTORY_BAUDRATE,
        wire_timing: bool = True,
        seed: int = 0,
        return_delay_time: int = 0,
        record_goals: bool = True,
    ):
        self.motor_ids = tuple(int(i) for i in motor_ids)
        if len(set(self.motor_ids)) != len(self.motor_ids) or not all(0 <= i <= ct.MAX_ID for i in self.motor_ids):
            raise ValueError(f"motor_ids must be distinct ids in 0..{ct.MAX_ID}, got {list(motor_ids)}")
        self.link_path = Path(link_path) if link_path is not None else None
        self.baudrate = baudrate
        self.wire_timing = wire_timing
        self.record_goals = record_goals
        # faults
        self.corrupt_probability = 0.0
        self.drop_probability = 0.0
        self.late_probability = 0.0
        self.late_s = 0.05
        self.error_bits: dict[int, int] = {}
        # observations
        self.goal_writes: list[tuple[float, dict[int, int]]] = []
        self.counters: dict[str, int] = dict.fromkeys(
            ("requests", "replies", "corrupted", "dropped", "late", "bad_checksum", "ignored", "overflow"), 0
        )
        self.traffic: deque[tuple[float, str, bytes]] = deque(maxlen=2000)  # (time, "host"|"servo", packet)

        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # servo state
        self._io_lock = threading.Lock()  # the pty file descriptors
        now = time.monotonic()
        self._servos: dict[int, EmulatedServo] = {}
        for motor_id in self.motor_ids:
            servo = EmulatedServo(motor_id, bytearray(256), position=2048.0, updated_s=now)
            for name, value in ct.FACTORY_DEFAULTS.items():
                servo.put(name, value)
            servo.put("ID", motor_id)
            servo.put("Return_Delay_Time", return_delay_time)
            servo.put("Goal_Position", 2048)  # power-up: goal = present
            self._sync_present(servo)
            self._servos[motor_id] = servo
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_name = ""
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._disconnects: queue.SimpleQueue[threading.Event] = queue.SimpleQueue()

    # ---- lifecycle -----------------------------------------------------------------------------------------------
    @property
    def port(self) -> str:
        """The path a driver opens: the stable link if one was asked for, else the pty slave."""
        return str(self.link_path) if self.link_path is not None else self._slave_name

    @property
    def device(self) -> str:
        """The pty slave the link points to now (changes on every reconnect)."""
        return self._slave_name

    @property
    def connected(self) -> bool:
        return self._master is not None

    def start(self) -> ServoBusEmulator:
        if self._thread is not None:
            return self
        if self.link_path is not None and self.link_path.exists() and not self.link_path.is_symlink():
            raise FileExistsError(f"{self.link_path} exists and is not a symlink; the emulator will not replace it")
        self._wake_r, self._wake_w = os.pipe()
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="servo-bus-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5.0)
        self._thread = None
        with self._io_lock:
            self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_r, self._wake_w = -1, -1

    def __enter__(self) -> ServoBusEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def disconnect(self) -> None:
        """Close the pty and remove the link: an open driver port fails (EIO) like an unplugged USB adapter.

        The serving thread closes it itself, outside select(): a descriptor closed while another thread polls it
        stays alive in the kernel until that poll returns, and the driver would not see the hang-up at once."""
        if self._thread is None or not self._thread.is_alive():
            with self._io_lock:
                self._close_pty()
            return
        done = threading.Event()
        self._disconnects.put(done)
        os.write(self._wake_w, b"x")
        if not done.wait(5.0):
            raise RuntimeError("the emulator thread did not disconnect within 5 s")

    def reconnect(self) -> None:
        """A new pty behind the same link, like the adapter coming back after a replug."""
        with self._io_lock:
            if self._master is None:
                self._open_pty()
            os.write(self._wake_w, b"x")

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing, no CR/LF translation: a byte pipe like a serial line
        os.set_blocking(master, False)
        self._master, self._slave, self._slave_name = master, slave, os.ttyname(slave)
        if self.link_path is not None:
            tmp = self.link_path.with_name(f".{self.link_path.name}.{os.getpid()}.tmp")
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(self._slave_name, tmp)
            os.replace(tmp, self.link_path)  # atomic re-point: a reader never sees a half-made link

    def _close_pty(self) -> None:
        if self.link_path is not None and self.link_path.is_symlink():
            if os.readlink(self.link_path) == self._slave_name:
                self.link_path.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    # ---- the test's view of the servos ---------------------------------------------------------------------------
    def register(self, motor_id: int, name: str) -> int:
        """A register's value now (sign-magnitude decoded), motion advanced to this instant."""
        ct.register(name)
        with self._lock:
            servo = self._servo(motor_id)
            self._advance(servo, time.monotonic())
            return servo.get(name)

    def register_raw(self, motor_id: int, name: str) -> int:
        """A register's raw memory content (before sign decoding), as it would travel on the wire."""
        address, size, _ = ct.register(name)
        with self._lock:
            servo = self._servo(motor_id)
            self._advance(servo, time.monotonic())
            return ct.from_bytes(servo.mem[address : address + size])

    def set_register(self, motor_id: int, name: str, value: int) -> None:
        """Set any register (read-only ones too: a hot servo, a low supply), with the side effects a write has."""
        address, size, _ = ct.register(name)
        if name == "Present_Position":
            self.set_external_position(motor_id, value)
            return
        with self._lock:
            servo = self._servo(motor_id)
            self._advance(servo, time.monotonic())
            data = bytes(ct.to_bytes(ct.encode_value(name, value), size))
            self._write_memory(servo, address, data, time.monotonic(), force=True)

    def set_external_position(self, motor_id: int, ticks: int) -> None:
        """Someone moves the horn by hand: Present_Position becomes ``ticks`` (with torque on the servo pulls back)."""
        with self._lock:
            servo = self._servo(motor_id)
            self._advance(servo, time.monotonic())
            servo.position, servo.velocity = float(int(ticks) % ct.TICKS_PER_TURN), 0.0
            self._sync_present(servo)

    def _servo(self, motor_id: int) -> EmulatedServo:
        try:
            return self._servos[int(motor_id)]
        except KeyError:
            raise ValueError(f"no servo with id {motor_id} on this bus (ids {sorted(self._servos)})") from None

    # ---- the servo model (servo_model) and the bus-level side effects -------------------------------------------
    def _advance(self, servo: EmulatedServo, now: float) -> None:
        servo.advance(now, self.error_bits.get(servo.motor_id, 0))

    def _sync_present(self, servo: EmulatedServo) -> None:
        servo.sync_present(self.error_bits.get(servo.motor_id, 0))

    def _write_memory(self, servo: EmulatedServo, address: int, data: bytes, now: float, force: bool = False) -> None:
        """Write bytes as the firmware does (``EmulatedServo.write_memory``); a new ID re-addresses the servo on the
        bus unless another servo already answers to it."""
        touched = servo.write_memory(address, data, force)
        if "ID" in touched and servo.get("ID") != servo.motor_id:
            new_id = servo.get("ID")
            if new_id in self._servos or new_id > ct.MAX_ID:
                servo.put("ID", servo.motor_id)  # a clash would make two servos answer as one: refuse
            else:
                del self._servos[servo.motor_id]
                servo.motor_id = new_id
                self._servos[new_id] = servo
        servo.updated_s = now
        self._sync_present(servo)

    def _record_goals(self, now: float, goals: dict[int, int]) -> None:
        if self.record_goals and goals:
            self.goal_writes.append((now, goals))

    @staticmethod
    def _goal_in(address: int, data: bytes) -> int | None:
        goal_address = ct.CONTROL_TABLE["Goal_Position"][0]
        if address <= goal_address and address + len(data) >= goal_address + 2:
            i = goal_address - address
            return ct.decode_value("Goal_Position", ct.from_bytes(data[i : i + 2]))
        return None

    # ---- protocol ------------------------------------------------------------------------------------------------
    def _split(self, buffer: bytearray) -> list[bytes]:
        """Complete, checksum-valid packets taken off the front of ``buffer``; an incomplete one stays there."""
        packets = []
        while True:
            start = buffer.find(ct.HEADER)
            if start < 0:
                del buffer[: max(0, len(buffer) - 1) if buffer[-1:] == b"\xff" else len(buffer)]
                return packets
            del buffer[:start]
            if len(buffer) < 4:
                return packets
            if buffer[2] == 0xFF or buffer[3] < 2:  # FF FF FF: the header starts one byte later; LENGTH < 2: noise
                del buffer[0]
                continue
            total = buffer[3] + 4
            if len(buffer) < total:
                return packets
            packet = bytes(buffer[:total])
            if packet[-1] != ct.checksum(packet[2:-1]):
                self.counters["bad_checksum"] += 1
                del buffer[:2]  # a servo drops a damaged packet and hunts for the next header
                continue
            del buffer[:total]
            packets.append(packet)

    def _handle(self, packet: bytes, now: float) -> list[_Reply]:
        """The servos' response to one instruction packet: memory effects now, status packets to send."""
        target, instruction, params = packet[2], packet[4], packet[5:-1]
        broadcast = target == ct.BROADCAST_ID
        if not broadcast and target not in self._servos:
            self.counters["ignored"] += 1
            return []
        self.counters["requests"] += 1
        servos = list(self._servos.values()) if broadcast else [self._servos[target]]
        for servo in servos:
            self._advance(servo, now)
        replies: list[_Reply] = []

        def status(servo: EmulatedServo, data: bytes = b"", always: bool = False) -> None:
            if broadcast and not always:
                return
            if not always and servo.get("Response_Status_Level") == 0:
                return
            error = self.error_bits.get(servo.motor_id, 0) & 0x7F
            replies.append(_Reply(servo, ct.build_packet(servo.motor_id, error, data)))

        def read(servo: EmulatedServo, address: int, length: int) -> bytes:
            return bytes(servo.mem[address : address + length]).ljust(length, b"\x00")

        if instruction == ct.PING:
            for servo in sorted(servos, key=lambda s: s.motor_id):
                status(servo, always=True)  # PING is answered even when broadcast (LeRobot's broadcast ping)
        elif instruction == ct.READ and len(params) == 2 and not broadcast:
            status(servos[0], read(servos[0], params[0], params[1]), always=True)
        elif instruction in (ct.WRITE, ct.REG_WRITE) and len(params) >= 2:
            address, data = params[0], bytes(params[1:])
            goals = {}
            for servo in servos:
                if instruction == ct.WRITE:
                    self._write_memory(servo, address, data, now)
                    goal = self._goal_in(address, data)
                    if goal is not None:
                        goals[servo.motor_id] = goal
                else:
                    servo.pending = (address, data)
                status(servo)
            self._record_goals(now, goals)
        elif instruction == ct.ACTION:
            goals = {}
            for servo in servos:
                if servo.pending is not None:
                    address, data = servo.pending
                    servo.pending = None
                    self._write_memory(servo, address, data, now)
                    goal = self._goal_in(address, data)
                    if goal is not None:
                        goals[servo.motor_id] = goal
                status(servo)
            self._record_goals(now, goals)
        elif instruction == ct.SYNC_READ and broadcast and len(params) >= 2:
            address, length = params[0], params[1]
            for motor_id in params[2:]:
                servo = self._servos.get(motor_id)
                if servo is not None:
                    status(servo, read(servo, address, length), always=True)
        elif instruction == ct.SYNC_WRITE and broadcast and len(params) >= 2:
            address, length = params[0], params[1]
            goals = {}
            for i in range(2, len(params) - length, length + 1):
                servo = self._servos.get(params[i])
                data = bytes(params[i + 1 : i + 1 + length])
                if servo is None or len(data) != length:
                    continue
                self._write_memory(servo, address, data, now)
                goal = self._goal_in(address, data)
                if goal is not None:
                    goals[servo.motor_id] = goal
            self._record_goals(now, goals)
        else:
            self.counters["ignored"] += 1
        return replies

    # ---- the serving thread --------------------------------------------------------------------------------------
    def _serve(self) -> None:
        buffer = bytearray()
        last_byte_s = 0.0
        while not self._stop.is_set():
            master = self._master
            fds = [self._wake_r] if master is None else [self._wake_r, master]
            try:
                ready, _, _ = select.select(fds, [], [], STALE_PARTIAL_S if buffer else None)
            except (OSError, ValueError):  # the pty was closed under select by disconnect(): look again
                continue
            if self._wake_r in ready:
                os.read(self._wake_r, 1024)
            with self._io_lock:
                while not self._disconnects.empty():
                    self._close_pty()
                    self._disconnects.get().set()
                if self._master is None or self._master != master:
                    buffer.clear()
                    continue
                if master in ready:
                    try:
                        chunk = os.read(master, 4096)
                    except (BlockingIOError, OSError):
                        chunk = b""
                    if chunk:
                        buffer += chunk
                        last_byte_s = time.monotonic()
                elif buffer and time.monotonic() - last_byte_s > STALE_PARTIAL_S:
                    del buffer[0]
                for packet in self._split(buffer):
                    self.traffic.append((last_byte_s, "host", packet))
                    with self._lock:
                        replies = self._handle(packet, time.monotonic())
                    self._send(master, replies, last_byte_s + ct.wire_time_s(len(packet), self.baudrate))

    def _send(self, master: int, replies: list[_Reply], line_free_s: float) -> None:
        """Write each status packet at the moment its last byte would arrive on a real line (with wire timing)."""
        due = line_free_s
        for reply in replies:
            packet = reply.packet
            due += reply.servo.get("Return_Delay_Time") * 2e-6 + ct.wire_time_s(len(packet), self.baudrate)
            if self.late_probability and self._rng.random() < self.late_probability:
                self.counters["late"] += 1
                due += self.late_s
            if self.drop_probability and self._rng.random() < self.drop_probability:
                self.counters["dropped"] += 1
                continue  # lost on the wire: its time still passes
            if self.corrupt_probability and self._rng.random() < self.corrupt_probability:
                self.counters["corrupted"] += 1
                packet = packet[:-1] + bytes([packet[-1] ^ self._rng.randrange(1, 256)])
            if self.wire_timing:
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            try:
                written = 0
                while written < len(packet):
                    written += os.write(master, packet[written:])
            except BlockingIOError:
                self.counters["overflow"] += 1  # nobody reads the port and its buffer is full: the bytes are lost
                continue
            self.counters["replies"] += 1
            self.traffic.append((time.monotonic(), "servo", packet))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_driver.hardware.feetech.emulator",
        description="Run an emulated STS3215 servo bus on a pseudo-terminal until Ctrl-C, for trying the follower/"
        "leader nodes or the calibration CLI without an arm. Point them at the --link path.",
    )
    parser.add_argument("--link", required=True, help="symlink to create for the bus, e.g. /tmp/so101_follower")
    parser.add_argument(
        "--ids", type=int_in(0, ct.MAX_ID), nargs="+", default=[1, 2, 3, 4, 5, 6], help="servo ids (default 1..6)"
    )
    parser.add_argument(
        "--baudrate", type=positive_int, default=ct.FACTORY_BAUDRATE, help="for wire timing (default %(default)s)"
    )
    parser.add_argument("--no-wire-timing", action="store_true", help="answer at once instead of at line speed")
    parser.add_argument("--corrupt", type=probability, default=0.0, help="probability a status packet is corrupted")
    parser.add_argument("--drop", type=probability, default=0.0, help="probability a status packet is lost")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the fault injection")
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    emulator = ServoBusEmulator(
        args.ids, args.link, args.baudrate, not args.no_wire_timing, args.seed, record_goals=False
    )
    emulator.corrupt_probability, emulator.drop_probability = args.corrupt, args.drop
    with emulator:
        print(f"servo bus emulator: ids {args.ids} on {emulator.port} -> {emulator.device}", flush=True)
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
