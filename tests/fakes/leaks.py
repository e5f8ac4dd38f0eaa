"""Finds a wearable's raw samples in whatever a hub wrote (the privacy tests' search).

Runs of consecutive samples written as text in any number format, or as int16/uint16/float32
bytes, and single values as float64 bytes. Shared by tests/e2e/test_privacy.py and
tests/e2e/test_mqtt_privacy.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from firmware_bridge.sim import SimulatedWearable

RUN = 4  # consecutive samples that make a match: chance collisions are negligible
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


class LeakDetector:
    """Finds a wearable's raw samples in text or binary output."""

    def __init__(self, recording_path: Path) -> None:
        from core.recording import load_recording

        wearable = SimulatedWearable(load_recording(recording_path).wrist_only(), speed=1.0)
        self.text_runs: set[tuple[float, ...]] = set()
        self.byte_runs: list[bytes] = []
        self.singles: list[bytes] = []
        self.decimals: list[int] = []
        for info in wearable.hello.sensors:
            raw = info.to_raw(wearable.recording.signals[info.kind].values)  # (N, C) wire
            phys = info.to_physical(raw).astype(np.float64)  # (N, C) as the hub sees them
            dec = max(0, int(np.ceil(-np.log10(info.scale))))  # digits the wire resolves
            self.decimals.append(dec)
            for c in range(raw.shape[1]):
                w, p = raw[:, c], phys[:, c]
                for i in range(0, len(w) - RUN, RUN):
                    self.text_runs.add(tuple(np.round(p[i:i + RUN], dec)))
                    self.text_runs.add(tuple(float(v) for v in w[i:i + RUN]))  # wire integers
                    if np.count_nonzero(w[i:i + RUN]) == RUN:
                        self.byte_runs.append(w[i:i + RUN].tobytes())  # int16/uint16 LE
                        self.byte_runs.append(p[i:i + RUN].astype(np.float32).tobytes())
                    if p[i] != round(p[i]):  # a float64 is 8 distinctive bytes on its own
                        self.singles.append(np.float64(p[i]).tobytes())
        self.decimals = sorted(set(self.decimals))

    def _number_runs(self, data: bytes) -> Iterator[tuple[float, ...]]:
        nums = [float(m.group()) for m in _NUMBER.finditer(data)]
        for dec in self.decimals:
            r = [round(x, dec) for x in nums]
            for i in range(len(r) - RUN + 1):
                yield tuple(r[i:i + RUN])

    def find(self, data: bytes) -> list[str]:
        """What of the samples ``data`` holds (empty: nothing)."""
        hits = [f"text {run}" for run in self._number_runs(data) if run in self.text_runs]
        hits += [f"bytes {b.hex()}" for b in self.byte_runs if b in data]
        hits += [f"float64 {b.hex()}" for b in self.singles if b in data]
        return hits
