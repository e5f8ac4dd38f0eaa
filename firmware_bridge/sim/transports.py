"""Carry a simulated wearable's frames over a pseudo-terminal or a TCP socket.

- :class:`PtyLink`: creates a pty pair in raw mode; the slave path (``/dev/pts/N``) is the
  "serial port" a hub opens with pyserial. The simulator writes the master end without
  blocking the loop; when nobody drains the port for ``write_timeout_s`` the frame is
  dropped and counted (a UART does not wait for its listener either).
- :func:`serve_tcp`: a TCP server; every connected client receives the frame stream. A
  ``disconnect`` fault closes the clients and refuses new ones until ``reconnect``.

Both are async context managers / coroutines that never block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

from firmware_bridge.errors import SimulatorError
from firmware_bridge.framing import encode_frame
from firmware_bridge.sim.wearable import SimulatedWearable

__all__ = ["PtyLink", "serve_tcp"]

# A reader polling every 100 ms (pyserial's usual timeout) drains well within this; a
# longer wait means nobody is listening.
WRITE_TIMEOUT_S: Final = 1.0
# Per TCP client bytes queued before frames to it are dropped (~10 s of a wrist wearable).
TCP_CLIENT_BUFFER: Final = 64 * 1024


class PtyLink:
    """A pty pair: the simulator writes ``master_fd``; a hub opens :attr:`path`."""

    def __init__(self, *, write_timeout_s: float = WRITE_TIMEOUT_S) -> None:
        self.write_timeout_s = write_timeout_s
        self.stats: Counter[str] = Counter()
        self.master_fd = -1
        self.slave_fd = -1
        self.path = ""

    def open(self) -> str:
        """Create the pair; returns the device path."""
        self.master_fd, self.slave_fd = os.openpty()
        # raw: no echo, no CR/LF translation, no signal characters - bytes pass untouched.
        # The slave stays open here so writes never fail while no hub has it open.
        tty.setraw(self.slave_fd, termios.TCSANOW)
        os.set_blocking(self.master_fd, False)
        self.path = os.ttyname(self.slave_fd)
        return self.path

    def close(self) -> None:
        for fd in (self.master_fd, self.slave_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master_fd = self.slave_fd = -1

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def write(self, data: bytes) -> bool:
        """Write all of ``data`` or give up after ``write_timeout_s`` (counted); never blocks."""
        if self.master_fd < 0:
            raise SimulatorError("PtyLink is not open")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.write_timeout_s
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master_fd, view)
                view = view[n:]
            except BlockingIOError:
                if loop.time() >= deadline:
                    self.stats["dropped_no_reader"] += 1
                    return False
                await asyncio.sleep(0.005)  # the pty buffer is full: let the reader drain it
        self.stats["frames"] += 1
        self.stats["bytes"] += len(data)
        return True

    async def play(self, wearable: SimulatedWearable) -> None:
        """Write every frame of ``wearable`` until it ends (flip faults included)."""
        async for frame in wearable.frames():
            await self.write(frame)


async def serve_tcp(
    wearable: SimulatedWearable,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_ready: Callable[[str, int], None] | None = None,
) -> Counter[str]:
    """Serve ``wearable``'s frames to every TCP client until it ends; returns counters.

    ``port=0`` picks a free port; ``on_ready(host, port)`` is called once listening.
    """
    stats: Counter[str] = Counter()
    clients: set[asyncio.StreamWriter] = set()
    link_up = True

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not link_up:
            stats["refused_while_down"] += 1
            writer.close()
            return
        stats["clients"] += 1
        clients.add(writer)

    def close_clients() -> None:
        for w in list(clients):
            w.close()
        clients.clear()

    server = await asyncio.start_server(on_client, host, port)
    try:
        bound = server.sockets[0].getsockname()
        if on_ready is not None:
            on_ready(bound[0], bound[1])
        async for em in wearable.emissions():
            if em.event == "disconnect":
                link_up = False
                close_clients()
                continue
            if em.event == "reconnect":
                link_up = True
                continue
            if em.message is None:
                continue
            frame = encode_frame(em.message)
            for w in list(clients):
                if w.is_closing():
                    clients.discard(w)
                    continue
                if w.transport.get_write_buffer_size() > TCP_CLIENT_BUFFER:
                    stats["dropped_slow_client"] += 1
                    continue
                w.write(frame)
                stats["frames"] += 1
    finally:
        close_clients()
        server.close()
        await server.wait_closed()
    return stats
