"""What a simulated wearable must have sent: every sample of its recording, in order.

Shared by the simulator's playback and transport tests.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from core.recording import Recording
from firmware_bridge.protocol import Message, Samples
from firmware_bridge.sim import SimulatedWearable


def expected_raw(w: SimulatedWearable, rec: Recording, kind: str) -> np.ndarray:
    """The wire values of ``kind`` the wearable should send for ``rec``."""
    info = next(s for s in w.hello.sensors if s.kind == kind)
    return info.to_raw(np.asarray(rec.signals[kind].values, np.float64))


def by_sensor(msgs: list[Message]) -> dict[int, list[Samples]]:
    """The SAMPLES messages of each sensor, in arrival order."""
    out: dict[int, list[Samples]] = defaultdict(list)
    for m in msgs:
        if isinstance(m, Samples):
            out[m.sensor_id].append(m)
    return out


def check_every_sample_in_order(w: SimulatedWearable, rec: Recording, msgs: list[Message]) -> None:
    """Every sample of ``rec`` arrived once, in order, stamped with its device time."""
    by = by_sensor(msgs)
    for info in w.hello.sensors:
        packets = by[info.sensor_id]
        assert [p.seq for p in packets] == list(range(len(packets)))
        got = np.concatenate([p.raw for p in packets])
        np.testing.assert_array_equal(got, expected_raw(w, rec, info.kind))
        # each packet is stamped with its first sample's device time
        starts = np.cumsum([0] + [p.count for p in packets[:-1]])
        want_t = [w.device_time_us(i / info.rate_hz) for i in starts]
        assert [p.t_device_us for p in packets] == want_t
