"""Device seconds to hub wall-clock seconds: the ``t`` of every record a device's data makes."""

from __future__ import annotations

import time

from firmware_bridge.protocol import TimeSync
from firmware_bridge.timesync import ClockMapper

__all__ = ["TimeBase"]


class TimeBase:
    """Device seconds -> hub wall-clock epoch seconds, for the ``t`` of records.

    Real time: the device clock through the :class:`ClockMapper` (TIME_SYNC pairs) once it
    has a pair, else through the smallest observed (reception - device time) offset, which
    is the device clock plus the shortest link latency. Sped up (sim/replay at N x): virtual
    time, ``start + data seconds``, so dwell times and alerts read in data time.
    """

    def __init__(self, *, realtime: bool, wall_at_start: float, mono_at_start: float) -> None:
        self.realtime = realtime
        self.mapper = ClockMapper()
        self._wall_minus_mono = wall_at_start - mono_at_start
        self._wall_at_start = wall_at_start
        self._offset: float | None = None  # hub mono - device s, smallest seen
        self._virtual_t0: float | None = None  # device s at the virtual start

    def observe_samples(self, t_device_end: float, received_at: float) -> None:
        off = received_at - t_device_end
        if self._offset is None or off < self._offset:
            self._offset = off
        if self._virtual_t0 is None:
            self._virtual_t0 = t_device_end

    def observe_sync(self, msg: TimeSync, received_at: float) -> None:
        self.mapper.observe(msg, received_at)

    def reset(self) -> None:
        self.mapper.reset()
        self._offset = None
        self._virtual_t0 = None

    def to_wall(self, t_device_s: float) -> float:
        if not self.realtime:
            t0 = self._virtual_t0 if self._virtual_t0 is not None else t_device_s
            return self._wall_at_start + (t_device_s - t0)
        if self.mapper.synced:
            return self.mapper.to_hub(round(t_device_s * 1e6)) + self._wall_minus_mono
        if self._offset is not None:
            return t_device_s + self._offset + self._wall_minus_mono
        return time.time()
