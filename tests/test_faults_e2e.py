"""Fault injection end to end: the simulator's faults through a real serial pty or the real
bleak client (emulated BlueZ) into ``edge-daemon`` run as a user runs it.

After each fault the daemon must still be running, its counters must explain every packet
the wearable numbered (``received + lost == sent``, and per reason), and no decision may
come from a window the offline path of ``edge.preprocess`` calls invalid: the samples the
daemon received (its ``--record-raw`` file, an independent witness written before any
counting) are windowed offline with the baseline the daemon stored, and the decided window
indices must be exactly the valid ones, and the invalid ones must carry the same reasons.

Ground truth of what the wearable sent comes from a fault-free twin of the simulated
wearable (same recording, same schedule): the faults only act on the link layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import sqlite3
import struct
import subprocess
import termios
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.preprocess import Calibration, windows_from_streams
from edge.sources.replay import read_raw_recording
from firmware_bridge.framing import encode_frame
from firmware_bridge.protocol import Samples
from firmware_bridge.sim import Faults, SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording
from firmware_bridge.sim.transports import PtyLink
from tests.fakes.daemon import db_rows, received_streams, start_cli, stop_cli, toy_bundle

pytestmark = pytest.mark.slow

RESIDENT = "room-3"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


# -- helpers ------------------------------------------------------------------------------------
class Lines:
    """A subprocess's stderr, collected on a thread so the pipe never fills."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._t.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def seen(self, *needles: str) -> bool:
        return any(all(n in line for n in needles) for line in list(self.lines))

    def count(self, needle: str) -> int:
        return sum(needle in line for line in list(self.lines))

    def text(self) -> str:
        self._t.join(10)
        return "".join(self.lines)


async def wait_until(pred: Any, limit_s: float, what: str) -> None:
    """Poll ``pred`` (a subprocess's log or files: nothing to await on) up to ``limit_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Sent:
    """What the wearable numbered (fault-free twin) and what the link did to it."""

    packets: dict[int, dict[int, int]] = field(default_factory=dict)  # sensor -> seq -> samples
    flipped: Counter[str] = field(default_factory=Counter)  # corrupted frames by message type
    undelivered: int = 0  # messages the transport could not hand over (link not up yet)


def sent_by(wearable: SimulatedWearable, recording: Any) -> Sent:
    """Every SAMPLES packet ``wearable`` numbers, from a fault-free twin of it."""
    with np.errstate(invalid="ignore"):  # the simulator's clipping statistic meets inf - inf
        twin = SimulatedWearable(recording, device_id=wearable.device_id, speed=wearable.speed,
                                 t0_device_us=wearable.t0_device_us)
    out = Sent()
    for em in twin.timeline():
        if isinstance(em.message, Samples):
            out.packets.setdefault(em.message.sensor_id, {})[em.message.seq] = em.message.count
    return out


def corrupt(frame: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(frame)
    i = int(rng.integers(0, len(b) - 1))  # never the closing delimiter
    b[i] ^= int(rng.integers(1, 256))
    return bytes(b)


async def play_serial(wearable: SimulatedWearable, port: Path, sent: Sent, err: Lines, *,
                      flip: float = 0.0, seed: int = 0) -> None:
    """Play ``wearable`` into a pty behind a udev-style link at ``port`` once the daemon has
    opened it: a disconnect fault unplugs it (the pty closes, the link vanishes), a
    reconnect plugs a new pty back in."""
    rng = np.random.default_rng(seed)
    link = PtyLink()
    port.symlink_to(link.open())
    try:
        await wait_until(lambda: err.seen("serial port", "open"), 60, "the port to open")
        async for em in wearable.emissions():
            if em.event == "disconnect":
                link.close()
                port.unlink()
                continue
            if em.event == "reconnect":
                link = PtyLink()
                port.symlink_to(link.open())
                continue
            frame = encode_frame(em.message)
            if flip and rng.random() < flip:
                frame = corrupt(frame, rng)
                sent.flipped[type(em.message).__name__] += 1
            if not await link.write(frame):
                sent.undelivered += 1
        # the daemon reads what is still in the port before it is closed
        await wait_until(lambda: unread(link) == 0, 10, "the daemon to read the port")
    finally:
        link.close()


def unread(link: PtyLink) -> int:
    """Bytes written to the pty that its reader has not read yet."""
    buf = fcntl.ioctl(link.slave_fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


def start_daemon(bundle: Path, tmp: Path, device_args: list[str], *, config: str = "",
                 extra: list[str] | None = None, env: dict[str, str] | None = None) -> Any:
    cfg = tmp / "edge-daemon.toml"
    cfg.write_text(config)
    return start_cli(["--config", str(cfg), *device_args, "--bundle", str(bundle),
                      "--backend", "onnx", "--precision", "fp32", "--db", str(tmp / "edge.db"),
                      "--state-dir", str(tmp / "state"), "--record-raw", str(tmp / "raw.bin"),
                      "--resident", RESIDENT, "--status", "off", "--health-interval", "1",
                      "--summary-json", str(tmp / "summary.json"), *(extra or [])], env=env)


async def finish(proc: Any, err: Lines, tmp: Path) -> dict[str, Any]:
    """The daemon must still be running; SIGTERM it; exit 0; its summary."""
    assert proc.poll() is None, err.text()  # survived every fault
    await asyncio.to_thread(stop_cli, proc)
    log = err.text()
    assert proc.returncode == 0, log
    assert "Traceback" not in log, log
    summary: dict[str, Any] = json.loads((tmp / "summary.json").read_text())
    summary["_log"] = log
    return summary


def received_packets(raw: Path) -> tuple[dict[int, set[int]], int]:
    """Per sensor the distinct sequence numbers the daemon received; and all SAMPLES items."""
    seqs: dict[int, set[int]] = {}
    items = 0
    for _, _, msg in read_raw_recording(raw):
        if isinstance(msg, Samples):
            seqs.setdefault(msg.sensor_id, set()).add(msg.seq)
            items += 1
    return seqs, items


def reconcile(summary: dict[str, Any], sent: Sent, raw: Path) -> dict[str, int]:
    """Counters explain every packet and sample the wearable sent; returns the ledger."""
    (dev,) = summary["per_device"].values()
    got, items = received_packets(raw)
    n_sent = sum(len(p) for p in sent.packets.values())
    n_got = sum(len(s) for s in got.values())
    lost_seqs = {sid: set(p) - got.get(sid, set()) for sid, p in sent.packets.items()}
    # a loss after a sensor's last received packet has no later packet to reveal it: no
    # receiver can count it (the stream simply ends early); it is reported separately
    tail = sum(1 for sid, s in lost_seqs.items() for q in s if q > max(got.get(sid, {-1})))
    samples_sent = sum(sum(p.values()) for p in sent.packets.values())
    samples_got = sum(sent.packets[sid][q] for sid, s in got.items() for q in s)
    samples_lost = sum(sent.packets[sid][q] for sid, s in lost_seqs.items() for q in s)
    assert dev.get("samples_before_hello", 0) == 0
    # packets: every one the wearable numbered was received once or counted lost
    assert dev["seq_received"] == n_got, (dev, n_got)
    assert dev["seq_received"] + dev["seq_lost"] + tail == n_sent, (dev, n_sent, tail)
    assert tail <= 2 * len(sent.packets)  # the last packet or two of a sensor
    assert dev.get("duplicate_packets", 0) == items - n_got
    # samples: those received are counted (used + sensors the model does not use) ...
    assert dev.get("samples", 0) + dev.get("samples_unused", 0) == samples_got
    # ... and the rest sat in packets counted lost
    assert samples_got + samples_lost == samples_sent
    return {"packets_sent": n_sent, "packets_received": n_got, "packets_lost": dev["seq_lost"],
            "packets_lost_at_the_end": tail,
            "duplicates_discarded": dev.get("duplicate_packets", 0),
            "samples_sent": samples_sent, "samples_received": samples_got,
            "samples_in_lost_packets": samples_lost,
            "late_samples_discarded": dev.get("dropped_out_of_order", 0)}


def check_offline(summary: dict[str, Any], bundle: Path, tmp: Path) -> dict[str, int]:
    """No decision from an invalid window: the daemon decided exactly the windows the offline
    path finds valid in the same received samples, and counted the same invalid reasons."""
    contract = load_bundle(bundle).contract
    rows = db_rows(tmp / "edge.db")
    assert rows, summary["_log"]
    stored = json.loads((tmp / "state" / "calibration" / f"{RESIDENT}.json").read_text())
    cal = Calibration.from_dict(stored["calibration"])
    ((_, streams),) = received_streams(tmp / "raw.bin").values()
    origin = rows[0]["window_start"] - rows[0]["window_index"] * contract.hop_s
    windows = windows_from_streams(streams, contract, origin=origin, calibration=cal)
    valid = [w.index for w in windows if w.valid]
    decided = [r["window_index"] for r in rows]
    assert decided == valid
    assert all(np.isfinite(list(r["raw"].values())).all() for r in rows)
    offline = Counter(f"invalid_{w.reason.value}" for w in windows if not w.valid)
    daemon = {k: v for k, v in summary["windows"].items() if k.startswith("invalid_")}
    assert daemon == dict(offline)
    assert summary["decisions"] == summary["windows"]["valid"] == len(rows)
    return {"valid": len(valid), **offline}


# -- serial ------------------------------------------------------------------------------------
async def test_serial_link_faults_disconnect_storm_are_counted_never_decided_on(
        bundle: Path, tmp_path: Path) -> None:
    """Loss, duplicates, reordering, corrupted bytes, the port vanishing mid-window and a
    reconnect storm (three unplugs within 6 s), clock drift, contact loss, battery low."""
    recording = synthetic_recording(240.0, seed=5)
    faults = Faults(seed=3, drop=0.02, duplicate=0.02, reorder=0.02,
                    disconnect_at_s=(101.0, 130.0, 133.0, 136.0), disconnect_s=1.5,
                    clock_drift_ppm=80.0, contact_lost_at_s=160.0, contact_lost_s=20.0,
                    battery_low_at_s=90.0)
    wearable = SimulatedWearable(recording, device_id="wrist-1", speed=25.0, faults=faults)
    sent = sent_by(wearable, recording)
    port = tmp_path / "ttyWEARABLE"
    proc = start_daemon(bundle, tmp_path, ["--device", "serial", "--port", str(port)],
                        config="[serial]\nreopen_interval_s = 0.05\n")
    err = Lines(proc.stderr)
    try:
        await play_serial(wearable, port, sent, err, flip=0.01, seed=9)
        await asyncio.sleep(0.5)  # the last frames through the pipeline
        summary = await finish(proc, err, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    ledger = reconcile(summary, sent, tmp_path / "raw.bin")
    sim = wearable.stats
    src = summary["source"]
    # per reason: the fault injector's drops, the outages, the corrupted frames (rejected by
    # the CRC or the framing) and what the pty lost while nobody had the port open
    rejected = sum(v for k, v in src.items()
                   if k.startswith("frames_") and k not in ("frames_frames", "frames_bytes"))
    assert 0 < rejected <= sum(sent.flipped.values())
    assert ledger["packets_lost"] >= sim["dropped_samples"] + sim["lost_disconnected_samples"]
    assert src["opens"] == 5 and src["closes"] == 5  # four unplugs (and the stop)
    assert summary["events"]["disconnected"] == 5 and summary["events"]["reconnected"] == 4
    for kind in ("battery_low", "no_contact", "contact_restored", "data_gap",
                 "invalid_windows", "valid_windows"):
        assert summary["events"].get(kind, 0) >= 1, kind
    (dev,) = summary["per_device"].values()
    assert dev.get("sequence_restarts", 0) == 0  # the numbering continued over every outage
    windows = check_offline(summary, bundle, tmp_path)
    assert windows["valid"] > 20 and len(windows) > 2
    print("serial link faults:", ledger, "rejected frames", rejected, "windows", windows)


def split_lives(raw: Path) -> list[dict[str, Any]]:
    """The received streams per device life: a device clock that goes back by more than the
    daemon's regression threshold is a reboot (a new life with its own numbering)."""
    from edge.ingest import CLOCK_REGRESSION_S

    lives: list[list[Any]] = [[]]
    max_t = -np.inf
    for entry in read_raw_recording(raw):
        msg = entry[2]
        if isinstance(msg, Samples) and msg.count:
            t0 = msg.t_device_us * 1e-6
            if t0 < max_t - CLOCK_REGRESSION_S:
                lives.append([])
                max_t = -np.inf
            max_t = max(max_t, t0)
        lives[-1].append(entry)
    return lives


async def test_serial_clock_drift_jump_and_reboot(bundle: Path, tmp_path: Path) -> None:
    """A device clock that drifts (150 ppm) and jumps 25 s ahead, then the wearable reboots
    on the same port (its clock and its packet numbering start again): the jump gets no
    decision across it, the reboot starts a new session with the stored baseline, and no
    packet of the rebooted device is mistaken for a duplicate of the old life."""
    rec1 = synthetic_recording(150.0, seed=6)
    rec2 = synthetic_recording(90.0, seed=7)
    first = SimulatedWearable(rec1, device_id="wrist-2", speed=25.0, faults=Faults(
        clock_drift_ppm=150.0, clock_jump_at_s=100.0, clock_jump_us=25_000_000))
    rebooted = SimulatedWearable(rec2, device_id="wrist-2", speed=25.0, t0_device_us=2_000_000)
    lives = [sent_by(first, rec1), sent_by(rebooted, rec2)]
    port = tmp_path / "ttyWEARABLE"
    link = PtyLink()
    port.symlink_to(link.open())
    proc = start_daemon(bundle, tmp_path, ["--device", "serial", "--port", str(port)])
    err = Lines(proc.stderr)
    try:
        await wait_until(lambda: err.seen("serial port", "open"), 60, "the port to open")
        for wearable in (first, rebooted):
            async for em in wearable.emissions():
                assert em.message is not None
                assert await link.write(encode_frame(em.message))
        await wait_until(lambda: unread(link) == 0, 10, "the daemon to read the port")
        await asyncio.sleep(0.5)
        summary = await finish(proc, err, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
        link.close()
    (dev,) = summary["per_device"].values()
    assert dev["clock_regressions"] == 1 and dev["sessions"] == 2
    assert dev["clock_jumps"] >= 1  # the TIME_SYNC mapper saw the jump
    assert dev.get("duplicate_packets", 0) == 0  # nothing of the new life thrown away
    n_sent = sum(len(p) for life in lives for p in life.packets.values())
    assert dev["seq_received"] == n_sent and dev["seq_lost"] == 0
    assert summary["events"]["calibrated"] == 1  # the second session reused the baseline

    # offline, per life: the same windows valid, the same ones decided
    contract = load_bundle(bundle).contract
    rows = db_rows(tmp_path / "edge.db")
    restart = next(i for i in range(1, len(rows))
                   if rows[i]["window_start"] < rows[i - 1]["window_start"])
    cal = Calibration.from_dict(json.loads(
        (tmp_path / "state" / "calibration" / f"{RESIDENT}.json").read_text())["calibration"])
    raw_lives = split_lives(tmp_path / "raw.bin")
    assert len(raw_lives) == 2
    invalid: Counter[str] = Counter()
    for life_rows, entries in ((rows[:restart], raw_lives[0]), (rows[restart:], raw_lives[1])):
        part = tmp_path / "life.bin"
        _write_raw(part, entries)
        ((_, streams),) = received_streams(part).values()
        origin = life_rows[0]["window_start"] - life_rows[0]["window_index"] * contract.hop_s
        windows = windows_from_streams(streams, contract, origin=origin, calibration=cal)
        assert [r["window_index"] for r in life_rows] == [w.index for w in windows if w.valid]
        invalid.update(f"invalid_{w.reason.value}" for w in windows if not w.valid)
    assert invalid["invalid_gap"] >= 1  # the windows across the jump
    assert {k: v for k, v in summary["windows"].items() if k.startswith("invalid_")} == invalid
    print("clock faults:", {k: dev[k] for k in ("clock_regressions", "sessions", "clock_jumps",
                                                 "drift_ppm")}, summary["windows"])


def _write_raw(path: Path, entries: list[Any]) -> None:
    """A raw recording holding ``entries`` (as read back by read_raw_recording)."""
    from edge.sources.base import SourceItem
    from edge.sources.replay import RawRecorder

    rec = RawRecorder(path)
    for received, device, msg in entries:
        rec.write(SourceItem(device, received or 0.0, msg))
    rec.close()


def bad_sensor_recording() -> Any:
    """Three minutes of wrist data whose sensors misbehave after the 60 s enrollment:
    BVP NaN (86-92 s) and +inf (100-101 s) on a float32 sensor, EDA flat-lined (110-126 s,
    open electrodes reading one value), ACC x driven into the IMU's ±8 g rail (132-148 s)."""
    rec = synthetic_recording(180.0, seed=8)
    bvp = rec.signals["bvp"].values.astype(np.float64)
    t = np.arange(len(bvp)) / rec.signals["bvp"].rate_hz
    bvp[(t >= 86) & (t < 92)] = np.nan
    bvp[(t >= 100) & (t < 101)] = np.inf
    eda = rec.signals["eda"].values.astype(np.float64)
    t = np.arange(len(eda)) / rec.signals["eda"].rate_hz
    eda[(t >= 110) & (t < 126)] = 2.5
    acc = rec.signals["acc"].values.astype(np.float64)
    t = np.arange(len(acc)) / rec.signals["acc"].rate_hz
    swing = (t >= 132) & (t < 148)
    acc[swing, 0] = 20.0 * np.sin(2 * np.pi * 0.25 * t[swing])  # clipped at the wire's ±8 g
    from dataclasses import replace

    signals = {**rec.signals,
               "bvp": replace(rec.signals["bvp"], values=bvp),
               "eda": replace(rec.signals["eda"], values=eda),
               "acc": replace(rec.signals["acc"], values=acc)}
    return replace(rec, signals=signals)


async def test_serial_nan_inf_flat_and_saturated_sensors_get_no_decision(
        bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from firmware_bridge.protocol import SampleFormat
    from firmware_bridge.sim import wearable as sim_wearable

    # a firmware that reports BVP as float32 can send NaN and inf (int16 sensors cannot)
    monkeypatch.setitem(sim_wearable.MODALITY_SCALES, "bvp", (SampleFormat.FLOAT32, 1.0, 0.0))
    recording = bad_sensor_recording()
    with np.errstate(invalid="ignore"):  # the simulator's own clipping statistic meets inf - inf
        wearable = SimulatedWearable(recording, device_id="wrist-3", speed=25.0)
    assert wearable.hello.sensor_map()[1].sample_format is SampleFormat.FLOAT32
    sent = sent_by(wearable, recording)
    port = tmp_path / "ttyWEARABLE"
    proc = start_daemon(bundle, tmp_path, ["--device", "serial", "--port", str(port)])
    err = Lines(proc.stderr)
    try:
        await play_serial(wearable, port, sent, err)
        await asyncio.sleep(0.5)
        summary = await finish(proc, err, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    ledger = reconcile(summary, sent, tmp_path / "raw.bin")
    assert ledger["packets_lost"] == 0
    windows = check_offline(summary, bundle, tmp_path)
    # each fault made its own windows invalid, under its own reason
    assert windows.get("invalid_non_finite", 0) + windows.get("invalid_gap", 0) >= 3
    assert windows.get("invalid_flat", 0) >= 5
    assert windows.get("invalid_saturated", 0) >= 5
    # the daemon said so while it happened
    events = db_rows(tmp_path / "edge.db", "events")
    reasons = {e["detail"].get("reason") for e in events if e["kind"] == "invalid_windows"}
    assert {"flat", "saturated"} <= reasons
    print("bad sensor values:", ledger, "windows", windows)


# -- the database's disk -------------------------------------------------------------------------
def _sh(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A real 2 MiB filesystem (tmpfs) for the database: it can fill up. Needs root."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = _sh("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt))
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (run as root): {r.stderr}")
    try:
        yield mnt
    finally:
        _sh("chattr", "-R", "-i", str(mnt))
        _sh("umount", "-l", str(mnt))


def jsonl_records(path: Path) -> list[dict[str, Any]]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # being written
                continue
    return out


def _decisions(path: Path) -> list[dict[str, Any]]:
    return [r for r in jsonl_records(path) if r["type"] == "decision"]


def _sink_events(path: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in jsonl_records(path) if r["type"] == "event" and r["kind"] == kind]


def _committed(db: Path) -> int:
    try:
        return len(db_rows(db))
    except sqlite3.Error:
        return -1


async def test_sqlite_disk_full_then_read_only_daemon_keeps_deciding_and_recovers(
        bundle: Path, tmp_path: Path, small_disk: Path) -> None:
    """The database's filesystem fills up (a real tmpfs, filled by another file), then
    becomes unwritable (``chattr +i`` on the database, its WAL and its directory: the kernel
    refuses writes even to root). Each time the daemon keeps deciding (the JSON lines file
    keeps growing), reports the fault (``sink_fault``), and when the space or the write
    permission returns it recovers (``sink_recovered``) and writes everything it held."""
    db = small_disk / "edge.db"
    jsonl = tmp_path / "decisions.jsonl"
    proc = start_cli(["--device", "sim", "--bundle", str(bundle), "--backend", "onnx",
                      "--precision", "fp32", "--speed", "40", "--db", str(db),
                      "--state-dir", str(tmp_path / "state"), "--jsonl", str(jsonl),
                      "--status", "off", "--summary-json", str(tmp_path / "summary.json"),
                      "--config", str(_config(tmp_path))])
    err = Lines(proc.stderr)
    filler = small_disk / "filler"
    timeline: list[dict[str, Any]] = []
    try:
        await wait_until(lambda: _committed(db) >= 20, 120, "decisions in the database")
        # 1. the disk fills up
        with filler.open("wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\xa5" * 65536)
                f.flush()
        await wait_until(lambda: _sink_events(jsonl, "sink_fault"), 60, "the fault report")
        fault = _sink_events(jsonl, "sink_fault")[0]
        assert fault["detail"]["sink"] == "sqlite" and "full" in fault["detail"]["error"]
        n0, rows0 = len(_decisions(jsonl)), _committed(db)
        await wait_until(lambda: len(_decisions(jsonl)) >= n0 + 25, 60, "decisions while full")
        assert _committed(db) == rows0  # nothing reached the full disk meanwhile
        timeline.append({"fault": "disk full", "decided_meanwhile": len(_decisions(jsonl)) - n0})
        filler.unlink()  # space returns
        await wait_until(lambda: _sink_events(jsonl, "sink_recovered"), 60, "the recovery")
        await wait_until(lambda: _committed(db) >= n0 + 25, 60, "the backlog written")

        # 2. the database becomes unwritable
        assert _sh("chattr", "+i", str(db), str(db) + "-wal", str(small_disk)).returncode == 0
        await wait_until(lambda: len(_sink_events(jsonl, "sink_fault")) >= 2, 60,
                         "the second fault report")
        fault2 = _sink_events(jsonl, "sink_fault")[1]
        n1, rows1 = len(_decisions(jsonl)), _committed(db)
        await wait_until(lambda: len(_decisions(jsonl)) >= n1 + 25, 60,
                         "decisions while read-only")
        assert _committed(db) == rows1
        timeline.append({"fault": "read-only", "error": fault2["detail"]["error"],
                         "decided_meanwhile": len(_decisions(jsonl)) - n1})
        assert _sh("chattr", "-i", str(db), str(db) + "-wal", str(small_disk)).returncode == 0
        await wait_until(lambda: len(_sink_events(jsonl, "sink_recovered")) >= 2, 60,
                         "the second recovery")
        summary = await finish(proc, err, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    # nothing computed was lost: the database holds exactly the decisions emitted
    rows = db_rows(db)
    emitted = _decisions(jsonl)
    assert [(r["window_index"], r["state"]) for r in rows] == [
        (d["window_index"], d["state"]) for d in emitted]
    assert len(rows) == summary["decisions"]
    sink = summary["sinks"]["sqlite"]
    assert sink["write_failures"] >= 2 and sink.get("lost_at_close", 0) == 0
    assert sink.get("dropped_buffer_full", 0) == 0
    assert summary["events"]["sink_fault"] == 2 and summary["events"]["sink_recovered"] == 2
    assert "sink sqlite failed" in summary["_log"] and "sink sqlite recovered" in summary["_log"]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    print("database faults:", timeline, "decisions", len(rows), "sqlite sink", sink)


def _config(tmp: Path) -> Path:
    cfg = tmp / "disk.toml"
    cfg.write_text("[sinks]\ncommit_interval_s = 0.2\nretry_max_s = 0.5\n")
    return cfg
