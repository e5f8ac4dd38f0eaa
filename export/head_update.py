"""Writing a head update for hubs: ``head.npz`` and ``update.json`` in a folder, signed (format in :mod:`edge.update_check`).

A federation round (or anyone retraining the shared head) calls :func:`write_head_update`
with the bundle the hubs run, since a head is only meaningful for the body whose embedding
it reads; the hub refuses it for any other model version, contract, class list or
embedding size. Needs numpy and ``cryptography`` only (no torch).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from edge.bundle import Bundle
from edge.update_check import UPDATE_NAME, UPDATE_SCHEMA
from export.errors import ExportError
from export.signing import sign_update

__all__ = ["write_head_update"]


def write_head_update(
    out: str | os.PathLike[str],
    W: np.ndarray,
    b: np.ndarray,
    *,
    bundle: Bundle,
    version: str,
    sign_key: str | os.PathLike[str] | None,
) -> Path:
    """Write the head update folder ``out`` (W (D, K), b (K,) for ``bundle``'s body), signed
    with ``sign_key`` (None: unsigned, which a hub refuses unless --allow-unsigned).

    Written aside (``out.partial``) and renamed: a hub watching the folder never sees half."""
    dest = Path(out)
    W = np.asarray(W, np.float32)
    b = np.asarray(b, np.float32)
    D, K = bundle.embedding_dim, len(bundle.class_names)
    if D is None:
        raise ExportError(
            "the bundle has no embedding output: no head applies to it",
            path=str(bundle.source),
            stage="head_update",
        )
    if W.shape != (D, K) or b.shape != (K,):
        raise ExportError(
            f"head {W.shape}, {b.shape} does not fit the bundle's ({D}, {K})",
            path=str(dest),
            stage="head_update",
        )
    if dest.exists():
        raise ExportError("already exists", path=str(dest), stage="head_update")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    buf = io.BytesIO()
    np.savez(buf, W=W, b=b)
    data = buf.getvalue()
    (tmp / "head.npz").write_bytes(data)
    manifest = {
        "schema_version": UPDATE_SCHEMA,
        "kind": "head",
        "model_id": bundle.model_id,
        "version": version,
        "base_model_version": bundle.model_version,
        "class_names": list(bundle.class_names),
        "embedding_dim": D,
        "contract": bundle.contract.to_dict(),
        "head": {"path": "head.npz", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    (tmp / UPDATE_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if sign_key is not None:
        sign_update(tmp, sign_key)
    tmp.rename(dest)
    return dest
