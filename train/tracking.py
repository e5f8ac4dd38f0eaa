"""Records every training run so runs compare: ``RUN/run.json``, and MLflow when asked.

:func:`write_record` writes the run record beside the run's files: the full config, the
headline metrics (each model's pooled scores, or their means over seeds), the git commit
(and whether the tree had uncommitted changes), a fingerprint of the data file and of the
windows actually trained on, and every artifact's size and sha256. It needs nothing beyond
the standard library and numpy.

``edge-train fit --track mlflow`` also logs the run to MLflow (``mlflow-skinny``, the
``track`` extra): params from the config, the headline metrics, the record's provenance as
tags and the run directory as artifacts, in a local file store (``./mlruns``, or
``MLFLOW_TRACKING_URI``). Without ``--track`` MLflow is never imported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from core.runs import RunLayout
from train.checkpoint import git_commit
from train.config import RunConfig, config_to_dict
from train.errors import TrainError

__all__ = ["TRACKERS", "MlflowTracker", "Tracker", "data_fingerprint", "make_tracker",
           "write_record"]  # fmt: skip

TRACKERS: Final = ("mlflow",)
HASH_CHUNK: Final = 1 << 20  # bytes per read when hashing a file
DEFAULT_MLFLOW_URI: Final = "file:./mlruns"  # MLflow's own default place, a local file store


def data_fingerprint(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> str:
    """sha256 of the packed windows, labels and subject ids: the same windows, the same
    fingerprint, whatever file or loader they came from."""
    h = hashlib.sha256()
    for a in (X, y, np.asarray(groups).astype(str)):
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        flat = a.reshape(-1).view(np.uint8) if a.dtype.kind != "U" else a.tobytes()
        h.update(memoryview(flat))
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _git_dirty() -> bool | None:
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def _headline(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Flat ``name -> value`` scores: per model pooled macro-F1 and accuracy (with seeds,
    their means and standard deviations), the acceptance gaps."""
    out: dict[str, float] = {}
    seeds = metrics.get("seeds")
    if seeds:
        for name, m in seeds["models"].items():
            for k in ("macro_f1_mean", "macro_f1_sd", "accuracy_mean"):
                if m.get(k) is not None:
                    out[f"{name}.{k}"] = float(m[k])
    else:
        for name, m in metrics.get("models", {}).items():
            for k in ("macro_f1", "accuracy"):
                if m.get(k) is not None:
                    out[f"{name}.{k}"] = float(m[k])
    acc = metrics.get("acceptance", {})
    for k in ("gap_to_teacher", "gain_over_alone"):
        if acc.get(k) is not None:
            out[f"acceptance.{k}"] = float(acc[k])
    return out


def write_record(
    layout: RunLayout, cfg: RunConfig, metrics: Mapping[str, Any], fingerprint: str
) -> dict[str, Any]:
    """Write ``RUN/run.json`` (see the module doc) and return it."""
    artifacts = [
        {
            "path": p.relative_to(layout.root).as_posix(),
            "bytes": p.stat().st_size,
            "sha256": _sha256(p),
        }
        for p in sorted(layout.root.rglob("*"))
        if p.is_file() and p != layout.record and not p.name.startswith(".")
    ]
    record = {
        "run_id": uuid.uuid4().hex,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_dirty": _git_dirty(),
        "config": config_to_dict(cfg),
        "data": {
            **metrics.get("dataset", {}),
            "windows_sha256": fingerprint,
            "n_windows": metrics.get("n_windows"),
        },
        "metrics": _headline(metrics),
        "timing": metrics.get("timing", {}),
        "artifacts": artifacts,
    }
    layout.record.write_text(json.dumps(record, indent=2) + "\n")
    return record


class Tracker(Protocol):
    """Somewhere a finished run is logged besides its own directory."""

    def log_run(
        self, layout: RunLayout, record: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None: ...


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{key}."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list | tuple) else str(v)
    return out


class MlflowTracker:
    """Logs a run to MLflow: config as params, headline metrics, provenance tags, the run
    directory as artifacts (experiment ``experiment``)."""

    def __init__(self, experiment: str = "wearable-edge") -> None:
        # MLflow 3 keeps the local file store only on request; a file store is what a
        # single-machine user can open with `mlflow ui` and nothing else to install
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            import mlflow
        except ImportError:
            raise TrainError(
                "--track mlflow needs MLflow: pip install 'wearable-edge[track]' "
                "(mlflow-skinny), or leave out --track"
            ) from None
        self._mlflow = mlflow
        self.experiment = experiment

    def log_run(
        self, layout: RunLayout, record: Mapping[str, Any], metrics: Mapping[str, Any]
    ) -> None:
        mlflow = self._mlflow
        mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_MLFLOW_URI))
        mlflow.set_experiment(self.experiment)
        with mlflow.start_run(run_name=layout.root.name):
            mlflow.log_params(_flat(record["config"]))
            mlflow.log_metrics(record["metrics"])
            tags = {
                "git_commit": record.get("git_commit") or "unknown",
                "git_dirty": str(record.get("git_dirty")),
                "run_id": record["run_id"],
                "run_dir": str(layout.root.resolve()),
                "data.windows_sha256": record["data"]["windows_sha256"],
            }
            if "sha256" in record["data"]:
                tags["data.sha256"] = record["data"]["sha256"]
            mlflow.set_tags(tags)
            mlflow.log_artifacts(str(layout.root))


def make_tracker(name: str | None) -> Tracker | None:
    """The tracker ``--track`` names, or None."""
    if name is None:
        return None
    if name == "mlflow":
        return MlflowTracker()
    raise TrainError(f"unknown tracker {name!r}; expected one of {TRACKERS}")
