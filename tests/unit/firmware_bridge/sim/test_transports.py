"""firmware_bridge.sim.transports: the wearable over a pty at 10x without loss, and over TCP."""

from __future__ import annotations

import asyncio
import threading

import pytest
import serial

from firmware_bridge.framing import FrameDecoder
from firmware_bridge.protocol import Event, Hello, Message, Samples, TimeSync
from firmware_bridge.sim import SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording
from firmware_bridge.sim.transports import PtyLink, serve_tcp
from tests.fakes.playback import check_every_sample_in_order


@pytest.mark.slow
async def test_pty_end_to_end_at_10x_no_loss() -> None:
    """The simulator writes a real pty; pyserial reads the other end; nothing is lost."""
    rec = synthetic_recording(24.0, seed=9)
    w = SimulatedWearable(rec, speed=10.0)
    decoder = FrameDecoder()
    received: list[Message] = []
    stop = threading.Event()

    def read(port: serial.Serial) -> None:
        while not stop.is_set() or port.in_waiting:
            data = port.read(port.in_waiting or 1)
            if data:
                received.extend(decoder.feed(data))

    async with PtyLink() as link:
        port = serial.Serial(link.path, baudrate=115200, timeout=0.05)
        try:
            reader = asyncio.create_task(asyncio.to_thread(read, port))
            await link.play(w)
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.wait_for(reader, timeout=10)
        finally:
            port.close()
    assert link.stats["dropped_no_reader"] == 0
    assert set(decoder.stats) <= {"bytes", "frames"}, decoder.stats
    assert decoder.stats["bytes"] == link.stats["bytes"]
    check_every_sample_in_order(w, rec, received)
    assert received[0] == w.hello


async def test_tcp_transport_serves_the_stream(rec) -> None:  # type: ignore[no-untyped-def]
    w = SimulatedWearable(rec.crop(0.0, 10.0), speed=20.0)
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve_tcp(w, on_ready=lambda h, p: ready.set_result(p)))
    port = await asyncio.wait_for(ready, 5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = FrameDecoder()
    got: list[Message] = []
    while data := await asyncio.wait_for(reader.read(65536), 5):
        got += decoder.feed(data)
    writer.close()
    stats = await asyncio.wait_for(server, 5)
    assert stats["clients"] == 1
    assert got and isinstance(got[0], Hello | TimeSync | Samples | Event)
    expected = sum(isinstance(e.message, Samples) for e in SimulatedWearable(rec.crop(0.0, 10.0)).timeline())
    # the server starts playing at once; the client may miss the first moments
    assert 0.9 * expected <= sum(isinstance(m, Samples) for m in got) <= expected
    assert set(decoder.stats) <= {"bytes", "frames"}
