"""systemd's notify protocol, without a dependency: READY=1, WATCHDOG=1, STATUS=, STOPPING=1.

With ``Type=notify`` systemd passes a datagram socket in ``$NOTIFY_SOCKET`` (a path, or an
abstract name written with a leading ``@``). The daemon sends ``READY=1`` once it can
decide, ``WATCHDOG=1`` at half of ``$WATCHDOG_USEC`` (systemd restarts a service that misses
it), ``STATUS=...`` for ``systemctl status``, and ``STOPPING=1`` when it drains. Outside
systemd every call is a cheap no-op. Sending never blocks and never raises: a notify
failure is logged and counted, since the daemon's job must not depend on it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Final

__all__ = ["SdNotifier", "watchdog_interval"]

log = logging.getLogger(__name__)

MAX_STATUS_LEN: Final = 200  # systemctl shows one line; a datagram must stay small anyway


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of ``WATCHDOG_USEC``), or None if not asked.

    Honours ``WATCHDOG_PID``: the watchdog is ours only if it names this process.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC=%r", usec)
        return None
    if value <= 0:
        return None
    return value / 2e6


class SdNotifier:
    """Sends notify messages to ``$NOTIFY_SOCKET`` (or the ``address`` given)."""

    def __init__(self, address: str | None = None) -> None:
        addr = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = None
        self._sock: socket.socket | None = None
        self.sent = 0
        self.failures = 0
        if not addr:
            return
        if addr.startswith("@"):
            addr = "\0" + addr[1:]  # Linux abstract namespace
        elif not addr.startswith("/"):
            log.warning("ignoring NOTIFY_SOCKET=%r: not a unix socket path", addr)
            return
        self.address = addr
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.setblocking(False)
        except OSError as e:
            log.warning("cannot create the notify socket: %s", e)
            return
        self._sock = sock

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, message: str) -> bool:
        """Send one raw ``KEY=VALUE\\n...`` message; True if it was sent."""
        if self._sock is None or self.address is None:
            return False
        try:
            self._sock.sendto(message.encode("utf-8", "replace"), self.address)
        except OSError as e:  # includes BlockingIOError when systemd is slow to read
            self.failures += 1
            log.debug("sd_notify %r failed: %s", message.split("=", 1)[0], e)
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        msg = "READY=1"
        if status:
            msg += "\nSTATUS=" + _one_line(status)
        return self.notify(msg)

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify("STATUS=" + _one_line(text))

    def stopping(self, status: str | None = None) -> bool:
        msg = "STOPPING=1"
        if status:
            msg += "\nSTATUS=" + _one_line(status)
        return self.notify(msg)

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_STATUS_LEN]
