"""Ed25519 signing of bundles, with the ``cryptography`` package.

The signature covers the exact bytes of ``manifest.json``; the manifest holds the sha256
of every model file, so one signature vouches for the whole bundle. The hub verifies it in
``edge.bundle.load_bundle(..., trusted_keys=[PEM public keys])`` and, as the daemon, requires
it (:mod:`edge.signing`).

``edge-export`` signs by default with this host's key (:func:`host_signing_key`: made once,
kept owner-only under ``~/.config/wearable-edge/``); ``edge-export sign BUNDLE [--key FILE]``
signs an existing bundle. :data:`DEMO_PRIVATE_KEY` signs the demo bundles and the tests' toy
bundles: it is in the repository on purpose, so it proves nothing (see its header).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from edge.bundle import MANIFEST_NAME, SIGNATURE_NAME, key_id
from edge.signing import HOST_PRIVATE_NAME, HOST_PUBLIC_NAME, host_key_dir
from export.errors import ExportError

__all__ = ["DEMO_PRIVATE_KEY", "generate_keypair", "host_signing_key", "public_key_pem",
           "sign_bundle", "sign_update"]

# public on purpose: it signs the shipped demo bundles and the tests' toy bundles
DEMO_PRIVATE_KEY = Path(__file__).resolve().parent / "demo_signing_key.pem"


def host_signing_key(directory: Path | None = None) -> tuple[Path, bool]:
    """This host's bundle-signing key (``~/.config/wearable-edge/bundle-signing.pem``),
    made on first use; ``(path, made_now)``. Its public half sits beside it
    (``bundle-signing.pub.pem``): copy that to a hub's ``/etc/wearable-edge/trusted-keys/``."""
    d = directory or host_key_dir()
    private = d / HOST_PRIVATE_NAME
    if private.is_file():
        return private, False
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        generate_keypair(private, d / HOST_PUBLIC_NAME)
    except OSError as e:
        raise ExportError(f"cannot create the signing key: {e.strerror or e} (--key FILE or "
                          "--no-sign)", path=str(private), stage="sign") from e
    return private, True


def generate_keypair(private_path: str | os.PathLike[str], public_path: str | os.PathLike[str]) -> str:
    """Write a new Ed25519 private key (PKCS#8 PEM, mode 0600) and its public key (PEM).

    Returns the key id the hub will log for bundles signed with it.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = key.public_key()
    Path(public_path).write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key_id(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def _load_private(path: str | os.PathLike[str]) -> object:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ExportError(f"cannot load PEM private key: {e}", path=str(path), stage="sign") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ExportError("not an Ed25519 private key", path=str(path), stage="sign")
    return key


def public_key_pem(private_path: str | os.PathLike[str]) -> bytes:
    """The PEM public key of a PEM private key file (what a hub is configured with)."""
    from cryptography.hazmat.primitives import serialization

    key = _load_private(private_path)
    return key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign_bundle(bundle_dir: str | os.PathLike[str], private_path: str | os.PathLike[str]) -> str:
    """Write ``manifest.sig`` for ``bundle_dir/manifest.json``; returns the key id."""
    return _sign(Path(bundle_dir), MANIFEST_NAME, SIGNATURE_NAME, private_path, "bundle")


def sign_update(update_dir: str | os.PathLike[str], private_path: str | os.PathLike[str]) -> str:
    """Write ``update.sig`` for a head update's ``update.json`` (:mod:`edge.updates`), in
    the format of ``manifest.sig``; returns the key id."""
    from edge.updates import UPDATE_NAME, UPDATE_SIGNATURE_NAME

    return _sign(Path(update_dir), UPDATE_NAME, UPDATE_SIGNATURE_NAME, private_path, "head update")


def _sign(root: Path, name: str, sig_name: str, private_path: str | os.PathLike[str],
          what: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = _load_private(private_path)
    try:
        manifest = (root / name).read_bytes()
    except OSError as e:
        raise ExportError(f"not a {what}: no readable {name} ({e.strerror or e})",
                          path=str(root), stage="sign") from e
    signature = key.sign(manifest)  # type: ignore[attr-defined]
    raw = key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kid = key_id(raw)
    sig = {"alg": "Ed25519", "key_id": kid, "signature": base64.b64encode(signature).decode("ascii")}
    (root / sig_name).write_text(json.dumps(sig, indent=2) + "\n")
    return kid
