"""What the daemon is waiting for, in words: why a source has sent no data, and what to check.

A hub without data is usually a hub waiting for something a technician can fix in a minute
(a serial port under another name, the user not in the dialout group, bluetoothd down). This
module turns the source's kind and state into that one line, for the end of a finite run
(:mod:`edge.exit_status`) and, as a service, for the status line, the log and systemd's
``STATUS=`` (:func:`watch_for_data`). It only looks (file system, pyserial's port list); it
changes nothing.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from edge.daemon import Daemon
    from edge.sdnotify import SdNotifier
    from edge.sources.base import SensorSource

__all__ = ["available_serial_ports", "bluetooth_adapters", "has_data", "watch_for_data", "why_no_data"]

log = logging.getLogger(__name__)

# how often a daemon without data says again what it waits for: a technician at the Pi's
# terminal (or `systemctl status`) sees the reason within seconds of starting it
WAIT_CHECK_S: Final = 5.0
# the Linux class directory that lists Bluetooth adapters (hci0, ...); empty: no adapter
SYS_BLUETOOTH: Final = Path("/sys/class/bluetooth")
_DIALOUT_HINT: Final = ("if it exists but cannot be opened, add this user to the dialout group "
                        "(sudo usermod -aG dialout $USER, then log in again)")


def available_serial_ports() -> list[str]:
    """The serial ports this machine has now (pyserial's list; else /dev/tty{USB,ACM}*)."""
    try:
        from serial.tools.list_ports import comports

        ports = sorted(p.device for p in comports())
    except ImportError:  # pragma: no cover - pyserial is a hub dependency
        ports = []
    extra = glob.glob("/dev/ttyUSB*") + glob.glob("/dev/ttyACM*") + glob.glob("/dev/serial/by-id/*")
    return sorted(set(ports) | set(extra))


def bluetooth_adapters(sys_dir: Path = SYS_BLUETOOTH) -> list[str]:
    """The Bluetooth adapters the kernel knows (``hci0`` ...); empty when there are none."""
    try:
        return sorted(p.name for p in sys_dir.iterdir() if p.name.startswith("hci")
                      and ":" not in p.name)  # hci0:12 entries are connections, not adapters
    except OSError:
        return []


def _serial_hint(port: str) -> str:
    others = [p for p in available_serial_ports() if p != port]
    listed = ", ".join(others) if others else "none"
    if not os.path.exists(port):
        return (f"serial port {port}: no such port; available: {listed} (--port); "
                f"{_DIALOUT_HINT}")
    if not os.access(port, os.R_OK | os.W_OK):
        return (f"serial port {port}: permission denied: add this user to the dialout group "
                "(sudo usermod -aG dialout $USER, then log in again)")
    return (f"serial port {port} sends no frames: is the wearable on and at the right baud "
            f"rate (--baud)? other ports: {listed}")


def _ble_hint(health: dict[str, Any]) -> str:
    adapters = bluetooth_adapters()
    if not adapters:
        return ("no Bluetooth adapter: is bluetoothd running (systemctl status bluetooth), is the "
                "adapter up (bluetoothctl show; rfkill unblock bluetooth)?")
    devices = health.get("devices") or {}
    connected = [a for a, d in devices.items() if isinstance(d, dict) and d.get("connected")]
    if connected:
        return f"BLE wearable(s) {', '.join(connected)} connected but sending no data"
    return (f"no BLE wearable found on {', '.join(adapters)}: is it awake, in range and not "
            "connected to a phone? `edge-daemon scan` lists what the hub sees")


def why_no_data(source: SensorSource) -> str:
    """One line: why ``source`` has produced no data yet, and what to check."""
    kind = source.kind
    try:
        health = source.health()
    except Exception:  # noqa: BLE001 - a hint must never break the run it explains
        health = {}
    if kind == "serial":
        return _serial_hint(str(getattr(source, "port", health.get("port", "?"))))
    if kind == "ble":
        return _ble_hint(health)
    if kind == "replay":
        path = getattr(source, "path", None)
        return f"the replayed file {path or ''} held no usable data".replace("  ", " ")
    return f"the {kind} source produced no data"


def has_data(daemon: Daemon) -> bool:
    """Whether any device has sent samples (or beats) yet."""
    return any(d.ingest.counters.get("samples", 0) or d.ingest.data_span_s > 0
               for d in daemon.devices.values())


async def watch_for_data(daemon: Daemon, notifier: SdNotifier,
                         interval_s: float = WAIT_CHECK_S) -> None:
    """Until the first data: say what the daemon waits for (log once per change, the live
    status line, systemd's ``STATUS=``); then clear it and end."""
    said = ""
    while not has_data(daemon):
        await asyncio.sleep(interval_s)
        if has_data(daemon):
            break
        hint = why_no_data(daemon.source)
        daemon.waiting_for = hint
        if hint != said:
            log.warning("waiting for data: %s", hint)
            said = hint
        notifier.status(f"waiting: {hint}")
    if daemon.waiting_for:
        daemon.waiting_for = ""
        notifier.status("data arriving")
