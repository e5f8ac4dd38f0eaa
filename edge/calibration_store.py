"""Per-resident baselines kept on the hub, so a restart does not repeat the enrollment.

One JSON file per resident under ``STATE_DIR/calibration/`` (directory 0700, files 0600:
a baseline is personal data). A file records which input contract it was made for (a
fingerprint of modalities, units, rates, channels and normalization); a baseline made for
another model's inputs is not reused. Writes are atomic (temporary file + rename) so a
power cut leaves the old baseline or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from core.contract import InputContract
from core.errors import CalibrationError
from edge.atomic_json import write_json_atomic

if TYPE_CHECKING:
    from core.signal import Calibration

__all__ = ["CalibrationStore", "contract_fingerprint"]

log = logging.getLogger(__name__)

STORE_VERSION: Final = 1  # bump when the file layout changes
_SAFE: Final = re.compile(r"[^A-Za-z0-9_.-]")  # file-name-safe resident ids


def contract_fingerprint(contract: InputContract) -> str:
    """What a baseline depends on: the modalities as measured and how they are normalized."""
    key = {
        "modalities": [
            {"name": m.name, "unit": m.unit, "rate_hz": m.rate_hz, "channels": list(m.channels)}
            for m in contract.modalities
        ],
        "normalization": contract.normalization.kind,
        "calibration_s": contract.normalization.calibration_s,
    }
    blob = json.dumps(key, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class CalibrationStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, resident: str) -> Path:
        safe = _SAFE.sub("_", resident) or "_"
        if safe != resident:  # two ids that sanitize alike must not share a file
            safe += "-" + hashlib.sha256(resident.encode()).hexdigest()[:8]
        return self.directory / f"{safe}.json"

    def load(self, resident: str, contract: InputContract) -> Calibration | None:
        """The stored baseline of ``resident`` for this contract, or None (logged why)."""
        from core.signal import Calibration

        path = self.path_for(resident)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as e:  # RecursionError: "[[[[..." nesting
            log.warning("calibration of %s at %s is unreadable (%s); enrolling again",
                        resident, path, e)
            return None
        if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
            log.warning("calibration file %s has an unknown layout; enrolling again", path)
            return None
        if data.get("fingerprint") != contract_fingerprint(contract):
            log.info("stored calibration of %s was made for other model inputs; enrolling again",
                     resident)
            return None
        try:
            return Calibration.from_dict(data["calibration"])
        except (CalibrationError, KeyError, TypeError, ValueError) as e:
            log.warning("calibration file %s is malformed (%s); enrolling again", path, e)
            return None

    def save(self, resident: str, calibration: Calibration, contract: InputContract) -> Path:
        """Write atomically, owner-only. Raises OSError if the state directory is unusable."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path_for(resident)
        doc: dict[str, Any] = {
            "version": STORE_VERSION,
            "resident": resident,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "fingerprint": contract_fingerprint(contract),
            "calibration": calibration.to_dict(),
        }
        write_json_atomic(path, doc)
        return path

    def delete(self, resident: str) -> bool:
        try:
            self.path_for(resident).unlink()
        except FileNotFoundError:
            return False
        return True
