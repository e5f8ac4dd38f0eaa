"""edge.device_status: a wearable's link, battery and heart rate from its own messages."""

from __future__ import annotations

import numpy as np

from edge.device_status import DeviceStatus, WearableStatus
from edge.sources.base import ConnectionEvent
from firmware_bridge.protocol import Event, EventKind, Hello, SampleFormat, Samples, SensorInfo

HR = SensorInfo(7, "hr", "bpm", 1.0, 1, SampleFormat.UINT16, 0.01)
BVP = SensorInfo(1, "bvp", "a.u.", 64.0, 1, SampleFormat.INT16, 0.1)
HELLO = Hello("strap-1", "1.0", 1, (BVP, HR))


def _wall(device_s: float) -> float:
    return 1_700_000_000.0 + device_s


def _observe(w: WearableStatus, message: object) -> DeviceStatus | None:
    return w.observe(message, resident="anna", device="aa:bb", to_wall=_wall)


def test_heart_rate_comes_from_the_sensor_the_hello_names_hr() -> None:
    w = WearableStatus()
    raw = np.array([[7000], [7200]], np.uint16)  # 70 and 72 bpm at scale 0.01
    assert _observe(w, Samples(7, 0, 5_000_000, raw)) is None  # no HELLO yet: unknown sensor
    assert _observe(w, HELLO) is None
    st = _observe(w, Samples(7, 1, 5_000_000, raw))
    assert st == DeviceStatus("anna", "aa:bb", _wall(6.0), heart_rate_bpm=71.0)
    assert w.heart_rate_bpm == 71.0
    # another sensor's samples are no heart rate
    assert _observe(w, Samples(1, 0, 5_000_000, np.zeros((64, 1), np.int16))) is None


def test_battery_and_link() -> None:
    w = WearableStatus()
    assert w.connected is None  # a source without links says nothing about them
    _observe(w, ConnectionEvent(True))
    assert w.connected is True
    st = _observe(w, Event(EventKind.BATTERY, 0, 2_000_000, 57))
    assert st == DeviceStatus("anna", "aa:bb", _wall(2.0), battery_pct=57.0)
    assert _observe(w, Event(EventKind.BATTERY, 1, 3_000_000, 140)) is None
    assert w.counters["battery_out_of_range"] == 1 and w.battery_pct == 57.0
    assert _observe(w, Event(EventKind.CONTACT, 2, 3_000_000, 0)) is None
    _observe(w, ConnectionEvent(False, "link lost"))
    assert w.connected is False
