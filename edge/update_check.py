"""Checking a model update before it may run: its signature, every hash, and that it fits the running model.

An update (:mod:`edge.updates` takes them from the hub's update folder) is one of:

- a **head update**: a directory with ``update.json``, ``update.sig`` and ``head.npz`` (a
  new shared classifier head, e.g. from a federated round; ``edge-fleet`` or
  :func:`export.head_update.write_head_update` write it). ``update.json``::

      {"schema_version": 1, "kind": "head", "model_id": str, "version": str,
       "base_model_version": str, "class_names": [...], "embedding_dim": D,
       "contract": InputContract.to_dict(), "head": {"path": "head.npz", "sha256", "size"},
       "created": ISO-8601}

  ``update.sig`` has the format of a bundle's ``manifest.sig`` (Ed25519 over the exact bytes
  of ``update.json``), so the keys a hub trusts for bundles vouch for heads too;
- a **bundle update**: a bundle directory or ``.tar`` (:mod:`edge.bundle`), signed as any
  (verified by :func:`edge.signing.load_trusted_bundle`).

Compatibility with the model it replaces: the same model id, input contract, class names and
embedding size (and, for a head, the body version it was trained on, since an embedding
means something only for the body that made it). Anything else raises :class:`UpdateError`,
whose message is the one line the hub logs and puts in its ``update_refused`` event.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.contract import InputContract
from core.errors import ContractError
from edge.bundle import Bundle, verify_manifest_signature
from edge.errors import BundleError, EdgeError

__all__ = [
    "UPDATE_NAME",
    "UPDATE_SCHEMA",
    "UPDATE_SIGNATURE_NAME",
    "HeadUpdate",
    "UpdateError",
    "check_bundle_compatible",
    "check_head_compatible",
    "load_head_update",
    "update_words",
]

log = logging.getLogger(__name__)

UPDATE_NAME: Final = "update.json"
UPDATE_SIGNATURE_NAME: Final = "update.sig"
UPDATE_SCHEMA: Final = 1
_MAX_UPDATE_JSON: Final = 1 << 20  # an update.json is a few KB of JSON


class UpdateError(EdgeError):
    """An update refused: ``reason`` is ``signature``, ``hash``, ``malformed`` or
    ``incompatible``; the message is the one line the log and the event say."""

    def __init__(self, message: str, *, path: str, reason: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class HeadUpdate:
    """A verified head update."""

    source: Path
    model_id: str
    version: str
    base_model_version: str
    class_names: tuple[str, ...]
    embedding_dim: int
    contract: InputContract
    W: np.ndarray  # (D, K)
    b: np.ndarray  # (K,)
    signed_by: str | None


def load_head_update(
    path: Path, trusted_keys: list[Any], *, allow_unsigned: bool = False
) -> HeadUpdate:
    """Verify the head update directory ``path`` (see the module docstring)."""
    where = str(path)
    try:
        raw = (path / UPDATE_NAME).read_bytes()[: _MAX_UPDATE_JSON + 1]
    except OSError as e:
        raise UpdateError(
            f"no readable {UPDATE_NAME} ({e.strerror or e})", path=where, reason="malformed"
        ) from e
    if len(raw) > _MAX_UPDATE_JSON:
        raise UpdateError(f"{UPDATE_NAME} is too large", path=where, reason="malformed")
    signed_by = _check_signature(path, raw, trusted_keys, allow_unsigned)
    try:
        m = json.loads(raw.decode("utf-8"))
        if m.get("schema_version") != UPDATE_SCHEMA or m.get("kind") != "head":
            raise ValueError(f"not a head update of schema {UPDATE_SCHEMA}")
        head = m["head"]
        rel = Path(str(head["path"]))
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError("head path leaves the update")
        data = (path / rel).read_bytes()
        contract = InputContract.from_dict(m["contract"])
        fields = (
            str(m["model_id"]),
            str(m["version"]),
            str(m["base_model_version"]),
            tuple(str(c) for c in m["class_names"]),
            int(m["embedding_dim"]),
        )
        size, sha = int(head["size"]), str(head["sha256"]).lower()
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        OSError,
        RecursionError,
        ContractError,
    ) as e:
        raise UpdateError(f"malformed update: {e}", path=where, reason="malformed") from e
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
        raise UpdateError(
            "head.npz does not match its sha256 in update.json (changed or damaged)",
            path=where,
            reason="hash",
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            W, b = z["W"].astype(np.float32), z["b"].astype(np.float32)
    except (ValueError, KeyError, OSError, EOFError) as e:
        raise UpdateError(f"head.npz is not a head: {e}", path=where, reason="malformed") from e
    if (
        W.shape != (fields[4], len(fields[3]))
        or b.shape != (len(fields[3]),)
        or not (np.isfinite(W).all() and np.isfinite(b).all())
    ):
        raise UpdateError(
            f"head arrays {W.shape}, {b.shape} do not match its embedding size "
            f"{fields[4]} and {len(fields[3])} classes",
            path=where,
            reason="malformed",
        )
    return HeadUpdate(path, *fields, contract, W, b, signed_by)


def _check_signature(path: Path, raw: bytes, keys: list[Any], allow_unsigned: bool) -> str | None:
    sig_path = path / UPDATE_SIGNATURE_NAME
    if not sig_path.is_file():
        if allow_unsigned:
            log.warning("LOADING AN UNSIGNED UPDATE (%s) because of --allow-unsigned", path)
            return None
        raise UpdateError(
            "unsigned: a model update must be signed by a key this hub trusts",
            path=str(path),
            reason="signature",
        )
    try:
        sig = json.loads(sig_path.read_text("utf-8"))
        signature = base64.b64decode(sig["signature"], validate=True)
        claimed = str(sig.get("key_id", ""))
        if sig.get("alg") != "Ed25519":
            raise ValueError(f"unsupported alg {sig.get('alg')!r}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise UpdateError(
            f"malformed {UPDATE_SIGNATURE_NAME}: {e}", path=str(path), reason="signature"
        ) from e
    if not keys:
        raise UpdateError("no trusted keys to verify it with", path=str(path), reason="signature")
    try:
        return verify_manifest_signature(raw, signature, claimed, keys, where=str(sig_path))
    except BundleError as e:
        raise UpdateError(
            f"signature does not verify: {update_words(e)}", path=str(path), reason="signature"
        ) from e


def update_words(e: BundleError) -> str:
    """A BundleError's message without the path prefix it repeats."""
    text = str(e)
    return text[len(e.path) + 2 :] if text.startswith(f"{e.path}: ") else text


def _mismatch(model_id: str, contract: object, class_names: Sequence[str], running: Bundle) -> str:
    """Why a model (or a head trained on one) cannot stand in for ``running``; "" when it can."""
    if model_id != running.model_id:
        return f"it is for model {model_id!r}, this model is {running.model_id!r}"
    if list(class_names) != list(running.class_names):  # (part of the contract: said first)
        return (
            f"its classes {', '.join(class_names)} differ from the model's "
            f"{', '.join(running.class_names)}"
        )
    if contract != running.contract:
        return "its input contract differs from the running model's"
    return ""


def check_head_compatible(update: HeadUpdate, bundle: Bundle) -> None:
    """UpdateError (``incompatible``) unless ``update`` fits the running ``bundle``."""
    why = _mismatch(update.model_id, update.contract, update.class_names, bundle)
    if why:
        raise UpdateError(f"incompatible: {why}", path=str(update.source), reason="incompatible")
    if bundle.embedding_dim is None:
        why = "the running bundle has no embedding output to apply a head to"
    elif update.embedding_dim != bundle.embedding_dim:
        why = (
            f"its embedding size {update.embedding_dim} differs from the model's "
            f"{bundle.embedding_dim}"
        )
    elif update.base_model_version != bundle.model_version:
        why = (
            f"it was trained on the embeddings of model version {update.base_model_version},"
            f" this hub runs {bundle.model_version}"
        )
    if why:
        raise UpdateError(f"incompatible: {why}", path=str(update.source), reason="incompatible")


def check_bundle_compatible(new: Bundle, old: Bundle) -> None:
    """UpdateError (``incompatible``) unless bundle ``new`` may replace ``old``."""
    why = _mismatch(new.model_id, new.contract, new.class_names, old)
    if not why and old.embedding_dim is not None and new.embedding_dim != old.embedding_dim:
        why = f"its embedding size {new.embedding_dim} differs from the model's {old.embedding_dim}"
    if why:
        raise UpdateError(f"incompatible: {why}", path=str(new.source), reason="incompatible")
