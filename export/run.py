"""Reading a training RUN directory (layout: ``core.runs.RunLayout``) for export.

``load_run(path)`` rebuilds the deployable student from ``student.pt`` alone
(``Student(StudentConfig(**ckpt["model_args"]))``, or the class named by an optional
``"model_class": "module:Class"`` key, which must offer ``from_model_args(dict)``) and
loads the calibration and held-out windows.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.contract import InputContract
from core.errors import InputTooLargeError
from core.npz import check_npz_size
from core.runs import RunLayout
from export.errors import ExportError

__all__ = ["RunData", "build_student", "load_run"]


@dataclass
class RunData:
    """Everything export needs from one RUN."""

    path: Path
    checkpoint: dict[str, Any]
    model: nn.Module  # eval mode, CPU
    contract: InputContract
    calib_x: np.ndarray  # (N, L) float32, training subjects only
    calib_y: np.ndarray  # (N,)
    heldout_x: np.ndarray  # (M, L) float32, held-out subject(s)
    heldout_y: np.ndarray  # (M,)
    metrics: dict[str, Any]  # RUN/metrics.json, {} if absent


def build_student(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the model of a checkpoint dict and load its weights (eval mode)."""
    args = ckpt["model_args"]
    model_class = ckpt.get("model_class")
    if model_class:
        module_name, _, cls_name = str(model_class).partition(":")
        cls = getattr(importlib.import_module(module_name), cls_name)
        model = cls.from_model_args(args)
    else:
        from train.models import Student, StudentConfig

        model = Student(StudentConfig(**args))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ExportError("missing (edge-train fit writes it)", path=str(path), stage="run")
    try:
        check_npz_size(path)  # before np.load inflates anything
    except InputTooLargeError as e:
        raise ExportError(str(e), path=str(path), stage="run") from e
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise ExportError(f"missing arrays {missing}", path=str(path), stage="run")
        return {k: z[k] for k in keys}


def load_run(path: str | Path) -> RunData:
    run = Path(path)
    layout = RunLayout(run)
    ckpt_path = layout.student_checkpoint
    if not ckpt_path.is_file():
        raise ExportError("no student.pt: is this an edge-train fit output?", path=str(ckpt_path), stage="run")
    # weights_only: a checkpoint is dicts, lists, strings and tensors; nothing to execute
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    for key in ("model_args", "contract", "state_dict"):
        if key not in ckpt:
            raise ExportError(f"checkpoint has no {key!r}", path=str(ckpt_path), stage="run")
    contract = InputContract.from_dict(ckpt["contract"])
    model = build_student(ckpt)
    calib = _load_npz(layout.calib_windows, ("X", "y"))
    held = _load_npz(layout.heldout_windows, ("X", "y"))
    for npz_path, arr in ((layout.calib_windows, calib["X"]), (layout.heldout_windows, held["X"])):
        if arr.ndim != 2 or arr.shape[1] != contract.input_length:
            raise ExportError(
                f"X shape {arr.shape} != (N, {contract.input_length}) of the contract",
                path=str(npz_path),
                stage="run",
            )
    metrics_path = layout.metrics
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return RunData(
        path=run,
        checkpoint=ckpt,
        model=model,
        contract=contract,
        calib_x=np.ascontiguousarray(calib["X"], dtype=np.float32),
        calib_y=calib["y"].astype(np.int64),
        heldout_x=np.ascontiguousarray(held["X"], dtype=np.float32),
        heldout_y=held["y"].astype(np.int64),
        metrics=metrics,
    )
