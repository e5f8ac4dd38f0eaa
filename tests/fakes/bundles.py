"""Model bundles without exporting: a valid manifest over random-byte model files, archives
of them, and what every loaded bundle must answer.

No torch: the atheris harnesses of tests/fuzz/ run on the hub install and use these too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core.contract import InputContract
from edge.bundle import HEAD_NAME, load_bundle
from edge.errors import BundleError
from export.bundle_writer import FILE_NAMES, INTENDED_USE, write_manifest
from tests.fakes.inputs import small_contract


def write_fake_bundle(
    root: Path,
    contract: InputContract,
    *,
    file_size: int = 2048,
    model_id: str = "fake",
    embedding_dim: int | None = 8,
) -> dict[str, Any]:
    """A bundle directory whose "model files" are random bytes and whose manifest is
    valid: for testing the loader's verification without exporting (no torch needed).
    With ``embedding_dim`` every file declares an ``embedding`` output of that size and the
    bundle carries a real ``head.npz`` (random W, b); None writes a bundle from before
    personalization. Returns the manifest written."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {}
    for key, name in FILE_NAMES.items():
        data = rng.integers(0, 256, file_size, dtype=np.uint8).tobytes()
        (root / name).write_bytes(data)
        fmt, precision = key.split("_")
        tensor_in: dict[str, Any] = {"name": "x", "shape": [1, contract.input_length], "dtype": "float32"}
        if key == "tflite_int8":
            tensor_in = {**tensor_in, "dtype": "int8", "scale": 0.05, "zero_point": 0}
        files[key] = {
            "path": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "format": fmt,
            "precision": precision,
            "input": tensor_in,
            "output": {"name": "logits", "shape": [1, contract.n_classes], "dtype": "float32"},
            "accuracy": {"acceptable": True},
        }
        if embedding_dim is not None:
            files[key]["embedding"] = {"name": "embedding", "shape": [1, embedding_dim],
                                       "dtype": "float32"}
    manifest = {
        "schema_version": 1,
        "model_id": model_id,
        "model_version": "0",
        "created": "2025-01-01T00:00:00+00:00",
        "git_commit": None,
        "dataset": {"kind": "toy"},
        "intended_use": INTENDED_USE,
        "class_names": list(contract.class_names),
        "contract": contract.to_dict(),
        "calibration_required": True,
        "files": files,
        "recommended": "tflite_int8",
        "quantization": {},
        "macs": 0,
        "params": 0,
        "metrics": {},
    }
    if embedding_dim is not None:
        manifest["outputs"] = {"logits": contract.n_classes, "embedding": embedding_dim}
        manifest["head"] = write_fake_head(root, embedding_dim, contract.n_classes)
    write_manifest(root, manifest)
    return manifest


def write_fake_head(root: Path, dim: int, n_classes: int, *, seed: int = 0) -> dict[str, Any]:
    """``root/head.npz`` with random ``W`` (dim, n_classes) and ``b``; its manifest entry."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    np.savez(buf, W=rng.normal(0, 0.3, (dim, n_classes)).astype(np.float32),
             b=np.zeros(n_classes, np.float32))
    data = buf.getvalue()
    (root / HEAD_NAME).write_bytes(data)
    return {"path": HEAD_NAME, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def signing_keys(directory: Path) -> tuple[Path, Path, Path]:
    """Two Ed25519 key pairs in ``directory``: (private key, its public key, the other's
    public key) -- a signer and a key the hub may trust instead of it."""
    from export.signing import generate_keypair  # needs cryptography (the signing extra)

    generate_keypair(directory / "a.pem", directory / "a.pub.pem")
    generate_keypair(directory / "b.pem", directory / "b.pub.pem")
    return directory / "a.pem", directory / "a.pub.pem", directory / "b.pub.pem"


def write_small_bundle(root: Path) -> dict[str, Any]:
    """The fuzz tests' base bundle: the small contract, small random-byte model files."""
    return write_fake_bundle(root, small_contract(), file_size=512, model_id="fuzz")


def exercise_bundle(path: Path, **kw: Any) -> None:
    """Load ``path`` (``kw``: load_bundle's options); a loaded bundle's accessors must not
    raise either. Only a :class:`BundleError` may refuse it."""
    try:
        b = load_bundle(path, **kw)
    except BundleError:
        return
    with b:
        _ = (b.model_id, b.model_version, b.class_names, b.calibration_required, b.recommended)
        _ = repr(b)
        for key in b.files:
            assert b.path_of(key).is_file()
            b.read_verified(key)


def bundle_archive(root: Path, mode: str = "w", extra: tarfile.TarInfo | None = None) -> bytes:
    """The bundle directory ``root`` as a tar archive (``mode``: "w", "w:gz", "w:xz", ...)
    under ``bundle/``, with one ``extra`` member (a link, a path leaving it) if given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        tar.add(root, arcname="bundle")
        if extra is not None:
            tar.addfile(extra)
    return buf.getvalue()


def tar_bytes(members: list[tuple[str, bytes, bytes, str]]) -> bytes:
    """A tar of ``(name, kind, payload, link)`` members, whatever they are."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.linkname = link
                tar.addfile(info)
    return buf.getvalue()


@contextlib.contextmanager
def private_tempdir(path: Path) -> Iterator[Path]:
    """Point ``tempfile`` (where load_bundle extracts archives) at an empty ``path``."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    saved = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = saved
