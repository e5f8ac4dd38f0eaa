"""Fault injection end to end: the simulator's faults through a real serial pty or the real
bleak client (emulated BlueZ) into ``edge-daemon`` run as a user runs it (a subprocess).

Link and sensor faults (serial: loss, duplicates, reordering, corrupted bytes, the port
vanishing mid-window and a reconnect storm, clock drift, a clock jump and a reboot, NaN/inf,
flat-lined and saturated sensors, contact loss, battery low; BLE: the same link faults and
three link drops within 2.5 s of data). After each the daemon must still be running, and:

- its counters explain every packet the wearable numbered: ``received + lost == sent``
  (packets lost before the first packet to arrive or after the last are reported apart: no
  receiver can see them), duplicates discarded are counted, and the samples received plus
  those in lost packets are every sample sent. Ground truth of what was sent comes from a
  fault-free twin of the simulated wearable (the faults act on the link layer only); what
  arrived, from the daemon's ``--record-raw`` file, written before any counting;
- no decision comes from an invalid window: the same received samples, windowed offline
  by ``core.signal`` with the baseline the daemon stored, give exactly the decided
  windows as the valid ones, and the daemon's invalid-window counts by reason equal the
  offline ones.

Also: an engine slower than a live wearable (bounded queue, counted drops, flat memory),
and the database's disk full (a real tmpfs) or unwritable (``chattr +i``): the daemon keeps
deciding, reports the fault, and recovers when space or permission returns.
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.signal import Calibration, windows_from_streams
from edge.bundle import load_bundle
from edge.sources.replay import read_raw_recording
from firmware_bridge.framing import encode_frame
from firmware_bridge.protocol import Samples
from firmware_bridge.sim import Faults, SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording
from firmware_bridge.sim.transports import PtyLink
from tests.fakes.daemon import db_rows, received_streams, start_cli, toy_bundle
from tests.fakes.records import json_lines
from tests.fakes.stderr import Lines, stop_keeping_stderr, wait_until

pytestmark = pytest.mark.slow

RESIDENT = "room-3"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


# -- helpers ------------------------------------------------------------------------------------
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
    link = plug(port)
    try:
        await wait_until(lambda: err.seen("serial port", "open"), 60, "the port to open")
        async for em in wearable.emissions():
            if em.event == "disconnect":
                unplug(port, link)
                continue
            if em.event == "reconnect":
                link = plug(port)
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


def plug(port: Path) -> PtyLink:
    """A new pty appears behind the udev-style link ``port`` (the adapter is plugged in)."""
    link = PtyLink()
    port.symlink_to(link.open())
    return link


def unplug(port: Path, link: PtyLink) -> None:
    """The pty closes and the link vanishes (the adapter is pulled out)."""
    link.close()
    port.unlink()


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


async def finish(proc: Any, err: Lines, tmp: Path, *, code: int = 0) -> dict[str, Any]:
    """The daemon must still be running; SIGTERM it; exit ``code`` (0: nothing lost); its
    summary."""
    assert proc.poll() is None, err.text()  # survived every fault
    # not stop_cli: its communicate() would read stderr too, racing ``err`` for the last lines
    await asyncio.to_thread(stop_keeping_stderr, proc)
    log = err.text()
    assert proc.returncode == code, log
    assert "Traceback" not in log, log
    summary: dict[str, Any] = json.loads((tmp / "summary.json").read_text())
    summary["_log"] = log
    return summary


def kill(proc: Any) -> None:
    """A daemon a failed test leaves behind: kill it and reap it (pipes closed)."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(ValueError, OSError):
        proc.communicate(timeout=30)


def received_packets(raw: Path) -> tuple[dict[int, set[int]], dict[int, int], int]:
    """Per sensor the distinct sequence numbers the daemon received and the first to arrive;
    and the number of SAMPLES items (duplicates included)."""
    seqs: dict[int, set[int]] = {}
    first: dict[int, int] = {}
    items = 0
    for _, _, msg in read_raw_recording(raw):
        if isinstance(msg, Samples):
            seqs.setdefault(msg.sensor_id, set()).add(msg.seq)
            first.setdefault(msg.sensor_id, msg.seq)
            items += 1
    return seqs, first, items


def reconcile(summary: dict[str, Any], sent: Sent, raw: Path) -> dict[str, int]:
    """Counters explain every packet and sample the wearable sent; returns the ledger."""
    (dev,) = summary["per_device"].values()
    got, first, items = received_packets(raw)
    n_sent = sum(len(p) for p in sent.packets.values())
    n_got = sum(len(s) for s in got.values())
    lost_seqs = {sid: set(p) - got.get(sid, set()) for sid, p in sent.packets.items()}
    # a loss before the first packet to arrive (the receiver's stream starts there; a late
    # packet from before it does not make it start earlier) or after the last has no packet
    # on the other side to reveal it: no receiver can count it; reported separately
    edges = sum(1 for sid, s in lost_seqs.items() for q in s
                if q < first.get(sid, -1) or q > max(got.get(sid, {-1})))
    samples_sent = sum(sum(p.values()) for p in sent.packets.values())
    samples_got = sum(sent.packets[sid][q] for sid, s in got.items() for q in s)
    samples_lost = sum(sent.packets[sid][q] for sid, s in lost_seqs.items() for q in s)
    assert dev.get("samples_before_hello", 0) == 0
    # packets: every one the wearable numbered was received once or counted lost
    assert dev["seq_received"] == n_got, (dev, n_got)
    assert dev["seq_received"] + dev["seq_lost"] + edges == n_sent, (dev, n_sent, edges)
    assert edges <= 2 * len(sent.packets)  # the first or last packet or two of a sensor
    assert dev.get("duplicate_packets", 0) == items - n_got
    # samples: those received are counted (used + sensors the model does not use) ...
    assert dev.get("samples", 0) + dev.get("samples_unused", 0) == samples_got
    # ... and the rest sat in packets counted lost
    assert samples_got + samples_lost == samples_sent
    return {"packets_sent": n_sent, "packets_received": n_got, "packets_lost": dev["seq_lost"],
            "packets_lost_before_first_or_after_last": edges,
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
    assert all(np.isfinite(list(r["p_instant"].values())).all() for r in rows)
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
        kill(proc)
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
    link = plug(port)
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
        kill(proc)
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
        kill(proc)
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
    # a line still being written is the only one that may not parse
    return json_lines(path.read_text()) if path.exists() else []


def _decisions(path: Path) -> list[dict[str, Any]]:
    return [r for r in jsonl_records(path) if r["type"] == "decision"]


def _sink_events(path: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in jsonl_records(path) if r["type"] == "event" and r["kind"] == kind]


def _committed(db: Path) -> int:
    try:
        return len(db_rows(db))
    except sqlite3.Error:
        return -1


def start_db_daemon(bundle: Path, tmp: Path, db: Path) -> Any:
    cfg = tmp / "disk.toml"
    cfg.write_text("[sinks]\ncommit_interval_s = 0.2\nretry_max_s = 0.5\n")
    return start_cli(["--config", str(cfg), "--device", "sim", "--bundle", str(bundle),
                      "--backend", "onnx", "--precision", "fp32", "--speed", "40",
                      "--db", str(db), "--state-dir", str(tmp / "state"),
                      "--jsonl", str(tmp / "decisions.jsonl"), "--status", "off",
                      "--summary-json", str(tmp / "summary.json")])


async def db_fault_episode(db: Path, jsonl: Path, nth: int, cause: Any, cure: Any
                           ) -> dict[str, Any]:
    """Cause a database fault; the daemon must report it and keep deciding while nothing
    reaches the database; cure it; the daemon must report the recovery and catch up."""
    await wait_until(lambda: _committed(db) >= 20, 120, "decisions in the database")
    cause()
    await wait_until(lambda: len(_sink_events(jsonl, "sink_fault")) >= nth, 60,
                     "the fault report")
    fault = _sink_events(jsonl, "sink_fault")[nth - 1]
    assert fault["detail"]["sink"] == "sqlite"
    n0, rows0 = len(_decisions(jsonl)), _committed(db)
    await wait_until(lambda: len(_decisions(jsonl)) >= n0 + 25, 60, "decisions meanwhile")
    assert _committed(db) == rows0  # nothing reached the database meanwhile
    decided = len(_decisions(jsonl)) - n0
    cure()
    await wait_until(lambda: len(_sink_events(jsonl, "sink_recovered")) >= nth, 60,
                     "the recovery report")
    await wait_until(lambda: _committed(db) >= n0 + 25, 60, "the backlog written")
    return {"error": fault["detail"]["error"], "decided_while_failing": decided}


def check_db_after_faults(summary: dict[str, Any], db: Path, jsonl: Path, faults: int
                          ) -> dict[str, Any]:
    """Nothing computed was lost: the database holds exactly the decisions emitted."""
    rows = db_rows(db)
    emitted = _decisions(jsonl)
    assert [(r["window_index"], r["state"]) for r in rows] == [
        (d["window_index"], d["state"]) for d in emitted]
    assert len(rows) == summary["decisions"]
    sink = summary["sinks"]["sqlite"]
    assert sink["write_failures"] >= faults and sink.get("lost_at_close", 0) == 0
    assert sink.get("dropped_buffer_full", 0) == 0
    assert summary["events"]["sink_fault"] == faults
    assert summary["events"]["sink_recovered"] == faults
    assert "sink sqlite failed" in summary["_log"] and "sink sqlite recovered" in summary["_log"]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    return {"decisions": len(rows), **sink}


async def test_sqlite_disk_full_daemon_keeps_deciding_reports_and_recovers(
        bundle: Path, tmp_path: Path, small_disk: Path) -> None:
    """The database's filesystem (a real 2 MiB tmpfs) fills up, another file taking the
    space; later that file goes. This is the kernel's ENOSPC as SQLite meets it, not the
    daemon's own cap (``sinks.max_db_mb``, tested in tests/unit/edge/sinks/test_sqlite.py)."""
    db = small_disk / "edge.db"
    jsonl = tmp_path / "decisions.jsonl"
    filler = small_disk / "filler"

    def fill() -> None:
        with contextlib.suppress(OSError), filler.open("wb", buffering=0) as f:
            while True:
                f.write(b"\xa5" * 65536)

    proc = start_db_daemon(bundle, tmp_path, db)
    err = Lines(proc.stderr)
    try:
        episode = await db_fault_episode(db, jsonl, 1, fill, filler.unlink)
        summary = await finish(proc, err, tmp_path)
    finally:
        kill(proc)
    assert "full" in episode["error"]
    sink = check_db_after_faults(summary, db, jsonl, 1)
    print("disk full:", episode, sink)


async def test_sqlite_read_only_daemon_keeps_deciding_reports_and_recovers(
        bundle: Path, tmp_path: Path) -> None:
    """The database becomes unwritable: ``chattr +i`` on the file, its WAL and its directory
    (the immutable attribute binds root too; the tests run as root, for whom permission bits
    are no obstacle, and a busy filesystem cannot be remounted read-only). Needs a
    filesystem that enforces it on open files (ext4, xfs, btrfs; not tmpfs)."""
    d = tmp_path / "db"
    d.mkdir()
    db = d / "edge.db"
    jsonl = tmp_path / "decisions.jsonl"
    files = [str(db), str(db) + "-wal", str(d)]

    def freeze() -> None:
        r = _sh("chattr", "+i", *files)
        assert r.returncode == 0, f"chattr +i failed (filesystem?): {r.stderr}"

    def thaw() -> None:
        assert _sh("chattr", "-i", *files).returncode == 0

    proc = start_db_daemon(bundle, tmp_path, db)
    err = Lines(proc.stderr)
    try:
        episode = await db_fault_episode(db, jsonl, 1, freeze, thaw)
        summary = await finish(proc, err, tmp_path)
    finally:
        _sh("chattr", "-i", *files)
        kill(proc)
    sink = check_db_after_faults(summary, db, jsonl, 1)
    print("read-only:", episode, sink)


# -- a consumer slower than the producer ---------------------------------------------------------
SLOW_ENGINE = """
import time
import edge.inference as inference
_infer = inference.InferenceWorker._infer
def slow(self, batch):
    time.sleep(0.25 * len(batch))  # a hub CPU 100x slower than this one
    return _infer(self, batch)
inference.InferenceWorker._infer = slow
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_engine_slower_than_a_live_wearable_drops_counted_memory_bounded(
        bundle: Path, tmp_path: Path) -> None:
    """A live wearable (serial) at 20x while the engine manages ~4 windows/s: the inference
    queue (16 windows) overflows, the oldest windows are dropped and counted, every window
    cut is decided or counted, and the daemon's memory stays flat."""
    recording = synthetic_recording(300.0, seed=12)
    wearable = SimulatedWearable(recording, device_id="wrist-4", speed=20.0)
    sent = sent_by(wearable, recording)
    port = tmp_path / "ttyWEARABLE"
    cfg = tmp_path / "slow.toml"
    cfg.write_text("[inference]\nqueue_size = 16\nmax_batch = 1\ndrain_timeout_s = 30.0\n")
    proc = start_cli(["--config", str(cfg), "--device", "serial", "--port", str(port),
                      "--bundle", str(bundle), "--backend", "onnx", "--precision", "fp32",
                      "--db", str(tmp_path / "edge.db"), "--state-dir", str(tmp_path / "state"),
                      "--record-raw", str(tmp_path / "raw.bin"), "--resident", RESIDENT,
                      "--status", "off", "--health-interval", "1",
                      "--summary-json", str(tmp_path / "summary.json")], prelude=SLOW_ENGINE)
    err = Lines(proc.stderr)
    rss: list[int] = []

    async def sample_rss() -> None:
        while proc.poll() is None:
            with contextlib.suppress(OSError):
                rss.append(rss_kb(proc.pid))
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample_rss())
    try:
        await play_serial(wearable, port, sent, err)
        await asyncio.sleep(0.5)
        # windows dropped for want of an engine are lost decisions: the exit says so
        summary = await finish(proc, err, tmp_path, code=1)
    finally:
        kill(proc)
        sampler.cancel()
    (lost_line,) = [ln for ln in summary["_log"].splitlines() if "records were lost (" in ln]
    assert "inference_queue_full" in lost_line, lost_line
    reconcile(summary, sent, tmp_path / "raw.bin")
    drops = summary["drops"]
    assert drops["inference_queue_full"] > 20
    # every valid window was decided or dropped for want of an engine, and counted
    assert summary["windows"]["valid"] == (summary["decisions"] + drops["inference_queue_full"]
                                           + drops["windows_lost_at_shutdown"])
    assert summary["decisions"] == len(db_rows(tmp_path / "edge.db"))
    assert drops["source_queue_full"] == 0  # the loop itself kept up
    # memory: after the first third of the run, flat (the queues are bounded). A leak is
    # growth that stays: the median of the last third against the median of the middle one
    # (one sample's peak is an allocator's transient, not a leak)
    warm = rss[len(rss) // 3:]
    middle, last = warm[: len(warm) // 2], warm[len(warm) // 2:]
    growth_kb = float(np.median(last) - np.median(middle))
    # half the window apart, so a steady leak of 5 % over it shows as 2.5 %
    assert growth_kb < 0.025 * warm[0], (warm[0], np.median(middle), np.median(last), max(warm))
    print("slow consumer:", {"windows_valid": summary["windows"]["valid"],
                             "decided": summary["decisions"],
                             "dropped_inference_queue_full": drops["inference_queue_full"],
                             "rss_after_warmup_kb": warm[0], "rss_growth_kb": growth_kb,
                             "rss_samples": len(rss)})


# -- BLE: the real bleak client against the emulated BlueZ --------------------------------------
WRIST = "D0:0D:00:00:00:07"


async def test_ble_link_faults_disconnect_storm_through_bleak(
        bundle: Path, tmp_path: Path, bluez: Any) -> None:
    """The daemon (``--device ble``, bleak + bleak-retry-connector in its own process) on the
    private system bus, connected to the emulated wearable, which plays the simulator with
    loss, duplicates, reordering, corrupted bytes, contact loss, and three link drops within
    2.5 s of data (each a BlueZ ``Connected=False`` and GATT objects removed; the daemon
    reconnects by itself). Meanwhile it holds no network socket, only unix ones (D-Bus)."""
    from edge.sources.ble import BleOptions
    from firmware_bridge import gatt
    from tests.fakes.bluez import multi_sensor_wearable
    from tests.fakes.procnet import socket_families

    wrist = bluez.add_peripheral(multi_sensor_wearable(WRIST, att_mtu=247))
    recording = synthetic_recording(170.0, seed=13)
    faults = Faults(seed=5, drop=0.02, duplicate=0.02, reorder=0.02,
                    disconnect_at_s=(100.0, 101.0, 102.5), disconnect_s=0.5,
                    contact_lost_at_s=125.0, contact_lost_s=15.0, battery_low_at_s=80.0)
    wearable = SimulatedWearable(recording, device_id="WE-0007", speed=10.0, faults=faults)
    sent = sent_by(wearable, recording)
    proc = start_daemon(bundle, tmp_path, ["--device", "ble", "--ble-device", WRIST],
                        config="[ble]\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\n"
                               "scan_timeout_s = 2.0\n")
    err = Lines(proc.stderr)
    rng = np.random.default_rng(21)
    sockets = []
    drops = 0
    try:
        await wrist.wait_notifying(gatt.WEARABLE_PACKET_CHAR_UUID, 60)
        async for em in wearable.emissions():
            if em.event == "disconnect":
                wrist.drop_connection()
                drops += 1
                sockets.append(socket_families(proc.pid))
                continue
            if em.event == "reconnect" or em.message is None:
                continue  # the daemon reconnects on its own schedule
            for frag in wrist.fragments(em.message):
                if rng.random() < 0.005:
                    frag = corrupt(frag + b"\0", rng)[:-1]
                    sent.flipped["fragment"] += 1
                wrist.notify(gatt.WEARABLE_PACKET_CHAR_UUID, frag)
        await bluez.drain(30)
        await asyncio.sleep(0.5)
        sockets.append(socket_families(proc.pid))
        summary = await finish(proc, err, tmp_path)
    finally:
        kill(proc)
    # a drop that comes while the daemon is still reconnecting finds no link to drop
    # (the daemon's own disconnect at SIGTERM is the last one)
    assert drops == 3 and wrist.disconnect_count >= 3
    assert wrist.connect_count == wrist.disconnect_count  # back after every drop
    ledger = reconcile(summary, sent, tmp_path / "raw.bin")
    (dev,) = summary["per_device"].values()
    assert dev.get("sequence_restarts", 0) == 0
    # The daemon's own ledger: every link-up after the first is one "reconnected" event.
    src = summary["source"]
    assert summary["events"]["reconnected"] == src["reconnects"] >= 1
    assert src["disconnects"] == src["connects"] == 1 + src["reconnects"]
    # What the peripheral saw: the first connect and each reconnect, plus any connection a
    # drop cut while bleak was still setting it up (the drops here come 0.1-0.15 s apart);
    # establish_connection retries those itself, up to connect_attempts per round.
    rounds = 1 + src["reconnects"] + src.get("connect_failures", 0)
    assert 1 + src["reconnects"] <= wrist.connect_count <= rounds * BleOptions().connect_attempts
    for kind in ("battery_low", "no_contact", "contact_restored", "data_gap"):
        assert summary["events"].get(kind, 0) >= 1, kind
    windows = check_offline(summary, bundle, tmp_path)
    assert windows["valid"] > 10
    assert all(set(s) <= {"unix"} for s in sockets), sockets
    print("ble link faults:", ledger, "windows", windows, "reconnects", src.get("reconnects"),
          "corrupted fragments", sent.flipped["fragment"])
