"""atheris harness: the JSON a hub reads from disk (edge.bundle, core.contract, calibration).

Input byte 0 picks the target; the rest is the file's bytes:

0. ``manifest.json`` of a bundle whose model files exist -> ``load_bundle`` (then every
   accessor of the loaded bundle); 1. a contract -> ``InputContract.from_dict``;
2. a calibration -> ``Calibration.from_dict``; 3. a stored baseline -> ``CalibrationStore.load``
(returns a baseline or None); 4. ``manifest.sig`` of a bundle checked with a trusted key.

Allowed outcomes: success or ``WearableEdgeError`` (``BundleError``, ``ContractError``,
``CalibrationError``); ``load_bundle`` may raise only ``BundleError``, and a bundle it loads
must answer every accessor (``tests.fakes.bundles.exercise_bundle``, the property tests'
check too). Anything else is a finding.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import atheris
from _common import main, scratch_dir

with atheris.instrument_imports(include=["core", "edge"]):
    from core.contract import InputContract
    from core.errors import WearableEdgeError
    from core.signal import Calibration
    from edge.bundle import MANIFEST_NAME, SIGNATURE_NAME, key_id
    from edge.calibration_store import CalibrationStore
    from tests.fakes.bundles import exercise_bundle, write_small_bundle
    from tests.fakes.inputs import CALIBRATION_DICT, small_contract, store_doc

CONTRACT = small_contract()
SCRATCH = scratch_dir("manifest")
BUNDLE = SCRATCH / "bundle"
MANIFEST = write_small_bundle(BUNDLE)
SIGNED = SCRATCH / "signed"
write_small_bundle(SIGNED)
STORE = CalibrationStore(SCRATCH / "calibration")
STORE.directory.mkdir()


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
        exercise_bundle(BUNDLE)
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
        exercise_bundle(SIGNED, trusted_keys=[SIGNING[0]])


def _seeds() -> list[bytes]:
    return [
        b"\x00" + (BUNDLE / MANIFEST_NAME).read_bytes(),
        b"\x00" + json.dumps(MANIFEST).encode(),
        b"\x01" + json.dumps(CONTRACT.to_dict()).encode(),
        b"\x02" + json.dumps(CALIBRATION_DICT).encode(),
        b"\x03" + json.dumps(store_doc(CALIBRATION_DICT)).encode(),
    ] + ([b"\x04" + SIGNING[1]] if SIGNING else [])


if __name__ == "__main__":
    main("manifest", test_one_input, _seeds())
    sys.exit(0)
