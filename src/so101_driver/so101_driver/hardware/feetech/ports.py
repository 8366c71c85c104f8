"""Stable serial device names for the servo bus adapters.

/dev/ttyACM0 and /dev/ttyACM1 swap between boots and replugs; udev's
/dev/serial/by-id/usb-<vendor>_<product>_<serial>-if00 links do not. A user may give the full path, or any unique
fragment of a by-id name (for example the adapter's serial number "5A46").

    python -m so101_driver.hardware.feetech.ports           # list what is plugged in
    python -m so101_driver.hardware.feetech.ports 5A46      # which path the fragment resolves to
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path

BY_ID_DIR = "/dev/serial/by-id"
_FALLBACK_PATTERNS = ("/dev/ttyACM*", "/dev/ttyUSB*")


class PortNotFoundError(LookupError):
    """The port argument matches no device (or several); the message lists what exists and how to pick one."""


@dataclass(frozen=True)
class PortEntry:
    name: str  # the by-id link name, e.g. usb-1a86_USB_Single_Serial_5A46-if00
    path: str  # the link itself: the stable name to put in configuration
    target: str  # what it points to now, e.g. /dev/ttyACM0 ("" if the link dangles)


def list_ports(by_id_dir: str | Path = BY_ID_DIR) -> list[PortEntry]:
    """The by-id entries, sorted by name, with their current targets."""
    entries = []
    for link in sorted(Path(by_id_dir).glob("*")):
        target = os.path.realpath(link) if link.exists() else ""
        entries.append(PortEntry(name=link.name, path=str(link), target=target))
    return entries


def describe_ports(by_id_dir: str | Path = BY_ID_DIR) -> str:
    """One line per device for error messages; names raw tty devices when udev made no by-id links."""
    entries = list_ports(by_id_dir)
    if entries:
        return "\n".join(f"  {e.path} -> {e.target or '(dangling)'}" for e in entries)
    raw = sorted(p for pattern in _FALLBACK_PATTERNS for p in glob.glob(pattern))
    if raw:
        return f"  (no {by_id_dir} links; raw devices, whose numbers can swap: {', '.join(raw)})"
    return f"  (nothing in {by_id_dir} and no /dev/ttyACM* or /dev/ttyUSB*: is the adapter plugged in and powered?)"


def resolve_port(port: str, by_id_dir: str | Path = BY_ID_DIR) -> str:
    """The path to open for a user's port argument.

    An existing path is returned as given (a by-id link stays a link, so a reopen after a replug follows it to the
    new ttyACM number). Anything without a slash is matched as a case-insensitive fragment of the by-id names and
    must match exactly one. Otherwise PortNotFoundError, whose message lists the devices that exist.
    """
    if not port:
        raise PortNotFoundError("no serial port given; devices present:\n" + describe_ports(by_id_dir))
    if os.path.exists(port):
        return port
    if "/" not in port:
        matches = [e for e in list_ports(by_id_dir) if port.lower() in e.name.lower()]
        if len(matches) == 1:
            return matches[0].path
        if len(matches) > 1:
            names = "\n".join(f"  {e.path} -> {e.target}" for e in matches)
            raise PortNotFoundError(f"port {port!r} matches {len(matches)} devices; give more of the name:\n{names}")
    raise PortNotFoundError(
        f"serial port {port!r} does not exist. Devices present:\n{describe_ports(by_id_dir)}\n"
        "Give a path from that list or a unique part of a by-id name; check the USB cable and the adapter's power"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_driver.hardware.feetech.ports",
        description="List the serial adapters under /dev/serial/by-id (stable names for the servo buses), or show "
        "which device a port argument (a path or a unique fragment of a by-id name) resolves to.",
    )
    parser.add_argument("port", nargs="?", help="a path or a by-id name fragment to resolve (omit to list)")
    parser.add_argument("--by-id-dir", default=BY_ID_DIR, help="where udev puts the links (default %(default)s)")
    args = parser.parse_args(argv)
    if args.port is None:
        print(describe_ports(args.by_id_dir))
        return 0
    try:
        path = resolve_port(args.port, args.by_id_dir)
    except PortNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{path} -> {os.path.realpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
