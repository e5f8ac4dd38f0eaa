"""`edge-daemon` with heart-rate devices: a simulated stock strap, wearers of both kinds at once,
and a device that fits no bundle. The real CLI in a subprocess, on real exported bundles.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.recording import load_recording, save_recording
from firmware_bridge.sim.rr import with_beats
from firmware_bridge.sim.synthetic import synthetic_recording
from tests.fakes.daemon import db_rows, run_cli, toy_bundle
from tests.fakes.hr import beats_recording, rr_runs_in, toy_hr_bundle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hr_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_hr_bundle(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def wrist_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_sim_strap_gets_decisions_with_heart_rate_and_rmssd(hr_bundle: Path,
                                                             tmp_path: Path) -> None:
    rec = beats_recording(tmp_path / "beats.npz", 240.0)
    db = tmp_path / "edge.db"
    raw = tmp_path / "raw.bin"
    p = run_cli(["--device", "sim", "--sim-kind", "hr", "--recording", str(rec),
                 "--bundle", str(hr_bundle), "--backend", "onnx", "--speed", "100", "--json",
                 "--db", str(db), "--state-dir", str(tmp_path / "s"), "--status", "off",
                 "--log-level", "debug", "--jsonl", str(tmp_path / "out.jsonl"),
                 "--summary-json", str(tmp_path / "summary.json"), "--record-raw", str(raw)])
    assert p.returncode == 0, p.stderr
    decisions = [x for x in _json_lines(p.stdout) if x["type"] == "decision"]
    assert len(decisions) > 60  # (240 s - 20 s enrollment) at a 2 s hop, less the edges
    rows = db_rows(db)
    assert len(rows) == len(decisions)
    hr = np.array([r["hr_bpm"] for r in rows])
    rmssd = np.array([r["rmssd_ms"] for r in rows])
    # the simulated wearer rests at 75 bpm and is stressed (+14 bpm) in the middle third
    assert hr.min() > 65 and hr.max() < 105 and hr.max() - hr.min() > 8
    assert (rmssd > 5).all() and (rmssd < 150).all()
    assert all(set(d["derived"]) == {"hr_bpm", "rmssd_ms"} for d in decisions)
    assert "offers" not in p.stderr  # it fitted: nothing to explain
    # privacy: the RR intervals are raw data, in no output; only the local raw recording
    # (asked for with --record-raw) holds them, as the positive control shows
    sent = np.round(load_recording(rec).beats["rr"].rr_s * 1024.0) / 1024.0
    outputs = [db, tmp_path / "out.jsonl", tmp_path / "summary.json",
               *(tmp_path / "s").rglob("*.json")]
    for out in outputs:
        assert not rr_runs_in(out.read_bytes(), sent), out
    assert not rr_runs_in((p.stdout + p.stderr).encode(), sent)
    assert rr_runs_in(raw.read_bytes(), sent, run=2)  # a packet holds a beat or two


def test_wearers_of_both_kinds_at_once_each_get_their_model(hr_bundle: Path, wrist_bundle: Path,
                                                           tmp_path: Path) -> None:
    rec = save_recording(with_beats(synthetic_recording(150.0, seed=4), seed=4),
                         tmp_path / "both.npz")
    assert "rr" in load_recording(rec).beats
    db = tmp_path / "edge.db"
    p = run_cli(["--device", "sim", "--sim-kind", "mixed", "--sim-devices", "2",
                 "--recording", str(rec), "--bundle", str(wrist_bundle), "--bundle",
                 str(hr_bundle), "--backend", "onnx", "--speed", "100", "--db", str(db),
                 "--state-dir", str(tmp_path / "s"), "--status", "off"])
    assert p.returncode == 0, p.stderr
    rows = db_rows(db)
    models = {r["device"]: {x["model_id"] for x in rows if x["device"] == r["device"]}
              for r in rows}
    wrist_id = json.loads((wrist_bundle / "manifest.json").read_text())["model_id"]
    hr_id = json.loads((hr_bundle / "manifest.json").read_text())["model_id"]
    assert models == {"sim-0": {wrist_id}, "sim-1": {hr_id}}
    assert all(r["hr_bpm"] is None for r in rows if r["device"] == "sim-0")
    assert all(r["hr_bpm"] > 0 for r in rows if r["device"] == "sim-1")
    assert sum(r["device"] == "sim-0" for r in rows) > 20
    assert sum(r["device"] == "sim-1" for r in rows) > 20
    assert "sim-1: deciding with" in p.stderr


def test_a_device_that_fits_no_bundle_is_one_clear_line_and_no_crash(wrist_bundle: Path,
                                                                     tmp_path: Path) -> None:
    rec = beats_recording(tmp_path / "beats.npz", 90.0)
    p = run_cli(["--device", "sim", "--sim-kind", "hr", "--recording", str(rec),
                 "--bundle", str(wrist_bundle), "--backend", "onnx", "--speed", "200",
                 "--db", str(tmp_path / "edge.db"), "--state-dir", str(tmp_path / "s"),
                 "--status", "off", "--summary-json", str(tmp_path / "summary.json")])
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "no model fits" in ln]
    assert len(lines) == 1, p.stderr  # once, not per HELLO
    assert "offers hr[bpm], rr[s]" in lines[0] and "needs bvp[a.u.], eda[uS], acc[g]" in lines[0]
    assert db_rows(tmp_path / "edge.db") == []
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["decisions"] == 0
