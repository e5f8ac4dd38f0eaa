"""atheris harness: recordings (``core.recording.load_recording``: WESAD .pkl, our .npz).

Input byte 0: even -> the rest is a ``.pkl`` (through the restricted unpickler), odd -> a
``.npz``. Allowed outcomes: a ``Recording`` or ``RecordingError``. The process runs under a
1 GiB address-space limit (``RLIMIT_AS``) on top of libFuzzer's RSS limit: a small file that
makes the loader allocate gigabytes is a finding, and must not hurt the machine meanwhile.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import resource
import sys

import atheris
import numpy as np
from _common import main, scratch_dir

with atheris.instrument_imports(include=["core"]):
    from core.errors import RecordingError
    from core.recording import load_recording

SCRATCH = scratch_dir("recording")
PKL, NPZ = SCRATCH / "S2.pkl", SCRATCH / "r.npz"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    path = PKL if data[0] % 2 == 0 else NPZ
    path.write_bytes(data[1:])
    with contextlib.suppress(RecordingError):
        load_recording(path)


def _wesad(dtype: str) -> dict[str, object]:
    chest = {k: np.zeros((700, c), dtype) for k, c in
             (("ACC", 3), ("ECG", 1), ("EMG", 1), ("EDA", 1), ("Temp", 1), ("Resp", 1))}
    wrist = {"ACC": np.zeros((32, 3), dtype), "BVP": np.zeros((64, 1), dtype),
             "EDA": np.zeros((4, 1), dtype), "TEMP": np.zeros((4, 1), dtype)}
    return {"subject": "S2", "signal": {"chest": chest, "wrist": wrist},
            "label": np.ones(700, np.int32)}


def _npz() -> bytes:
    header = {"format": "wearable-edge-recording", "version": 1, "subject": "S0", "meta": {},
              "signals": {"bvp": {"rate_hz": 8.0, "unit": "a.u.", "channels": ["bvp"]}},
              "labels": {"rate_hz": 4.0, "unit": "code", "channels": ["label"]}}
    buf = io.BytesIO()
    np.savez(buf, header=np.array(json.dumps(header)), sig_bvp=np.zeros((8, 1), np.float32),
             labels=np.ones((4, 1), np.int8))
    return buf.getvalue()


def _seeds() -> list[bytes]:
    return [b"\x00" + pickle.dumps(_wesad("float32"), protocol=2),
            b"\x00" + pickle.dumps(_wesad("int16"), protocol=4),
            b"\x00" + pickle.dumps({"label": [1, 2], "subject": b"S3"}, protocol=0),
            b"\x01" + _npz()]


if __name__ == "__main__":
    limit = 1 << 30
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    main("recording", test_one_input, _seeds())
    sys.exit(0)
