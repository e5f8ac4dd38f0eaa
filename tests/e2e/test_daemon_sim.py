"""`edge-daemon --device sim` end to end: the embedded default, run as a user runs it.

Each test starts the real CLI in a subprocess on a real exported bundle (ONNX Runtime and
TFLite engines), with the simulator in-process, and checks what reaches the SQLite file,
stdout (--json) and the summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.signal import compute_calibration, windows_from_streams
from edge.bundle import load_bundle
from edge.decisions import softmax
from edge.engines import open_engine
from tests.fakes.daemon import TOY_FORMATS, db_rows, received_streams, run_cli, toy_bundle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_sim_two_wearables_json_database_and_summary(bundle: Path, tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    args = ["--device", "sim", "--bundle", str(bundle), "--sim-devices", "2", "--speed", "100",
            "--duration", "6", "--json", "--db", str(db), "--state-dir", str(tmp_path / "s"),
            "--summary-json", str(tmp_path / "summary.json")]
    p = run_cli(args)
    assert p.returncode == 0, p.stderr
    lines = _json_lines(p.stdout)
    decisions = [x for x in lines if x["type"] == "decision"]
    events = [x for x in lines if x["type"] == "event"]
    classes = set(load_bundle(bundle).class_names)
    assert {d["resident"] for d in decisions} == {"sim-0", "sim-1"}
    assert all(d["state"] in classes and set(d["probabilities"]) == classes for d in decisions)
    assert all(abs(sum(d["p_instant"].values()) - 1) < 1e-3 for d in decisions)
    assert sorted(e["resident"] for e in events if e["kind"] == "calibrated") == ["sim-0", "sim-1"]
    assert any(e["kind"] == "state_change" for e in events)

    # every decision printed is in the database, in the same order, and nothing else
    rows = db_rows(db)
    assert [(r["resident"], r["window_index"], r["state"]) for r in rows] == [
        (d["resident"], d["window_index"], d["state"]) for d in decisions
    ]
    # per device, windows come in order, one decision each
    for dev in ("sim-0", "sim-1"):
        idx = [r["window_index"] for r in rows if r["device"] == dev]
        assert idx == sorted(set(idx)) and len(idx) > 50

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["decisions"] == len(rows)
    assert sum(summary["decisions_per_state"].values()) == len(rows)
    assert summary["windows"]["valid"] == len(rows)  # no window lost on the way
    assert summary["stop_reason"] == "duration reached"
    assert 0 < summary["ready_s"] < 60 and summary["rss_mb"] > 0
    assert summary["agreement"]["labelled"] > 0  # the simulator's labels travel with it
    assert "decisions:" in p.stderr and "footprint: ready in" in p.stderr  # the printed summary


@pytest.mark.parametrize("fmt", TOY_FORMATS)
def test_sim_decides_with_every_format_of_the_bundle(bundle: Path, tmp_path: Path,
                                                      fmt: str) -> None:
    # auto-selection runs one format; each one a bundle ships must run when asked for by name
    backend, precision = fmt.split("_")
    assert fmt in load_bundle(bundle).files
    p = run_cli(["--device", "sim", "--bundle", str(bundle), "--backend", backend,
                 "--precision", precision, "--speed", "100", "--duration", "3", "--json",
                 "--state-dir", str(tmp_path / "s"), "--status", "off",
                 "--summary-json", str(tmp_path / "summary.json")])
    assert p.returncode == 0, p.stderr
    decisions = [x for x in _json_lines(p.stdout) if x["type"] == "decision"]
    assert len(decisions) > 20
    assert all(abs(sum(d["p_instant"].values()) - 1) < 1e-3 for d in decisions)
    assert json.loads((tmp_path / "summary.json").read_text())["engine"] == f"{backend}:{fmt}"


def test_sim_baseline_is_stored_owner_only_and_reused_after_restart(bundle: Path,
                                                                     tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ["--device", "sim", "--bundle", str(bundle), "--speed", "200", "--duration", "3",
            "--state-dir", str(state), "--resident", "anna", "--status", "off"]
    first = run_cli(args)
    assert first.returncode == 0, first.stderr
    baseline = state / "calibration" / "anna.json"
    assert baseline.is_file()
    assert baseline.stat().st_mode & 0o777 == 0o600
    assert (state / "calibration").stat().st_mode & 0o777 == 0o700
    assert "enrolling" in first.stderr
    before = baseline.read_bytes()

    second = run_cli(args)
    assert second.returncode == 0, second.stderr
    assert "using the stored baseline of resident anna" in second.stderr
    assert "enrolling" not in second.stderr
    assert baseline.read_bytes() == before
    events = db_rows(state / "edge.db", "events")
    assert [e["kind"] for e in events].count("calibrated") == 1  # only the first run enrolled


def test_sim_faults_are_counted_reported_and_never_decided_on(bundle: Path, tmp_path: Path) -> None:
    """Loss, duplicates, reordering, corrupted bytes, a disconnect, contact loss and a low
    battery: the daemon keeps running, counts what was lost, raises the events, and makes
    no decision from a window the offline path calls invalid."""
    cfg = tmp_path / "edge-daemon.toml"
    cfg.write_text("""
device = "sim"
speed = 50.0
[sim]
seed = 4
[sim.faults]
drop = 0.02
duplicate = 0.02
reorder = 0.02
flip = 0.01
disconnect_at_s = [150.0]
disconnect_s = 8.0
contact_lost_at_s = 200.0
contact_lost_s = 20.0
battery_low_at_s = 90.0
""")
    db = tmp_path / "edge.db"
    raw = tmp_path / "raw.bin"
    p = run_cli(["--config", str(cfg), "--bundle", str(bundle), "--duration", "6", "--db", str(db),
                 "--state-dir", str(tmp_path / "s"), "--record-raw", str(raw),
                 "--summary-json", str(tmp_path / "summary.json"), "--status", "off"])
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    drops = summary["drops"]
    assert drops["lost_packets"] > 0 and drops["duplicate_packets"] > 0
    events = {e["kind"] for e in db_rows(db, "events")}
    assert {"battery_low", "no_contact", "contact_restored", "data_gap",
            "invalid_windows", "valid_windows", "calibrated"} <= events
    invalid = {k: v for k, v in summary["windows"].items() if k.startswith("invalid_")}
    assert invalid, summary["windows"]

    # offline: the same received samples, the same windows; decisions only on valid ones
    rows = db_rows(db)
    b = load_bundle(bundle)
    contract = b.contract
    ((_, streams),) = received_streams(raw).values()
    origin = rows[0]["window_start"] - rows[0]["window_index"] * contract.hop_s
    cal = compute_calibration(streams, contract)
    windows = {w.index: w for w in windows_from_streams(streams, contract, origin=origin,
                                                        calibration=cal)}
    decided = [r["window_index"] for r in rows]
    assert all(windows[i].valid for i in decided)
    assert sorted(decided) == sorted(i for i, w in windows.items() if w.valid)
    assert any(not w.valid for w in windows.values())
    engine = open_engine(b, "onnx", "fp32", 1)
    probs = softmax(engine.run(contract.pack_batch([windows[i].data for i in decided])))
    stored = np.array([[r["p_instant"][c] for c in contract.class_names] for r in rows])
    # the daemon chose its engine by measurement (maybe int8): same decisions, close numbers
    assert (stored.argmax(1) == probs.argmax(1)).mean() > 0.9
    assert np.abs(stored - probs).max() < 0.2


def test_bad_bundle_is_refused_at_start_with_a_clear_error(bundle: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "bundle"
    shutil.copytree(bundle, broken)
    victim = next(broken.glob("*.onnx"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    p = run_cli(["--device", "sim", "--bundle", str(broken), "--duration", "1",
                 "--state-dir", str(tmp_path / "s")])
    assert p.returncode == 1
    assert "cannot start" in p.stderr and victim.name in p.stderr


def test_config_error_names_the_key_and_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[decisions]\nema_alpha = 3\n")
    p = run_cli(["--config", str(cfg)])
    assert p.returncode == 2
    assert "decisions.ema_alpha" in p.stderr


def test_help_explains_the_devices() -> None:
    p = run_cli(["--help"])
    assert p.returncode == 0
    for word in ("sim", "serial", "ble", "replay", "scan", "calibrate"):
        assert word in p.stdout
    p = run_cli(["run", "--help"])
    assert "--record-raw" in p.stdout and "--speed" in p.stdout and "--port" in p.stdout


def test_calibrate_command_records_a_fresh_baseline_and_exits(bundle: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ["calibrate", "--device", "sim", "--bundle", str(bundle), "--speed", "200",
            "--resident", "bob", "--state-dir", str(state), "--status", "off"]
    p = run_cli(args)
    assert p.returncode == 0, p.stderr
    path = state / "calibration" / "bob.json"
    first = json.loads(path.read_text())
    assert set(first["calibration"]["center"]) == set(load_bundle(bundle).contract.modality_names)
    assert "every device has a baseline" in p.stderr
    assert not (state / "edge.db").exists()  # calibrate stores the baseline, no decisions
    again = run_cli([*args, "--recording", str(_other_recording(tmp_path))])
    assert again.returncode == 0, again.stderr
    second = json.loads(path.read_text())
    assert second["calibration"]["center"] != first["calibration"]["center"]  # replaced


def _other_recording(tmp_path: Path) -> Path:
    from core.recording import save_recording
    from firmware_bridge.sim.synthetic import synthetic_recording

    return save_recording(synthetic_recording(200.0, seed=77), tmp_path / "other.npz")


def test_systemd_notify_ready_watchdog_status_stopping(bundle: Path, tmp_path: Path) -> None:
    """The daemon under Type=notify: READY=1, WATCHDOG=1 pings, STATUS=, STOPPING=1."""
    import socket
    import threading

    sock_path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def read() -> None:  # like systemd: read as they come (the socket queue is short)
        while not done.is_set():
            try:
                messages.append(s.recv(4096).decode())
            except TimeoutError:
                continue

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        p = run_cli(["--device", "sim", "--bundle", str(bundle), "--speed", "100", "--duration",
                     "3", "--health-interval", "1", "--state-dir", str(tmp_path / "s"),
                     "--status", "off"],
                    env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "400000"})
        assert p.returncode == 0, p.stderr
    finally:
        done.set()
        reader.join(5)
        s.close()
    assert messages[0].startswith("READY=1\nSTATUS=deciding with ")
    assert messages.count("WATCHDOG=1") >= 5  # every 0.2 s for ~3 s
    assert any(m.startswith("STATUS=1 devices") for m in messages)
    stopping = [m for m in messages if m.startswith("STOPPING=1")]
    assert len(stopping) == 1 and "draining" in stopping[0]
