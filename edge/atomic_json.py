"""Replace a small JSON file atomically, owner-only and durably: one implementation.

The hub's state files (calibration baselines, what model updates serve) must never be seen
half-written, even across a power cut: written to a temporary file beside the target (mode
0600 from the start: they describe residents or what decides for them), flushed to disk,
then renamed over it. A failed write leaves the old file as it was and no temporary file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["write_json_atomic"]


def write_json_atomic(path: Path, doc: Any) -> None:
    """Replace ``path`` with ``doc`` as JSON (0600, fsynced, renamed in). Raises OSError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
