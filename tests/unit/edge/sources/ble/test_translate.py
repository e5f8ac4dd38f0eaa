"""edge.sources.ble.translate: standard GATT profiles (heart-rate straps, thermometers) as
protocol messages (no bus; the source against the BlueZ stand-in: tests/e2e/test_ble.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.sources.ble import (
    HR_SENSOR_ID,
    RR_SENSOR_ID,
    TEMP_SENSOR_ID,
    StandardProfileTranslator,
)
from firmware_bridge import gatt
from firmware_bridge.errors import ProtocolError
from firmware_bridge.protocol import Event, EventKind, Hello, Samples, TimeSync


def test_strap_translation_hello_samples_contact_battery() -> None:
    tr = StandardProfileTranslator("C0:FF:EE:00:00:01", heart_rate=True, thermometer=False)
    hello, sync = tr.hello(5_000_000)
    assert isinstance(hello, Hello) and isinstance(sync, TimeSync)
    # no RR seen yet: a heart rate alone is all the device is known to offer
    assert [(s.sensor_id, s.kind, s.unit) for s in hello.sensors] == [(HR_SENSOR_ID, "hr", "bpm")]
    assert sync.t_device_us == sync.t_hub_us == 5_000_000  # identity clock mapping

    value = gatt.encode_heart_rate_measurement(
        gatt.HeartRateMeasurement(bpm=72, rr_s=(0.8203125, 0.84375), contact=True)
    )
    out = tr.heart_rate_measurement(value, 10_000_000)
    hello2, hr, rr, contact = out
    # the first RR intervals: a new HELLO announces the rr sensor, and later ones keep it
    assert isinstance(hello2, Hello)
    assert [(s.sensor_id, s.kind, s.unit) for s in hello2.sensors] == [
        (HR_SENSOR_ID, "hr", "bpm"),
        (RR_SENSOR_ID, "rr", "s"),
    ]
    assert tr.hello(11_000_000)[0].sensors == hello2.sensors
    assert isinstance(hr, Samples) and hr.sensor_id == HR_SENSOR_ID
    assert hr.raw.tolist() == [[72]] and hr.t_device_us == 10_000_000 and hr.seq == 0
    assert isinstance(rr, Samples) and rr.sensor_id == RR_SENSOR_ID
    rr_info = hello2.sensor_map()[RR_SENSOR_ID]
    # lossless: the physical values are exactly what the strap sent
    np.testing.assert_array_equal(rr_info.to_physical(rr.raw)[:, 0], [0.8203125, 0.84375])
    # beat times: the last interval ends now, so the first one's beat was 0.84375 s before
    assert rr.t_device_us == 10_000_000 - 843_750
    assert contact == Event(EventKind.CONTACT, 0, 10_000_000, 1)

    # same contact again: no event; sequence numbers advance per sensor
    again = tr.heart_rate_measurement(
        gatt.encode_heart_rate_measurement(gatt.HeartRateMeasurement(bpm=300, contact=True)),
        11_000_000,
    )
    assert len(again) == 1 and again[0].seq == 1 and again[0].raw.tolist() == [[300]]
    lost = tr.heart_rate_measurement(
        gatt.encode_heart_rate_measurement(gatt.HeartRateMeasurement(bpm=70, contact=False)),
        12_000_000,
    )
    assert lost[-1] == Event(EventKind.CONTACT, 1, 12_000_000, 0)

    assert tr.battery_level(b"\x57", 1) == [Event(EventKind.BATTERY, 2, 1, 87)]
    assert tr.battery_level(b"\x57", 2) == []  # a read echoed as a notification: one event
    assert tr.battery_level(b"\x56", 3) == [Event(EventKind.BATTERY, 3, 3, 86)]
    with pytest.raises(ProtocolError):
        tr.battery_level(b"\xff", 4)
    with pytest.raises(ProtocolError):
        tr.heart_rate_measurement(b"\x01\x48", 5)  # uint16 flag with one byte of rate


def test_thermometer_translation_converts_fahrenheit_and_skips_nan() -> None:
    tr = StandardProfileTranslator("X", heart_rate=False, thermometer=True)
    hello, _ = tr.hello(0)
    assert [(s.sensor_id, s.kind, s.unit) for s in hello.sensors] == [
        (TEMP_SENSOR_ID, "temp", "degC")
    ]
    f = gatt.encode_temperature_measurement(gatt.TemperatureMeasurement(98.6, fahrenheit=True))
    (temp,) = tr.temperature_measurement(f, 7)
    assert temp.sensor_id == TEMP_SENSOR_ID
    assert temp.raw[0, 0] == pytest.approx(37.0, abs=1e-4)
    nan = gatt.encode_temperature_measurement(gatt.TemperatureMeasurement(math.nan))
    assert tr.temperature_measurement(nan, 8) == []
