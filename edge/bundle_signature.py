"""Ed25519 signatures of a bundle's manifest (and of a head update's, :mod:`edge.updates`): checking them against trusted keys.

``manifest.sig`` is JSON: ``{"alg": "Ed25519", "key_id": <sha256 hex of the raw public key,
first 16 chars>, "signature": <base64 of the 64-byte signature over manifest.json's bytes>}``.
Verification needs the ``cryptography`` package (extra ``signing``), imported only when a
signature is checked. :mod:`edge.bundle` re-exports what it uses from here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Final

from edge.errors import BundleError

__all__ = ["SIGNATURE_NAME", "check_signature", "key_id", "verify_manifest_signature"]

_LOG = logging.getLogger("edge.bundle")
SIGNATURE_NAME: Final = "manifest.sig"


def key_id(raw_public_key: bytes) -> str:
    """Short stable id of an Ed25519 public key (its raw 32 bytes)."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def check_signature(
    root: Path,
    manifest_bytes: bytes,
    keys: list[str | bytes | os.PathLike[str]],
    require: bool,
) -> str | None:
    sig_path = root / SIGNATURE_NAME
    if not keys:
        if require:
            raise BundleError(
                "a signature is required but no trusted public keys are configured",
                path=str(sig_path),
                reason="no_trusted_keys",
            )
        if sig_path.exists():
            _LOG.info("%s present but no trusted keys configured: signature not checked", sig_path)
        return None
    if not sig_path.is_file():
        raise BundleError(
            "bundle is unsigned: sign it with `edge-export sign BUNDLE` (or, for development "
            "only, run with --allow-unsigned)",
            path=str(sig_path),
            reason="unsigned",
        )
    try:
        sig = json.loads(sig_path.read_text("utf-8"))
        if sig.get("alg") != "Ed25519":
            raise ValueError(f"unsupported alg {sig.get('alg')!r}")
        signature = base64.b64decode(sig["signature"], validate=True)
        claimed = str(sig.get("key_id", ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise BundleError(
            f"malformed signature file: {e}", path=str(sig_path), reason="signature"
        ) from e
    return verify_manifest_signature(manifest_bytes, signature, claimed, keys, where=str(sig_path))


def verify_manifest_signature(
    manifest_bytes: bytes,
    signature: bytes,
    claimed_key_id: str,
    keys: list[str | bytes | os.PathLike[str]],
    *,
    where: str,
) -> str:
    """Return the key id of the trusted key that verifies ``signature``; else BundleError."""
    try:  # lazily: only hubs that check signatures need the extra
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as e:
        raise BundleError(
            "checking bundle signatures needs the 'cryptography' package: "
            "pip install 'wearable-edge[signing]' (or pip install cryptography)",
            path=where,
            reason="crypto_missing",
        ) from e
    for k in keys:
        pem = _key_bytes(k, where)
        try:
            public = serialization.load_pem_public_key(pem)
        except ValueError as e:
            raise BundleError(
                f"trusted key is not a PEM public key: {e}", path=where, reason="signature"
            ) from e
        if not isinstance(public, Ed25519PublicKey):
            raise BundleError("trusted key is not an Ed25519 key", path=where, reason="signature")
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        try:
            public.verify(signature, manifest_bytes)
        except InvalidSignature:
            continue
        return key_id(raw)
    raise BundleError(
        f"signature (key id {claimed_key_id or '?'}) does not verify against any of the "
        f"{len(keys)} trusted key(s): manifest changed, or signed by a key this hub does not "
        "trust (trust its .pub.pem with --trusted-key FILE or /etc/wearable-edge/trusted-keys/)",
        path=where,
        reason="signature",
    )


def _key_bytes(k: str | bytes | os.PathLike[str], where: str) -> bytes:
    if isinstance(k, bytes):
        return k
    if isinstance(k, str) and k.lstrip().startswith("-----BEGIN"):
        return k.encode("ascii")
    try:
        return Path(k).read_bytes()
    except OSError as e:
        raise BundleError(
            f"cannot read trusted key {k!s}: {e}", path=where, reason="signature"
        ) from e
