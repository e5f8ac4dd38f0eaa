"""train.tracking: the run record's fingerprints, and MLflow logging into a local file store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.runs import RunLayout
from train.config import load_config
from train.errors import TrainError
from train.tracking import data_fingerprint, make_tracker, write_record


def test_the_windows_fingerprint_follows_the_content() -> None:
    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    y, g = np.array([0, 1, 0]), np.array(["a", "b", "a"])
    fp = data_fingerprint(X, y, g)
    assert fp == data_fingerprint(X.copy(), y.copy(), g.copy())
    X2 = X.copy()
    X2[1, 2] += 1e-3
    assert data_fingerprint(X2, y, g) != fp
    assert data_fingerprint(X, y, np.array(["a", "b", "c"])) != fp
    assert data_fingerprint(X.reshape(4, 3), y, g) != fp  # same bytes, other shape


def _run_dir(tmp_path: Path) -> RunLayout:
    layout = RunLayout(tmp_path / "run")
    (layout.root / "teachers").mkdir(parents=True)
    layout.metrics.write_text("{}")
    (layout.root / "teachers" / "t.pt").write_bytes(b"weights")
    (layout.root / ".work-x").write_text("scratch")  # hidden work files are not artifacts
    return layout


def test_the_record_lists_config_metrics_and_artifacts(tmp_path: Path) -> None:
    layout = _run_dir(tmp_path)
    metrics = {
        "models": {"student_alone": {"macro_f1": 0.7, "accuracy": 0.8}},
        "acceptance": {"gain_over_alone": 0.02},
        "dataset": {"kind": "arrays", "path": "x.npz", "sha256": "ab"},
        "n_windows": 3,
    }
    rec = write_record(layout, load_config(overrides=["seed=5"]), metrics, "f" * 64)
    assert json.loads(layout.record.read_text()) == rec
    assert rec["config"]["seed"] == 5
    assert rec["metrics"] == {"student_alone.macro_f1": 0.7, "student_alone.accuracy": 0.8,
                              "acceptance.gain_over_alone": 0.02}  # fmt: skip
    assert rec["data"]["windows_sha256"] == "f" * 64 and rec["data"]["sha256"] == "ab"
    arts = {a["path"]: a for a in rec["artifacts"]}
    assert set(arts) == {"metrics.json", "teachers/t.pt"}
    import hashlib

    assert arts["teachers/t.pt"]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert arts["teachers/t.pt"]["bytes"] == 7
    assert "git_commit" in rec and "git_dirty" in rec


def test_mlflow_logs_the_run_into_a_local_file_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{store}")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    layout = _run_dir(tmp_path)
    metrics = {"models": {"student_alone": {"macro_f1": 0.7}}, "dataset": {}}
    rec = write_record(layout, load_config(), metrics, "0" * 64)
    tracker = make_tracker("mlflow")
    assert tracker is not None
    tracker.log_run(layout, rec, metrics)
    runs = mlflow.search_runs(experiment_names=["wearable-edge"], output_format="list")
    assert len(runs) == 1
    r = runs[0]
    assert r.data.metrics == {"student_alone.macro_f1": 0.7}
    assert r.data.params["loop.val_by"] == "time" and r.data.tags["run_id"] == rec["run_id"]
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(r.info.run_id)}
    assert {"metrics.json", "run.json", "teachers"} <= files


def test_unknown_tracker_is_a_clear_error() -> None:
    assert make_tracker(None) is None
    with pytest.raises(TrainError, match="unknown tracker 'wandb'"):
        make_tracker("wandb")


def test_without_mlflow_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    with pytest.raises(TrainError, match=r"pip install 'wearable-edge\[track\]'"):
        make_tracker("mlflow")
