"""atheris harness: recordings (``core.recording.load_recording``: WESAD .pkl, our .npz).

Input byte 0: even -> the rest is a ``.pkl`` (through the restricted unpickler), odd -> a
``.npz``. Allowed outcomes: a ``Recording`` or ``RecordingError``. The process runs under a
1 GiB address-space limit (``RLIMIT_AS``) on top of libFuzzer's RSS limit: a small file that
makes the loader allocate gigabytes is a finding, and must not hurt the machine meanwhile.
"""

from __future__ import annotations

import contextlib
import pickle
import resource
import sys

import atheris
import numpy as np
from _common import main, scratch_dir

with atheris.instrument_imports(include=["core"]):
    from core.errors import RecordingError
    from core.recording import load_recording
    from tests.fakes.inputs import recording_npz, tiny_wesad

SCRATCH = scratch_dir("recording")
PKL, NPZ = SCRATCH / "S2.pkl", SCRATCH / "r.npz"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    path = PKL if data[0] % 2 == 0 else NPZ
    path.write_bytes(data[1:])
    with contextlib.suppress(RecordingError):
        load_recording(path)


def _seeds() -> list[bytes]:
    return [b"\x00" + pickle.dumps(tiny_wesad(np.float32), protocol=2),
            b"\x00" + pickle.dumps(tiny_wesad(np.int16), protocol=4),
            b"\x00" + pickle.dumps({"label": [1, 2], "subject": b"S3"}, protocol=0),
            b"\x01" + recording_npz()]


if __name__ == "__main__":
    limit = 1 << 30
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    main("recording", test_one_input, _seeds())
    sys.exit(0)
