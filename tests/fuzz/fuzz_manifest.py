"""atheris harness: the JSON a hub reads from disk (edge.bundle, core.contract, calibration).

Input byte 0 picks the target; the rest is the file's bytes:

0. ``manifest.json`` of a bundle whose model files exist -> ``load_bundle`` (then every
   accessor of the loaded bundle); 1. a contract -> ``InputContract.from_dict``;
2. a calibration -> ``Calibration.from_dict``; 3. a stored baseline -> ``CalibrationStore.load``
(returns a baseline or None); 4. ``manifest.sig`` of a bundle checked with a trusted key.

Allowed outcomes: success or ``WearableEdgeError`` (``BundleError``, ``ContractError``,
``CalibrationError``). Anything else is a finding.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import atheris
import numpy as np
from _common import main, scratch_dir

with atheris.instrument_imports(include=["core", "edge"]):
    from core.contract import InputContract, Modality, Normalization
    from core.errors import WearableEdgeError
    from core.signal import Calibration
    from edge.bundle import MANIFEST_NAME, SIGNATURE_NAME, key_id, load_bundle
    from edge.calibration_store import CalibrationStore

CONTRACT = InputContract(
    modalities=(
        Modality("bvp", "a.u.", 8.0, ("bvp",)),
        Modality("acc", "g", 4.0, ("x", "y", "z"), valid_range=(-8.0, 8.0)),
    ),
    class_names=("baseline", "stress", "amusement"),
    window_s=4.0,
    hop_s=1.0,
    normalization=Normalization(calibration_s=10.0),
)
FILES = {"onnx_fp32": "model_fp32.onnx", "onnx_int8": "model_int8.onnx",
         "tflite_fp32": "model_fp32.tflite", "tflite_int8": "model_int8.tflite"}


def write_bundle(root: Path) -> dict[str, Any]:
    """A valid bundle with random-byte model files (the loader never parses them)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {}
    for key, name in FILES.items():
        data = rng.integers(0, 256, 256, dtype=np.uint8).tobytes()
        (root / name).write_bytes(data)
        fmt, precision = key.split("_")
        tin: dict[str, Any] = {"name": "x", "shape": [1, CONTRACT.input_length], "dtype": "float32"}
        if precision == "int8":
            tin = {**tin, "dtype": "int8", "scale": 0.05, "zero_point": 0}
        files[key] = {
            "path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "format": fmt, "precision": precision, "input": tin,
            "output": {"name": "logits", "shape": [1, CONTRACT.n_classes], "dtype": "float32"},
            "accuracy": {"acceptable": True},
        }
    manifest = {
        "schema_version": 1, "model_id": "fuzz", "model_version": "0",
        "class_names": list(CONTRACT.class_names), "contract": CONTRACT.to_dict(),
        "calibration_required": True, "files": files, "recommended": "tflite_int8",
    }
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    return manifest


def exercise(path: Path, **kw: Any) -> None:
    """load_bundle; on success every accessor must work too."""
    try:
        b = load_bundle(path, **kw)
    except WearableEdgeError:
        return
    with b:
        _ = (b.model_id, b.model_version, b.class_names, b.calibration_required, b.recommended)
        _ = repr(b)
        for key in b.files:
            b.read_verified(key)


SCRATCH = scratch_dir("manifest")
BUNDLE = SCRATCH / "bundle"
MANIFEST = write_bundle(BUNDLE)
SIGNED = SCRATCH / "signed"
write_bundle(SIGNED)
STORE = CalibrationStore(SCRATCH / "calibration")
STORE.directory.mkdir()
CALIBRATION = Calibration(center={"bvp": [0.0], "acc": [0.1, 0.2, 0.9]},
                          scale={"bvp": [1.0], "acc": [0.1, 0.1, 0.1]}, source="fuzz").to_dict()


def _signing() -> tuple[bytes, bytes] | None:
    """A trusted public key (PEM) and a valid manifest.sig for SIGNED (None: no cryptography)."""
    import base64

    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:  # a hub install without the `signing` extra: target 4 is skipped
        return None

    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sig = private.sign((SIGNED / MANIFEST_NAME).read_bytes())
    doc = {"alg": "Ed25519", "key_id": key_id(raw), "signature": base64.b64encode(sig).decode()}
    return pem, json.dumps(doc).encode()


SIGNING = _signing()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # the harness's own parse: not a finding
        return None


def test_one_input(data: bytes) -> None:
    if not data:
        return
    which, rest = data[0] % (5 if SIGNING else 4), data[1:]
    if which == 0:
        (BUNDLE / MANIFEST_NAME).write_bytes(rest)
        exercise(BUNDLE)
    elif which == 1:
        with contextlib.suppress(WearableEdgeError):
            InputContract.from_dict(_json(rest))
    elif which == 2:
        with contextlib.suppress(WearableEdgeError):
            Calibration.from_dict(_json(rest))
    elif which == 3:
        STORE.path_for("r1").write_bytes(rest)
        got = STORE.load("r1", CONTRACT)
        assert got is None or isinstance(got, Calibration)
    else:
        assert SIGNING is not None
        (SIGNED / SIGNATURE_NAME).write_bytes(rest)
        exercise(SIGNED, trusted_keys=[SIGNING[0]])


def _seeds() -> list[bytes]:
    from edge.calibration_store import contract_fingerprint

    store_doc = {"version": 1, "resident": "r1", "fingerprint": contract_fingerprint(CONTRACT),
                 "calibration": CALIBRATION}
    return [
        b"\x00" + (BUNDLE / MANIFEST_NAME).read_bytes(),
        b"\x00" + json.dumps(MANIFEST).encode(),
        b"\x01" + json.dumps(CONTRACT.to_dict()).encode(),
        b"\x02" + json.dumps(CALIBRATION).encode(),
        b"\x03" + json.dumps(store_doc).encode(),
    ] + ([b"\x04" + SIGNING[1]] if SIGNING else [])


if __name__ == "__main__":
    main("manifest", test_one_input, _seeds())
    sys.exit(0)
