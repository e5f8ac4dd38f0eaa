"""edge.sources.ble: options, backoff, standard-profile translation, scan table (no bus).

The end-to-end tests through the real bleak client against the BlueZ stand-in are in
``tests/test_ble_e2e.py``.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from core.errors import ConfigError
from edge.sources.ble import (
    HR_SENSOR_ID,
    RR_SENSOR_ID,
    TEMP_SENSOR_ID,
    BleOptions,
    BleSource,
    DiscoveredWearable,
    StandardProfileTranslator,
    backoff_delay,
)
from edge.ui import format_scan_results
from firmware_bridge import gatt
from firmware_bridge.errors import ProtocolError
from firmware_bridge.protocol import Event, EventKind, Hello, Samples, TimeSync


def test_backoff_grows_exponentially_to_the_ceiling_with_bounded_jitter() -> None:
    rng = random.Random(0)
    no_jitter = [backoff_delay(n, 0.5, 10.0, 0.0, rng) for n in range(1, 8)]
    assert no_jitter == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(0, 0.5, 10.0, 0.0, rng) == 0.5  # "no failure yet" waits like the first
    assert backoff_delay(10_000, 0.5, 10.0, 0.0, rng) == 10.0  # no overflow for huge counts
    jittered = [backoff_delay(3, 1.0, 60.0, 0.2, rng) for _ in range(500)]
    assert min(jittered) >= 4.0 * 0.8 and max(jittered) <= 4.0 * 1.2
    assert len(set(jittered)) > 400  # really random, so devices do not retry in lockstep


def test_options_validate_and_split_devices() -> None:
    opts = BleOptions(devices=["aa:bb:cc:dd:ee:01", "HRM-Strap"], scan_timeout_s=3.0)
    opts.validate()
    assert opts.addresses == ("AA:BB:CC:DD:EE:01",)
    assert opts.names == ("HRM-Strap",)
    assert opts.match_services == ()  # explicit devices: no catch-all service match
    default = BleOptions()
    assert gatt.HEART_RATE_SERVICE_UUID in default.match_services
    assert gatt.WEARABLE_SERVICE_UUID in default.match_services
    assert BleOptions(service_uuids=["180D"]).match_services == (gatt.HEART_RATE_SERVICE_UUID,)
    for bad, key in (
        ({"scan_timeout_s": 0.0}, "ble.scan_timeout_s"),
        ({"reconnect_min_s": 2.0, "reconnect_max_s": 1.0}, "ble.reconnect_max_s"),
        ({"reconnect_jitter": 1.5}, "ble.reconnect_jitter"),
        ({"max_devices": 0}, "ble.max_devices"),
        ({"connect_timeout_s": math.nan}, "ble.connect_timeout_s"),
        ({"connect_attempts": 0}, "ble.connect_attempts"),
    ):
        with pytest.raises(ConfigError) as info:
            BleOptions(**bad).validate()  # type: ignore[arg-type]
        assert info.value.key == key
    with pytest.raises(ConfigError):  # the source checks what it is given
        BleSource(BleOptions(max_devices=0))


def test_strap_translation_hello_samples_contact_battery() -> None:
    tr = StandardProfileTranslator("C0:FF:EE:00:00:01", heart_rate=True, thermometer=False)
    hello, sync = tr.hello(5_000_000)
    assert isinstance(hello, Hello) and isinstance(sync, TimeSync)
    assert [(s.sensor_id, s.kind, s.unit) for s in hello.sensors] == [
        (HR_SENSOR_ID, "hr", "bpm"),
        (RR_SENSOR_ID, "rr", "s"),
    ]
    assert sync.t_device_us == sync.t_hub_us == 5_000_000  # identity clock mapping

    value = gatt.encode_heart_rate_measurement(
        gatt.HeartRateMeasurement(bpm=72, rr_s=(0.8203125, 0.84375), contact=True)
    )
    out = tr.heart_rate_measurement(value, 10_000_000)
    hr, rr, contact = out
    assert isinstance(hr, Samples) and hr.sensor_id == HR_SENSOR_ID
    assert hr.raw.tolist() == [[72]] and hr.t_device_us == 10_000_000 and hr.seq == 0
    assert isinstance(rr, Samples) and rr.sensor_id == RR_SENSOR_ID
    rr_info = hello.sensor_map()[RR_SENSOR_ID]
    # lossless: the physical values are exactly what the strap sent
    np.testing.assert_array_equal(rr_info.to_physical(rr.raw)[:, 0], [0.8203125, 0.84375])
    assert rr.t_device_us == 9_000_000  # two values on the nominal 1 Hz grid ending now
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


def test_format_scan_results_lists_each_device_and_what_it_offers() -> None:
    found = [
        DiscoveredWearable(
            "C0:FF:EE:00:00:01", "HRM-Strap", -58, (gatt.HEART_RATE_SERVICE_UUID,), ("heart-rate",)
        ),
        DiscoveredWearable("11:22:33:44:55:66", None, -80, (), ()),
    ]
    text = format_scan_results(found)
    lines = text.splitlines()
    assert lines[0].split() == ["ADDRESS", "RSSI", "NAME", "OFFERS", "USABLE"]
    assert "C0:FF:EE:00:00:01" in lines[1] and "heart-rate" in lines[1] and lines[1].endswith("yes")
    assert "11:22:33:44:55:66" in lines[2] and lines[2].endswith("no")
    assert "no BLE devices found" in format_scan_results([])
