"""A wearable on a serial port (USB-serial, UART, a pty): COBS frames in, messages out.

Its options are :class:`~edge.sources.options.SerialOptions`, the ``[serial]`` section of
the daemon's configuration.

The port is opened with pyserial in non-blocking mode (``timeout=0``) and read from the
event loop through ``loop.add_reader`` on its file descriptor: no thread, no blocking read.
Bytes go through the bridge's streaming :class:`~firmware_bridge.framing.FrameDecoder`
(any chunking, resynchronises after garbage, counts rejected frames by reason).

When the port vanishes (USB unplugged: the read fails) the source emits
``ConnectionEvent(connected=False)``, closes the port, and tries to reopen it every
``reopen_interval_s`` until it is back (a udev ``/dev/serial/by-id/...`` link that returns),
then emits ``ConnectionEvent(connected=True)``. It never gives up: a hub waits for its
wearable. The device key of every item is the port path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from edge.sources.base import (
    DEFAULT_QUEUE_SIZE,
    ConnectionEvent,
    QueueBridge,
    SensorSource,
    SourceItem,
)
from edge.sources.options import SerialOptions

__all__ = ["SerialSource"]

log = logging.getLogger(__name__)

# log a failing reopen at WARNING only this often; the attempts themselves continue
REOPEN_LOG_EVERY_S: Final = 60.0


class SerialSource(SensorSource):
    """One wearable on one serial port; the port path is its device key."""

    kind = "serial"

    def __init__(
        self,
        options: SerialOptions | None = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        super().__init__()
        self.options = options or SerialOptions()
        self.options.validate()
        self.port = self.options.port
        self.baud = self.options.baud
        self.reopen_interval_s = self.options.reopen_interval_s
        self.read_size = self.options.read_size
        self._bridge = QueueBridge(self.stats, queue_size)
        from firmware_bridge.framing import FrameDecoder

        self.decoder = FrameDecoder()
        self._serial: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event | None = None
        self._lost_reason = ""
        self._stopped = False
        self._connects = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=f"serial:{self.port}")

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._serial is not None:
            self._close(reason="stopped")
        self._bridge.put(None)

    def __aiter__(self) -> AsyncIterator[SourceItem]:
        return self._bridge.iterate()

    def health(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "port": self.port,
            "open": self._serial is not None,
            "queue": self._bridge.qsize(),
            **self.stats.snapshot(),
            **{f"frames_{k}": v for k, v in self.decoder.stats.items()},
        }

    # -- the port's life ------------------------------------------------------------------------
    async def _run(self) -> None:
        last_warning = -float("inf")
        while not self._stopped:
            try:
                self._open()
            except OSError as e:  # serial.SerialException is an OSError (IOError)
                self.stats.inc("open_failures")
                now = time.monotonic()
                if now - last_warning >= REOPEN_LOG_EVERY_S:
                    last_warning = now
                    log.warning("serial port %s unavailable (%s); retrying every %.1f s",
                                self.port, e, self.reopen_interval_s)
                await asyncio.sleep(self.reopen_interval_s)
                continue
            last_warning = -float("inf")
            assert self._lost is not None
            await self._lost.wait()
            if self._serial is not None:
                self._close(reason=self._lost_reason)
            if not self._stopped:
                await asyncio.sleep(self.reopen_interval_s)

    def _open(self) -> None:
        import serial  # pyserial: imported when a serial source is chosen

        ser = serial.Serial()
        ser.port = self.port
        ser.baudrate = self.baud
        ser.timeout = 0  # non-blocking reads: the loop tells us when bytes are there
        ser.exclusive = True  # two daemons on one wearable would each get half the frames
        ser.open()
        self._serial = ser
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self.decoder.reset()  # a partial frame from before the outage is garbage now
        self._connects += 1
        self.stats.inc("opens")
        assert self._loop is not None
        self._loop.add_reader(ser.fileno(), self._on_readable)
        log.info("serial port %s open at %d baud", self.port, self.baud)
        self._emit(ConnectionEvent(True, "", self._connects))

    def _close(self, *, reason: str) -> None:
        ser, self._serial = self._serial, None
        if ser is None:
            return
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):  # fd already invalid after a yank
            self._loop.remove_reader(ser.fileno())
        with contextlib.suppress(OSError):
            ser.close()
        self.stats.inc("closes")
        if reason != "stopped":
            log.warning("serial port %s lost (%s); will reopen", self.port, reason)
        self._emit(ConnectionEvent(False, reason, self._connects))

    def _on_readable(self) -> None:
        ser = self._serial
        if ser is None:
            return
        try:
            data = ser.read(max(self.read_size, ser.in_waiting))
        except OSError as e:  # SerialException: EIO or "readiness but no data" = unplugged
            self._mark_lost(str(e) or type(e).__name__)
            return
        if not data:
            return
        self.stats.inc("bytes", len(data))
        now = time.monotonic()
        for msg in self.decoder.feed(data):
            self.stats.inc("items")
            self._bridge.put(SourceItem(self.port, now, msg))

    def _mark_lost(self, reason: str) -> None:
        ser = self._serial
        if ser is not None and self._loop is not None:
            # stop the reader at once: a yanked fd is readable forever
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(ser.fileno())
        self._lost_reason = reason
        if self._lost is not None:
            self._lost.set()

    def _emit(self, message: Any) -> None:
        self._bridge.put(SourceItem(self.port, time.monotonic(), message))
