"""`edge-daemon --device replay`: WESAD pickles, our .npz, and raw frame files, at N x speed.

Ground-truth labels travel beside the decisions and the summary prints the agreement; a
raw recording made with --record-raw replays into exactly the decisions of the original run.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from core.recording import save_recording
from edge.bundle import load_bundle
from firmware_bridge.sim.synthetic import synthetic_recording
from tests.fakes.daemon import db_rows, run_cli, toy_bundle
from tests.fakes.recordings import wesad_dict, write_wesad_pickle

pytestmark = pytest.mark.slow

SEGMENTS = ((1, 100), (2, 70), (1, 30), (3, 70))  # baseline first: the enrollment period


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


def _lines(stdout: str) -> list[dict]:
    return [json.loads(x) for x in stdout.splitlines() if x.startswith("{")]


def _majority_label(codes: np.ndarray, start_s: float, end_s: float) -> int:
    seg = codes[round(start_s * 700):round(end_s * 700)]
    values, counts = np.unique(seg, return_counts=True)
    return int(values[counts.argmax()])


def test_replay_wesad_pickle_shows_labels_and_agreement(bundle: Path, tmp_path: Path) -> None:
    pkl = write_wesad_pickle(tmp_path / "wesad", subject="S5", segments=SEGMENTS)
    summary_path = tmp_path / "summary.json"
    p = run_cli(["--device", "replay", "--file", str(pkl), "--bundle", str(bundle),
                 "--speed", "500", "--json", "--db", str(tmp_path / "edge.db"),
                 "--state-dir", str(tmp_path / "s"), "--summary-json", str(summary_path)])
    assert p.returncode == 0, p.stderr
    decisions = [x for x in _lines(p.stdout) if x["type"] == "decision"]
    assert len(decisions) > 100
    names = {1: "baseline", 2: "stress", 3: "amusement"}
    codes = np.asarray(wesad_dict(subject="S5", segments=SEGMENTS)["label"]).reshape(-1)
    # the simulator's device clock starts 1 s before recording time 0
    for d in decisions[::7]:
        code = _majority_label(codes, d["window_start"] - 1.0, d["window_end"] - 1.0)
        assert d["label"] == names[code], d
    summary = json.loads(summary_path.read_text())
    assert summary["stop_reason"] == "source ended"
    agreement = summary["agreement"]
    labelled = [d for d in decisions if d.get("label")]
    assert agreement["labelled"] == len(labelled)
    assert agreement["agree"] == sum(d["state"] == d["label"] for d in labelled)
    assert "replay agreement with ground truth" in p.stderr
    assert len(db_rows(tmp_path / "edge.db")) == len(decisions)


def test_replay_npz_recording(bundle: Path, tmp_path: Path) -> None:
    rec = synthetic_recording(150.0, seed=9, subject="npz-subject")
    path = save_recording(rec, tmp_path / "session.npz", dtype="float16")
    p = run_cli(["--device", "replay", "--file", str(path), "--bundle", str(bundle),
                 "--speed", "500", "--db", str(tmp_path / "edge.db"),
                 "--state-dir", str(tmp_path / "s"), "--status", "off"])
    assert p.returncode == 0, p.stderr
    rows = db_rows(tmp_path / "edge.db")
    assert len(rows) > 30
    assert all(r["label"] in load_bundle(bundle).class_names for r in rows if r["label"])


def test_raw_recording_replays_into_the_same_decisions(bundle: Path, tmp_path: Path) -> None:
    raw = tmp_path / "session.raw"
    common = ["--bundle", str(bundle), "--backend", "onnx", "--precision", "fp32",
              "--status", "off"]
    first = run_cli(["--device", "sim", "--speed", "100", "--duration", "3",
                     "--db", str(tmp_path / "a.db"), "--state-dir", str(tmp_path / "a"),
                     "--record-raw", str(raw), *common])
    assert first.returncode == 0, first.stderr
    assert raw.stat().st_mode & 0o777 == 0o600
    second = run_cli(["--device", "replay", "--file", str(raw), "--speed", "1000",
                      "--db", str(tmp_path / "b.db"), "--state-dir", str(tmp_path / "b"),
                      *common])
    assert second.returncode == 0, second.stderr
    a, b = db_rows(tmp_path / "a.db"), db_rows(tmp_path / "b.db")
    assert len(b) > 30
    # the replay ends where the recording ended; the original may have cut a window more
    # from data still in flight at its stop
    assert 0 <= len(a) - len(b) <= 2
    for ra, rb in zip(a, b, strict=False):
        assert (ra["device"], ra["window_index"], ra["state"]) == (
            rb["device"], rb["window_index"], rb["state"])
        np.testing.assert_allclose(list(ra["p_instant"].values()), list(rb["p_instant"].values()), atol=1e-6)


def test_plain_frame_capture_replays(bundle: Path, tmp_path: Path) -> None:
    """What `cat /dev/ttyUSB0 > capture.bin` saves: bridge frames only, one device."""
    import asyncio

    from firmware_bridge.sim import SimulatedWearable

    async def capture() -> bytes:
        w = SimulatedWearable(synthetic_recording(120.0, seed=2), speed=float("inf"))
        return b"".join([f async for f in w.frames()])

    cap = tmp_path / "capture.bin"
    cap.write_bytes(asyncio.run(capture()))
    p = run_cli(["--device", "replay", "--file", str(cap), "--bundle", str(bundle),
                 "--speed", "1000", "--db", str(tmp_path / "edge.db"),
                 "--state-dir", str(tmp_path / "s"), "--status", "off"])
    assert p.returncode == 0, p.stderr
    rows = db_rows(tmp_path / "edge.db")
    assert len(rows) > 20 and {r["device"] for r in rows} == {f"replay:{cap.name}"}


def test_replay_of_a_missing_or_malformed_file_fails_clearly(bundle: Path, tmp_path: Path) -> None:
    p = run_cli(["--device", "replay", "--file", str(tmp_path / "nope.pkl"), "--bundle", str(bundle)])
    assert p.returncode == 1 and "nope.pkl" in p.stderr and "no such file" in p.stderr
    bad = tmp_path / "S9.pkl"
    bad.write_bytes(pickle.dumps({"subject": "S9"}, protocol=2))
    p = run_cli(["--device", "replay", "--file", str(bad), "--bundle", str(bundle)])
    assert p.returncode == 1 and "S9.pkl" in p.stderr
