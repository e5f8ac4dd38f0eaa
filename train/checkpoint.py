"""Checkpoint dicts: weights with the ``model_args`` and contract that rebuild them, and provenance.

A checkpoint rebuilds its model alone (``Student(StudentConfig(**ckpt["model_args"]))``) and
says which packed input it reads (``contract``); ``git_commit``, ``created`` and ``dataset``
say where it came from. Where the files go: :class:`core.runs.RunLayout`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core.contract import InputContract

__all__ = ["dataset_info", "git_commit", "make_checkpoint"]


def git_commit() -> str | None:
    """The commit of the code that trained the model (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def dataset_info(kind: str, path: Path) -> dict[str, Any]:
    """Kind and path of the training data, and the sha256 of a single-file data set."""
    d: dict[str, Any] = {"kind": kind, "path": str(path)}
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        d["sha256"] = h.hexdigest()
    return d


def make_checkpoint(
    state: Mapping[str, torch.Tensor],
    model_args: dict[str, Any],
    contract: InputContract,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The dict ``torch.save`` writes: rebuild arguments, contract, weights, ``extra``, provenance."""
    return {
        "model_args": model_args,
        "contract": contract.to_dict(),
        "state_dict": dict(state),
        **extra,
        "git_commit": git_commit(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
