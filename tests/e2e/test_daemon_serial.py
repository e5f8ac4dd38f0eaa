"""Serial end to end: wearable-sim on a pty, edge-daemon on the other end, a real SQLite file.

The simulator (firmware_bridge.sim) writes COBS frames into the master side of a real pty
pair; the daemon, a separate process started like a user would, opens the slave side with
pyserial. Afterwards the decisions in the database must match an offline evaluation of the
same windows: the samples the daemon received (its --record-raw file, which must equal the
simulator's quantized recording), windowed by the offline path of core.signal,
classified by the same engine, smoothed by the same decision logic.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.signal import Stream, compute_calibration, windows_from_streams
from edge.bundle import load_bundle
from edge.config import DecisionConfig
from edge.decisions import DecisionLogic, Wearer, softmax
from edge.engines import open_engine
from edge.sinks import open_database
from edge.sources.replay import read_raw_recording
from firmware_bridge.protocol import Hello, Samples
from firmware_bridge.sim import SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording
from firmware_bridge.sim.transports import PtyLink
from tests.fakes.daemon import db_rows, start_cli, toy_bundle
from tests.fakes.stderr import Lines, stop_keeping_stderr, wait_until

pytestmark = pytest.mark.slow

DATA_S = 150.0  # 60 s enrollment (toy contract) + ~45 decisions at a 2 s hop
SPEED = 20.0  # 7.5 s of wall time; the bridge's own pty test shows 10x is lossless


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


def _streams_from_raw(raw: Path) -> tuple[Hello, dict[str, Stream], dict[str, np.ndarray]]:
    """The samples the daemon received, per sensor kind (physical units, device seconds)."""
    hello: Hello | None = None
    chunks: dict[int, list[Samples]] = {}
    for _, _, msg in read_raw_recording(raw):
        if isinstance(msg, Hello) and hello is None:
            hello = msg
        elif isinstance(msg, Samples):
            chunks.setdefault(msg.sensor_id, []).append(msg)
    assert hello is not None
    streams, wire = {}, {}
    for sid, info in hello.sensor_map().items():
        packets = chunks[sid]
        assert [p.seq for p in packets] == list(range(len(packets)))  # nothing lost or reordered
        t = np.concatenate([p.t_device_us * 1e-6 + np.arange(p.count) / info.rate_hz
                            for p in packets])
        raw_values = np.concatenate([p.raw for p in packets])
        streams[info.kind] = Stream(t, info.to_physical(raw_values), rate_hz=info.rate_hz)
        wire[info.kind] = raw_values
    return hello, streams, wire


async def test_serial_pty_end_to_end_matches_offline_evaluation(bundle: Path,
                                                                tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    raw = tmp_path / "raw.frames"
    recording = synthetic_recording(DATA_S, seed=3)
    wearable = SimulatedWearable(recording, device_id="wrist-7", speed=SPEED)
    link = PtyLink()
    port = link.open()
    proc = start_cli(["--device", "serial", "--port", port, "--bundle", str(bundle),
                      "--backend", "onnx", "--precision", "fp32", "--db", str(db),
                      "--state-dir", str(tmp_path / "state"), "--record-raw", str(raw),
                      "--resident", "room-12", "--status", "off", "--summary-json",
                      str(tmp_path / "summary.json")])
    err = Lines(proc.stderr)
    try:
        await wait_until(lambda: err.seen("serial port", "open"), 60, "the daemon to open the port")
        await link.play(wearable)
        # let the daemon finish the last packets before SIGTERM (data time = 1/SPEED wall)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(stop_keeping_stderr, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        link.close()
    log = err.text()
    assert proc.returncode == 0, log
    assert link.stats.get("dropped_no_reader", 0) == 0

    # --- what the daemon stored --------------------------------------------------------------
    rows = db_rows(db)
    events = db_rows(db, "events")
    assert len(rows) >= 30, log
    assert {r["resident"] for r in rows} == {"room-12"}
    assert {r["device"] for r in rows} == {port}
    assert [e["kind"] for e in events if e["kind"] == "calibrated"] == ["calibrated"]
    assert oct(os.stat(db).st_mode & 0o777) == "0o600"
    conn = open_database(db, readonly=True)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    # --- the daemon received exactly what the simulator sent --------------------------------
    hello, streams, wire = _streams_from_raw(raw)
    assert hello.device_id == "wrist-7"
    for info in hello.sensors:
        expected = info.to_raw(recording.signals[info.kind].values)
        np.testing.assert_array_equal(wire[info.kind], expected)

    # --- offline evaluation of the same windows ----------------------------------------------
    b = load_bundle(bundle)
    contract = b.contract
    hop = contract.hop_s
    origins = {round(r["window_start"] - r["window_index"] * hop, 6) for r in rows}
    assert len(origins) == 1
    origin = origins.pop()
    cal = compute_calibration(streams, contract)
    stored = json.loads((tmp_path / "state" / "calibration" / "room-12.json").read_text())
    np.testing.assert_allclose(stored["calibration"]["center"]["eda"], cal.center["eda"])
    windows = windows_from_streams(streams, contract, origin=origin, calibration=cal)
    valid = [w for w in windows if w.valid]
    assert [r["window_index"] for r in rows] == [w.index for w in valid]
    engine = open_engine(b, "onnx", "fp32", 1)
    probs = softmax(engine.run(contract.pack_batch([w.data for w in valid])))  # (N, K)
    stored_raw = np.array([[r["p_instant"][c] for c in contract.class_names] for r in rows])
    np.testing.assert_allclose(stored_raw, probs, atol=1e-5)

    logic = DecisionLogic(contract.class_names, DecisionConfig(),
                          wearer=Wearer(port, "room-12"), model_id=b.model_id)
    offline_states = [
        logic.update(p, t=0.0, window_start=w.start, window_end=w.end, window_index=w.index)[0].state
        for p, w in zip(probs, valid, strict=True)
    ]
    assert [r["state"] for r in rows] == offline_states

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["decisions"] == len(rows)
    assert summary["windows"]["valid"] == len(valid)
    assert summary["drops"]["lost_packets"] == 0
    assert summary["stop_reason"] == "SIGTERM received"


async def _next_item(it: object) -> object:
    return await asyncio.wait_for(it.__anext__(), 10.0)  # type: ignore[attr-defined]


async def test_serial_source_reopens_when_the_port_vanishes_and_returns(tmp_path: Path) -> None:
    """A udev-style link (/dev/serial/by-id/...) to a pty: unplug (the pty closes and the link
    disappears), plug back (a new pty behind the same link): the source reconnects alone."""
    from edge.sources.base import ConnectionEvent
    from edge.sources.options import SerialOptions
    from edge.sources.serial import SerialSource
    from firmware_bridge.framing import encode_frame
    from firmware_bridge.protocol import Event, EventKind

    link_path = tmp_path / "ttyWEARABLE"
    first = PtyLink()
    link_path.symlink_to(first.open())
    src = SerialSource(SerialOptions(port=str(link_path), reopen_interval_s=0.05))
    second = PtyLink()
    async with src:
        it = aiter(src)
        item = await _next_item(it)
        assert item.message == ConnectionEvent(True, "", 1)  # type: ignore[attr-defined]
        ev = Event(EventKind.BATTERY, 0, 123, 80)
        await first.write(b"\x00garbage\x00" + encode_frame(ev)[:5])  # noise, a split frame
        await first.write(encode_frame(ev)[5:] + encode_frame(ev))
        got = [await _next_item(it), await _next_item(it)]
        assert [g.message for g in got] == [ev, ev]  # type: ignore[attr-defined]
        assert all(g.device == str(link_path) for g in got)  # type: ignore[attr-defined]

        first.close()  # unplugged
        link_path.unlink()
        lost = await _next_item(it)
        assert isinstance(lost.message, ConnectionEvent)  # type: ignore[attr-defined]
        assert lost.message.connected is False  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)  # several reopen attempts fail while the port is gone
        assert src.stats.snapshot()["open_failures"] >= 1

        link_path.symlink_to(second.open())  # plugged back in
        back = await _next_item(it)
        assert back.message == ConnectionEvent(True, "", 2)  # type: ignore[attr-defined]
        ev2 = Event(EventKind.CONTACT, 1, 456, 0)
        await second.write(encode_frame(ev2))
        assert (await _next_item(it)).message == ev2  # type: ignore[attr-defined]
        assert src.decoder.stats["frames"] == 3
    second.close()
    assert src.health()["open"] is False
