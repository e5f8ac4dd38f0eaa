"""A simulated strap's beat sensors: one beat series sent as RR packets and a heart rate, period by period.

:class:`BeatSensor` turns a recording's beat series (``core.recording.Beats``) into what a
stock heart-rate strap notifies about once a second: the RR intervals that ended in the
period, as a packet of an ``rr`` beat sensor (PROTOCOL.md, "Beat sensors": timed by the beat
that ends its first interval; intervals in the Heart Rate Service's 1/1024 s), and the heart
rate of the last few beats on an ``hr`` sensor. Beats inside a contact loss are not sent.
:class:`~firmware_bridge.sim.wearable.SimulatedWearable` schedules the periods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from firmware_bridge.protocol import SampleFormat, Samples, SensorInfo

__all__ = ["BEAT_SCALE_S", "HR_OVER_BEATS", "BeatSensor"]

# RR intervals on the wire in the Heart Rate Service's unit: what a stock strap sends
BEAT_SCALE_S: Final = 1.0 / 1024.0
HR_OVER_BEATS: Final = 4  # a strap's heart rate: over its last few beats


class BeatSensor:
    """The ``hr`` (sensor id ``first``) and ``name`` (id ``first + 1``) sensors of one series."""

    def __init__(self, name: str, series: Any, first: int, period_s: float,
                 duration_s: float) -> None:
        self.period_s = period_s
        self.duration_s = duration_s
        keep = np.asarray(series.t_s) < duration_s
        self.t_s = np.asarray(series.t_s, np.float64)[keep]  # (M,) recording time of each beat
        rr = np.asarray(series.rr_s, np.float64)[keep]
        self.raw = np.clip(np.rint(rr / BEAT_SCALE_S), 1, 0xFFFF).astype(np.uint16)[:, None]
        nominal = 1.0 / period_s  # packets come once a period; the rate says no more
        self.hr_info = SensorInfo(first, "hr", "bpm", nominal, 1, SampleFormat.UINT16, 1.0)
        self.info = SensorInfo(first + 1, name, "s", nominal, 1, SampleFormat.UINT16,
                               BEAT_SCALE_S)
        self.seq = 0
        self.hr_seq = 0

    def packets(self, k: int, loop_forever: bool, faults: Any,
                device_time_us: Callable[[float], int]) -> tuple[list[Samples], float | None]:
        """Period ``k`` (counting across loops): its hr and rr packets (none when no beat
        ended in it, or contact was lost) and the recording time of the next period's end."""
        per_lap = max(1, math.ceil(self.duration_s / self.period_s))
        lap, j = divmod(k, per_lap)
        if lap > 0 and not loop_forever:
            return [], None
        lo, hi = j * self.period_s, min((j + 1) * self.period_s, self.duration_s)
        i0, i1 = np.searchsorted(self.t_s, (lo, hi), side="left")
        lap_t = lap * self.duration_s
        out: list[Samples] = []
        lost_at = faults.contact_lost_at_s
        lost = (lost_at is not None and lost_at < lap_t + hi
                and lap_t + lo < lost_at + faults.contact_lost_s)
        if i1 > i0 and not lost:
            recent = self.raw[max(0, i1 - HR_OVER_BEATS):i1, 0].astype(np.float64) * BEAT_SCALE_S
            bpm = np.array([[round(60.0 / float(recent.mean()))]], np.uint16)
            out.append(Samples(self.hr_info.sensor_id, self.hr_seq, device_time_us(lap_t + hi),
                               bpm))
            out.append(Samples(self.info.sensor_id, self.seq,
                               device_time_us(lap_t + float(self.t_s[i0])), self.raw[i0:i1]))
            self.hr_seq = (self.hr_seq + 1) & 0xFFFF
            self.seq = (self.seq + 1) & 0xFFFF
        nxt = k + 1
        if nxt >= per_lap and not loop_forever:
            return out, None
        lap_n, j_n = divmod(nxt, per_lap)
        return out, lap_n * self.duration_s + min((j_n + 1) * self.period_s, self.duration_s)
