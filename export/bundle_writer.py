"""Writing the bundle: manifest.json (schema in ``edge/bundle.py``) and the ``.tar`` archive."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Final

from edge.bundle import MANIFEST_NAME, SCHEMA_VERSION, sha256_file

__all__ = [
    "FILE_NAMES",
    "INTENDED_USE",
    "file_entry",
    "git_commit",
    "write_archive",
    "write_manifest",
]

FILE_NAMES: Final = {  # the names edge/bundle.py documents
    "onnx_fp32": "model_fp32.onnx",
    "onnx_int8": "model_int8.onnx",
    "tflite_fp32": "model_fp32.tflite",
    "tflite_int8": "model_int8.tflite",
}

INTENDED_USE: Final = (
    "Assistive monitoring of affective state (baseline / stress / amusement) from a wrist "
    "wearable, to help carers notice when a resident may need attention. Not a medical "
    "device and not a diagnosis: do not use it to diagnose, treat or rule out any condition, "
    "or as the only basis for a care decision. Accuracy was measured on a research data set "
    "(leave-one-subject-out) and may be lower for a new person until their baseline "
    "calibration is done."
)


def file_entry(
    root: Path,
    key: str,
    fmt: str,
    precision: str,
    io: tuple[dict[str, Any], dict[str, Any]],
    embedding: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest entry of model file ``key``; ``embedding``: its second output's spec."""
    path = root / FILE_NAMES[key]
    extra = {"embedding": embedding} if embedding is not None else {}
    return {
        "path": FILE_NAMES[key],
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "format": fmt,
        "precision": precision,
        "input": io[0],
        "output": io[1],
        **extra,
    }


def git_commit(cwd: Path | None = None) -> str | None:
    """``git rev-parse HEAD`` of ``cwd`` (default: this source tree), None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,  # git on a slow disk; never hang an export on it
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_manifest(root: Path, manifest: dict[str, Any]) -> Path:
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"manifest schema_version must be {SCHEMA_VERSION}")
    path = root / MANIFEST_NAME
    # sorted keys + fixed separators: the same content always gives the same bytes (signable)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def write_archive(root: Path, archive: Path) -> Path:
    """One ``.tar`` of the bundle directory (members ``<dirname>/...``), uncompressed: model
    files are already dense and a Pi extracts a plain tar fastest."""
    with tarfile.open(archive, "w") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=f"{root.name}/{path.relative_to(root).as_posix()}",
                        recursive=False)
    return archive
