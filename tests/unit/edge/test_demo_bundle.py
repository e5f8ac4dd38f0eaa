"""The shipped demo bundle: README's first command runs on it, so it must verify and decide sensibly.

Real parts only: the bundle under edge/demo_bundle (hashes verified), the real TFLite/ONNX
engines, the daemon CLI in a subprocess, and the shipped held-out demo recording.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.contract import WESAD_WRIST_MODALITIES
from edge.bundle import demo_bundle_path, load_bundle

# The demo wearer is a synthetic subject the model never saw; chance is ~1/3 for three classes
# and the exported model scores ~0.8 on it, so 0.6 catches a broken model or broken contract.
MIN_AGREEMENT = 0.6


def test_demo_bundle_verifies_and_declares_the_wrist_contract() -> None:
    bundle = load_bundle(demo_bundle_path())
    c = bundle.contract
    assert c.modality_names == tuple(m.name for m in WESAD_WRIST_MODALITIES)
    assert c.class_names == ("baseline", "stress", "amusement")
    assert (c.window_s, c.hop_s) == (60.0, 5.0)
    assert bundle.calibration_required
    assert set(bundle.files) == {"onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8"}
    assert bundle.files["tflite_int8"].size <= 150 * 1024
    assert (Path(demo_bundle_path()) / "demo_recording.npz").is_file()


@pytest.mark.slow
def test_demo_command_decides_and_agrees_with_ground_truth(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "--device", "sim", "--duration", "20", "--speed", "120",
         "--state-dir", str(tmp_path / "state"), "--summary-json", str(summary), "--json"],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    decisions = [x for x in lines if "state" in x and "probabilities" in x]
    assert len(decisions) > 100
    s = json.loads(summary.read_text())
    assert s["decisions"] == len(decisions) == sum(s["decisions_per_state"].values())
    assert s["engine"].startswith(("tflite:", "onnx:"))
    agreement = s["agreement"]
    assert agreement["labelled"] > 100
    assert agreement["agree"] / agreement["labelled"] >= MIN_AGREEMENT


# -- the heart-rate demo bundle (edge/hr_demo_bundle) -----------------------------------------
def test_hr_demo_bundle_verifies_declares_rr_and_int8_keeps_the_accuracy() -> None:
    from core.recording import load_recording
    from edge.bundle import hr_demo_bundle_path

    bundle = load_bundle(hr_demo_bundle_path())
    c = bundle.contract
    assert c.modality_names == ("rr",) and c.modality("rr").beats and c.has_beats
    assert (c.modality("rr").rate_hz, c.window_s, c.hop_s) == (4.0, 60.0, 5.0)
    assert c.beats.method == "lipponen" and c.beats.max_corrected_fraction == 0.05
    assert c.class_names == ("baseline", "stress", "amusement")
    assert bundle.model_id == "wearable-edge-hr-student" and bundle.calibration_required
    assert set(bundle.files) == {"onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8"}
    for key in ("onnx_int8", "tflite_int8"):  # verified like the wrist bundle: within 0.01
        acc = bundle.files[key].raw["accuracy"]
        assert acc["acceptable"] and acc["macro_f1_drop"] <= 0.01, (key, acc)
    rec = load_recording(hr_demo_bundle_path() / "demo_recording.npz")
    assert rec.beats["rr"].n_beats > 2000 and rec.labels is not None


@pytest.mark.slow
def test_hr_demo_command_decides_for_a_simulated_strap(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "--device", "sim", "--sim-kind", "hr", "--duration",
         "20", "--speed", "120", "--state-dir", str(tmp_path / "state"), "--summary-json",
         str(summary), "--json"],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    decisions = [x for x in lines if "state" in x and "probabilities" in x]
    assert len(decisions) > 100
    assert {d["model_id"] for d in decisions} == {"wearable-edge-hr-student"}
    assert all(30 < d["derived"]["hr_bpm"] < 200 for d in decisions)
    agreement = json.loads(summary.read_text())["agreement"]
    assert agreement["labelled"] > 100
    assert agreement["agree"] / agreement["labelled"] >= MIN_AGREEMENT
