"""What a wearable says about itself (link, battery, heart rate), read from its messages.

Decisions and events are records, stored and published; a wearable's battery level and heart
rate are not records: they feed the carers' outputs (the MQTT sink's battery and heart-rate
entities, the alert rules' battery rule, the live status) and never the database.

:class:`WearableStatus` watches one device's messages beside its ingest: the HELLO names its
heart-rate sensors (kind ``hr``), a SAMPLES packet of one gives a reading (the packet's
mean), a BATTERY event a charge level, a link event the connection. Only these scalars leave
this module, as a :class:`DeviceStatus`; a heart rate is a period's average by the time it
reaches a broker (:class:`~edge.sinks.mqtt.messages.MessageBuilder`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from edge.sources.base import ConnectionEvent
from firmware_bridge.protocol import Event as DeviceEvent
from firmware_bridge.protocol import EventKind, Hello, Samples, SensorInfo

__all__ = ["HR_KIND", "DeviceStatus", "WearableStatus"]

HR_KIND: Final = "hr"  # the sensor kind a heart rate arrives as (BLE Heart Rate, firmware, sim)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What a wearable says about itself, forwarded by the daemon (not a record: not stored)."""

    resident: str
    device: str
    t: float  # hub wall-clock epoch seconds (virtual when sped up)
    battery_pct: float | None = None
    heart_rate_bpm: float | None = None  # one reading (or a packet's mean); averaged by sinks


class WearableStatus:
    """One device's link, battery and heart rate; see the module docstring. Loop-owned."""

    def __init__(self) -> None:
        self._hr_sensors: dict[int, SensorInfo] = {}
        self.connected: bool | None = None  # None: the source has no links (sim, replay)
        self.battery_pct: float | None = None
        self.heart_rate_bpm: float | None = None  # the latest reading
        self.counters: Counter[str] = Counter()  # readings not forwarded, by reason

    def observe(self, message: Any, *, resident: str, device: str,
                to_wall: Callable[[float], float]) -> DeviceStatus | None:
        """The status ``message`` gives (usually none). ``to_wall``: device seconds -> the
        hub time of records (the device's ingest's :class:`~edge.time_base.TimeBase`)."""
        if isinstance(message, Hello):
            self._hr_sensors = {s.sensor_id: s for s in message.sensors if s.kind == HR_KIND}
        elif isinstance(message, ConnectionEvent):
            self.connected = message.connected
        elif isinstance(message, Samples):
            return self._heart_rate(message, resident, device, to_wall)
        elif isinstance(message, DeviceEvent) and message.kind is EventKind.BATTERY:
            pct = float(message.value)
            if not 0.0 <= pct <= 100.0:
                self.counters["battery_out_of_range"] += 1
                return None
            self.battery_pct = pct
            return DeviceStatus(resident, device, to_wall(message.t_device_us * 1e-6),
                                battery_pct=pct)
        return None

    def _heart_rate(self, msg: Samples, resident: str, device: str,
                    to_wall: Callable[[float], float]) -> DeviceStatus | None:
        info = self._hr_sensors.get(msg.sensor_id)
        if info is None or msg.count == 0:
            return None
        try:
            bpm = float(np.mean(info.to_physical(msg.raw)))
        except (ValueError, TypeError):  # not the format the HELLO announced (ingest counts it)
            self.counters["heart_rate_malformed"] += 1
            return None
        if not math.isfinite(bpm):
            self.counters["heart_rate_malformed"] += 1
            return None
        self.heart_rate_bpm = bpm
        t_end = msg.t_device_us * 1e-6 + (msg.count - 1) / info.rate_hz
        return DeviceStatus(resident, device, to_wall(t_end), heart_rate_bpm=bpm)
