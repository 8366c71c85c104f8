"""FeetechBus: the SO-101's STS3215 servo bus on the Feetech SDK (PyPI ``feetech-servo-sdk``, ``scservo_sdk``).

Raw servo units only (ticks, ticks/s, 0.1 % load, volts, °C); conversions to radians live in
``so101_driver.hardware.calibration``. Every transaction goes through the SDK's own packet code; the SDK's known faults
(a long packet timeout, busy polling, stale replies, lost status bytes, shared ports) are fixed in subclasses
(``TightPortHandler``, ``_SyncRead``), never by editing it. ``FeetechBus`` retries each transaction; status error bits
do not fail one, they are returned, counted and named in every BusError about that servo.
"""

from __future__ import annotations

import os
import select
import termios
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import scservo_sdk as scs
import serial

from so101_driver.hardware.feetech import control_table as ct
from so101_driver.hardware.feetech.ports import PortNotFoundError, resolve_port

DEFAULT_TIMEOUT_MARGIN_S = 0.005
DRAIN_QUIET_S = 0.001  # a retry waits for this much silence on the line (see FeetechBus)
SUPPORTED_BAUDRATES = (4800, 9600, 14400, 19200, 38400, 57600, 115200, 128000, 250000, 500000, 1000000)
PORT_FAILURES = (OSError, serial.SerialException, termios.error)
OPEN_FIX = (
    "check the USB cable and the servo power supply, find the adapter's stable name with "
    "ls -l /dev/serial/by-id (python -m so101_driver.hardware.feetech.ports), "
    "and if permission is denied add the user to the dialout group or install a udev rule"
)
T = TypeVar("T")


class BusError(RuntimeError):
    """A transaction failed after its retries; the message names the port, the motor ids, the SDK's result text and
    any status error bits the servos reported."""


class BusDisconnected(BusError):
    """The port vanished or cannot be opened (USB unplugged, adapter unpowered, wrong name); reopen() to recover."""


@dataclass(frozen=True)
class ArmReading:
    positions: np.ndarray  # int ticks (0..4095, firmware-offset frame), shape (n,), motor order as given
    velocities: np.ndarray  # int ticks/s, signed (sign-magnitude decoded)
    loads: np.ndarray  # int, 0.1 % of max, signed
    voltages: np.ndarray  # float volts
    temperatures: np.ndarray  # int deg C
    status: np.ndarray  # int error byte per motor from the status packets (0 = fine)
    monotonic_s: float  # time.monotonic() when the reply completed


@dataclass
class BusStats:
    transactions: int = 0  # logical operations (one read_arm, one register write, ...)
    failures: int = 0  # operations that failed after all retries
    retries: int = 0
    corrupt_packets: int = 0  # "Incorrect status packet!": bad checksum or truncated reply
    timeouts: int = 0  # "There is no status packet!": nothing (or not all) came back in time
    reconnects: int = 0  # successful reopen() calls
    last_error: str = ""
    error_bits_seen: dict[str, int] = field(default_factory=dict)  # status bit name -> status packets showing it
    attempts: int = 0  # transactions + retries: every packet exchange tried
    failed_attempts: int = 0

    @property
    def error_rate(self) -> float:
        """Failed attempts / attempts (0 before the first)."""
        return self.failed_attempts / self.attempts if self.attempts else 0.0


class TightPortHandler(scs.PortHandler):
    """The SDK's PortHandler with a tight, monotonic packet timeout, blocking reads, a real input clear before each
    request and an exclusive lock on the device.

    * **Packet timeout.** The SDK waits ``bytes*tx_time + 2*16 + 2`` ms for a reply (a 16 ms USB latency timer
      assumed twice), so a single lost reply stalls a 100 Hz loop for 34 ms; LeRobot patches it to ``+50 ms``, worse.
      Here a reply gets its wire time (10 bits per byte at the baud rate, plus 3 bytes) plus ``timeout_margin_s``
      (default 5 ms). That margin must cover the USB adapter's latency and the servos' Return_Delay_Time: a
      CH340/CH343 adapter (the usual SO-101 board) answers within ~1-2 ms; FTDI adapters need
      ``echo 1 > /sys/bus/usb-serial/devices/ttyUSB*/latency_timer`` (or a larger margin); factory servos add
      Return_Delay_Time 250 (500 µs) each, which LeRobot sets to 0. A *corrupted* reply costs nothing extra: the SDK
      detects it by checksum as soon as it arrives. A *dropped* one costs the timeout, so with the default margin a
      6-servo read that loses a reply and retries still fits in a 10 ms period.
    * **Busy polling.** The SDK reads the port non-blocking in a tight loop until the timeout; ``readPort`` here
      blocks in select() until bytes arrive or the packet deadline passes (the control PC has few cores).
    * **Stale replies.** The SDK's ``clearPort`` only flushes output, so a reply that arrived after its timeout is
      taken as the answer to the next request. ``clearPort`` here also discards pending input before each request.
    * **Wall clock.** Timeouts are measured on time.monotonic(), not time.time().
    * **Shared ports.** The port is opened with an exclusive lock, so a second process on the same bus fails clearly
      instead of interleaving packets with the first.
    """

    def __init__(self, port_name: str, timeout_margin_s: float = DEFAULT_TIMEOUT_MARGIN_S):
        super().__init__(port_name)
        self.timeout_margin_ms = 1000.0 * timeout_margin_s

    def setupPort(self, cflag_baud):  # SDK method names
        if self.is_open:
            self.closePort()
        self.ser = serial.Serial(
            port=self.port_name, baudrate=self.baudrate, bytesize=serial.EIGHTBITS, timeout=0, exclusive=True
        )
        self.is_open = True
        self.ser.reset_input_buffer()
        self.tx_time_per_byte = (1000.0 / self.baudrate) * 10.0
        return True

    def clearPort(self):
        self.ser.reset_input_buffer()
        self.ser.flush()

    def setPacketTimeout(self, packet_length):
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = self.tx_time_per_byte * (packet_length + 3) + self.timeout_margin_ms

    def getCurrentTime(self):
        return time.monotonic() * 1000.0

    def drain(self, quiet_s: float, limit_s: float) -> None:
        """Discard input until nothing arrived for ``quiet_s`` (or ``limit_s`` passed): the end of a broken reply."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.ser.fileno()], [], [], quiet_s)
            if not ready:
                return
            self.ser.read(4096)  # raises on a vanished device, like every other read

    def readPort(self, length):
        if length <= 0:
            return b""
        data = self.ser.read(length)
        if data:
            return data
        remaining_s = (self.packet_start_time + self.packet_timeout - self.getCurrentTime()) / 1000.0
        if remaining_s > 0:
            select.select([self.ser.fileno()], [], [], remaining_s)
            data = self.ser.read(length)
        return data


class _SyncRead(scs.GroupSyncRead):
    """GroupSyncRead that keeps each servo's status byte and, on failure, which servo failed and no stale data.

    The SDK's ``GroupSyncRead.rxPacket`` throws each servo's error byte away and leaves stale data of earlier reads
    available.
    """

    def rxPacket(self):
        self.last_result = False
        self.errors: dict[int, int] = {}
        self.failed_id: int | None = None
        ids = list(self.data_dict)
        for motor_id in ids:
            self.data_dict[motor_id] = []
        for motor_id in ids:
            data, result, error = self.ph.readRx(self.port, motor_id, self.data_length)
            if result == scs.COMM_SUCCESS and len(data) != self.data_length:
                result = scs.COMM_RX_CORRUPT  # a valid packet of the wrong size is not this read's answer
            if result != scs.COMM_SUCCESS:
                self.failed_id = motor_id
                for other in ids:
                    self.data_dict[other] = []
                return result
            self.data_dict[motor_id] = data
            self.errors[motor_id] = error
        self.last_result = True
        return scs.COMM_SUCCESS


@dataclass
class _Attempt:
    """What one try of a transaction produced: the SDK result code, the value on success, the servo to blame."""

    result: int
    value: object = None
    motor_id: int | None = None


class FeetechBus:
    """One servo bus (one USB adapter) with the given motors. Thread-safe: transactions are serialised.

    ``port``: a path (best a /dev/serial/by-id link) or a unique fragment of a by-id name. ``retries``/``backoff_s``:
    extra tries per transaction and the first pause before one (doubling). ``timeout_margin_s``: how long past a
    reply's wire time to wait before calling it lost (``TightPortHandler``: raise it for FTDI adapters left at a
    16 ms latency timer or for servos still at the factory Return_Delay_Time with many ids on one bus).

    Retries: each transaction is tried ``1 + retries`` times. Before retry k+1 the bus sleeps ``backoff_s * 2**k`` and
    then discards input until the line has been quiet for ``DRAIN_QUIET_S``: the servos after a damaged packet of a
    SYNC_READ keep answering, and one of those stale packets, damaged itself, would otherwise fail the retry too.
    BusError after the last, BusDisconnected as soon as the port itself fails (OSError/SerialException, or a timeout
    while the device path has vanished). Status error bits (voltage, angle sensor, overheat, overcurrent, overload)
    do not fail a transaction (an overloaded servo still reports where it is, and refusing to talk to it would stop
    the torque-off that clears the fault): they are returned (ArmReading.status), counted by name in
    BusStats.error_bits_seen, and named in every BusError about that servo.
    """

    def __init__(
        self,
        port: str,
        motor_ids: Sequence[int],
        baudrate: int = ct.FACTORY_BAUDRATE,
        retries: int = 2,
        backoff_s: float = 0.001,
        timeout_margin_s: float = DEFAULT_TIMEOUT_MARGIN_S,
    ):
        ids = tuple(int(i) for i in motor_ids)
        if not ids or len(set(ids)) != len(ids) or not all(0 <= i <= ct.MAX_ID for i in ids):
            raise ValueError(f"motor_ids must be distinct ids in 0..{ct.MAX_ID}, got {list(motor_ids)}")
        if baudrate not in SUPPORTED_BAUDRATES:
            raise ValueError(f"baudrate {baudrate} is not one the SDK can set; use one of {SUPPORTED_BAUDRATES}")
        if retries < 0 or backoff_s < 0 or timeout_margin_s <= 0:
            raise ValueError("retries and backoff_s must be >= 0 and timeout_margin_s > 0")
        self.port = port
        self.motor_ids = ids
        self.baudrate = baudrate
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_margin_s = timeout_margin_s
        self.stats = BusStats()
        self.last_status: dict[int, int] = {}  # latest status byte per motor id
        self._path: str | None = None  # what port resolved to; reopen() opens this same (by-id) path
        self._lock = threading.RLock()
        self._handler: TightPortHandler | None = None
        self._packets = scs.PacketHandler(0)  # 0: STS/SMS byte order (little-endian)
        self._arm_read: _SyncRead | None = None
        self._position_read: _SyncRead | None = None
        self._goal_write: scs.GroupSyncWrite | None = None

    # ---- port ----------------------------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._handler is not None and bool(self._handler.is_open)

    def open(self) -> None:
        """Open the port (a path or a by-id name fragment, see ports.resolve_port); BusDisconnected with the fix."""
        with self._lock:
            if self.is_open:
                return
            try:
                path = self._path or resolve_port(self.port)
            except PortNotFoundError as err:
                raise BusDisconnected(f"{err}. To fix: {OPEN_FIX}") from None
            handler = TightPortHandler(path, self.timeout_margin_s)
            try:
                handler.setBaudRate(self.baudrate)  # opens the port (SDK naming)
            except PORT_FAILURES as err:
                text = str(err)
                if "exclusively lock" in text:
                    text += " (another process has this bus open: stop it first)"
                message = f"cannot open servo bus {self.port} ({path}): {text}. To fix: {OPEN_FIX}"
                raise BusDisconnected(message) from None
            self._handler, self._path = handler, path
            self._arm_read = _SyncRead(handler, self._packets, ct.ARM_READ_START, ct.ARM_READ_LENGTH)
            self._position_read = _SyncRead(handler, self._packets, *ct.CONTROL_TABLE["Present_Position"][:2])
            for group in (self._arm_read, self._position_read):
                for motor_id in self.motor_ids:
                    group.addParam(motor_id)
            self._goal_write = scs.GroupSyncWrite(handler, self._packets, *ct.CONTROL_TABLE["Goal_Position"][:2])

    def close(self) -> None:
        with self._lock:
            handler, self._handler = self._handler, None
            if handler is not None and handler.ser is not None:
                try:
                    handler.ser.close()
                except PORT_FAILURES:
                    pass  # the device is already gone; nothing left to release

    def reopen(self, timeout_s: float = 2.0) -> bool:
        """Close, then try to open the same path again with backoff (10 ms doubling to 200 ms) until ``timeout_s``;
        True once open. Made for a by-id link that disappears on unplug and comes back on replug."""
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        with self._lock:
            self.close()
            while True:
                try:
                    self.open()
                except BusDisconnected as err:
                    self.stats.last_error = str(err)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    time.sleep(min(delay, remaining))
                    delay = min(2 * delay, 0.2)
                    continue
                self.stats.reconnects += 1
                return True

    # ---- transactions --------------------------------------------------------------------------------------------
    def ping(self, motor_id: int) -> int:
        """The servo's model number (777 for an STS3215)."""

        def attempt(handler: TightPortHandler) -> _Attempt:
            model, result, error = self._packets.ping(handler, motor_id)
            self._note_status(motor_id, error if result == scs.COMM_SUCCESS else 0)
            return _Attempt(result, model, motor_id)

        return self._transact("ping", (motor_id,), attempt)

    def read_arm(self) -> ArmReading:
        """ONE sync read of Present_Position .. Present_Temperature (addresses 56..63) of all motors."""

        def attempt(handler: TightPortHandler) -> _Attempt:
            group = self._arm_read
            result = group.txRxPacket()
            if result != scs.COMM_SUCCESS:
                return _Attempt(result, None, group.failed_id)
            now = time.monotonic()
            rows = []
            for motor_id in self.motor_ids:
                data = group.data_dict[motor_id]
                self._note_status(motor_id, group.errors[motor_id])
                rows.append(
                    (
                        ct.decode_value("Present_Position", ct.from_bytes(data[0:2])),
                        ct.decode_value("Present_Velocity", ct.from_bytes(data[2:4])),
                        ct.decode_value("Present_Load", ct.from_bytes(data[4:6])),
                        data[6],
                        data[7],
                        group.errors[motor_id],
                    )
                )
            table = np.array(rows, dtype=np.int64).reshape(len(self.motor_ids), 6)
            reading = ArmReading(
                positions=table[:, 0].copy(),
                velocities=table[:, 1].copy(),
                loads=table[:, 2].copy(),
                voltages=table[:, 3] * 0.1,
                temperatures=table[:, 4].copy(),
                status=table[:, 5].copy(),
                monotonic_s=now,
            )
            return _Attempt(result, reading)

        return self._transact("read_arm", self.motor_ids, attempt)

    def read_positions(self) -> np.ndarray:
        """Present_Position (int ticks) of all motors, one sync read of addresses 56..57."""

        def attempt(handler: TightPortHandler) -> _Attempt:
            group = self._position_read
            result = group.txRxPacket()
            if result != scs.COMM_SUCCESS:
                return _Attempt(result, None, group.failed_id)
            for motor_id in self.motor_ids:
                self._note_status(motor_id, group.errors[motor_id])
            positions = [ct.decode_value("Present_Position", ct.from_bytes(group.data_dict[i])) for i in self.motor_ids]
            return _Attempt(result, np.array(positions, dtype=np.int64))

        return self._transact("read_positions", self.motor_ids, attempt)

    def write_goal_positions(self, ticks: Sequence[int]) -> None:
        """One SYNC_WRITE of Goal_Position (42) to all motors, in motor order. Broadcast: no reply, no retry."""
        values = np.asarray(ticks)
        if values.shape != (len(self.motor_ids),) or not np.all(np.isfinite(values)):
            raise ValueError(f"write_goal_positions needs {len(self.motor_ids)} finite ticks, got {ticks!r}")
        raws = [ct.encode_value("Goal_Position", int(np.rint(v))) for v in values]

        def attempt(handler: TightPortHandler) -> _Attempt:
            group = self._goal_write
            group.clearParam()
            for motor_id, raw in zip(self.motor_ids, raws, strict=True):
                group.addParam(motor_id, ct.to_bytes(raw, 2))
            return _Attempt(group.txPacket())

        self._transact("write_goal_positions", self.motor_ids, attempt)

    def set_torque(self, enabled: bool, motor_ids: Sequence[int] | None = None) -> None:
        """Torque_Enable on (1) or off (0), one confirmed write per motor."""
        for motor_id in self._ids(motor_ids):
            self.write_register(motor_id, "Torque_Enable", 1 if enabled else 0)

    def set_pid(self, p: int, i: int, d: int, motor_ids: Sequence[int] | None = None) -> None:
        """Position-loop gains, one confirmed 3-byte write per motor (P at 21, D at 22, I at 23)."""
        gains = [ct.encode_value("P_Coefficient", p), ct.encode_value("D_Coefficient", d)]
        gains.append(ct.encode_value("I_Coefficient", i))
        for motor_id in self._ids(motor_ids):
            self._write(motor_id, "P/D/I_Coefficient", ct.CONTROL_TABLE["P_Coefficient"][0], gains)

    def read_register(self, motor_id: int, name: str) -> int:
        """One register by its control-table name, sign-magnitude decoded where the register is signed."""
        address, size, _ = ct.register(name)

        def attempt(handler: TightPortHandler) -> _Attempt:
            data, result, error = self._packets.readTxRx(handler, motor_id, address, size)
            if result == scs.COMM_SUCCESS and len(data) != size:
                result = scs.COMM_RX_CORRUPT
            if result != scs.COMM_SUCCESS:
                return _Attempt(result, None, motor_id)
            self._note_status(motor_id, error)
            return _Attempt(result, ct.decode_value(name, ct.from_bytes(data)))

        return self._transact(f"read {name}", (motor_id,), attempt)

    def write_register(self, motor_id: int, name: str, value: int) -> None:
        """One register by its control-table name (sign-magnitude encoded, range-checked), confirmed by the servo."""
        address, size, _ = ct.register(name)
        if name in ct.READ_ONLY:
            raise ValueError(f"{name} is read-only")
        self._write(motor_id, name, address, ct.to_bytes(ct.encode_value(name, value), size))

    # ---- internals -----------------------------------------------------------------------------------------------
    def _ids(self, motor_ids: Sequence[int] | None) -> tuple[int, ...]:
        return self.motor_ids if motor_ids is None else tuple(int(i) for i in motor_ids)

    def _write(self, motor_id: int, what: str, address: int, data: list[int]) -> None:
        def attempt(handler: TightPortHandler) -> _Attempt:
            result, error = self._packets.writeTxRx(handler, motor_id, address, len(data), data)
            if result == scs.COMM_SUCCESS:
                self._note_status(motor_id, error)
            return _Attempt(result, None, motor_id)

        self._transact(f"write {what}", (motor_id,), attempt)

    def _note_status(self, motor_id: int, error: int) -> None:
        self.last_status[motor_id] = error
        for name in ct.error_names(error):
            self.stats.error_bits_seen[name] = self.stats.error_bits_seen.get(name, 0) + 1

    def _status_text(self, motor_ids: Sequence[int]) -> str:
        faults = [
            f"id {i}: {', '.join(ct.error_names(self.last_status[i]))}" for i in motor_ids if self.last_status.get(i)
        ]
        return f"; servo status errors ({'; '.join(faults)})" if faults else ""

    def _lost(self, what: str, reason: object) -> BusDisconnected:
        self.close()
        message = (
            f"servo bus {self.port} went away during {what} ({reason}); reopen() once it is back. "
            "Check the USB cable, the adapter and the servo power supply"
        )
        self.stats.last_error = message
        return BusDisconnected(message)

    def _transact(self, what: str, motor_ids: Sequence[int], attempt: Callable[[TightPortHandler], _Attempt]) -> T:
        with self._lock:
            handler = self._handler
            if handler is None or not handler.is_open:
                raise BusDisconnected(f"servo bus {self.port} is not open ({what}); call open() or reopen()")
            self.stats.transactions += 1
            failure = ""
            for n in range(self.retries + 1):
                self.stats.attempts += 1
                handler.is_using = False  # the SDK leaves it set when an exception cut a transaction short
                try:
                    if n:
                        self.stats.retries += 1
                        time.sleep(self.backoff_s * 2 ** (n - 1))
                        handler.drain(DRAIN_QUIET_S, self.timeout_margin_s)
                    outcome = attempt(handler)
                except PORT_FAILURES as err:
                    self.stats.failed_attempts += 1
                    raise self._lost(what, err) from None
                if outcome.result == scs.COMM_SUCCESS:
                    return outcome.value
                self.stats.failed_attempts += 1
                if outcome.result == scs.COMM_RX_CORRUPT:
                    self.stats.corrupt_packets += 1
                elif outcome.result == scs.COMM_RX_TIMEOUT:
                    self.stats.timeouts += 1
                    if self._path is not None and not os.path.exists(self._path):
                        raise self._lost(what, f"{self._path} no longer exists")
                blame = f" (at id {outcome.motor_id})" if outcome.motor_id is not None else ""
                failure = f"{self._packets.getTxRxResult(outcome.result)}{blame}"
            self.stats.failures += 1
            ids = ", ".join(str(i) for i in motor_ids)
            message = (
                f"{what} on servo bus {self.port}, motor id(s) {ids}: {failure} after {self.retries + 1} attempt(s)"
                f"{self._status_text(motor_ids)}. A missing status packet means a servo is unpowered, has another "
                "id or baud rate, or the cable is loose; repeated incorrect packets mean noise or a worn cable"
            )
            self.stats.last_error = message
            raise BusError(message)
