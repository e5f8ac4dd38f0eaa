"""A BLE wearable's GATT services and values -> protocol messages.

The UUIDs the ``ble`` source understands (the project's GATT service, whose notifications
carry protocol packets, and the standard profiles a stock strap speaks), and
:class:`StandardProfileTranslator`, which turns the standard profiles' values into the same
``Hello`` / ``Samples`` / ``Event`` / ``TimeSync`` vocabulary the project's firmware sends:
a synthesised ``Hello`` announcing sensors ``hr`` (bpm), ``rr`` (s) once the device has sent
RR intervals (a strap that sends only a heart rate cannot drive an RR model, and the hub says
so), and ``temp`` (degC) with a Health Thermometer; ``Samples`` per Heart Rate / Temperature
Measurement; ``Event`` for battery level and skin contact (on each change: a step signal).
``rr`` samples are beat-to-beat intervals (PROTOCOL.md, "Beat sensors"): a packet's time is
that of the beat ending its first interval, the last one taken to end at the notification.
Pure: no I/O, no bleak.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Final

import numpy as np

from edge.sources.options import normalize_uuid
from firmware_bridge import gatt
from firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Event,
    EventKind,
    Hello,
    Message,
    SampleFormat,
    Samples,
    SensorInfo,
    TimeSync,
)

__all__ = [
    "BATTERY_LEVEL",
    "CUSTOM_NOTIFY",
    "CUSTOM_SERVICE",
    "DEFAULT_MATCH_SERVICES",
    "FIRMWARE_REVISION",
    "HEART_RATE_MEASUREMENT",
    "HR_SENSOR_ID",
    "PROFILE_NAMES",
    "READABLE_SERVICES",
    "RR_SENSOR_ID",
    "TEMPERATURE_MEASUREMENT",
    "TEMP_SENSOR_ID",
    "StandardProfileTranslator",
]

# Sensor ids of the synthesised HELLO for a standard-profile device (a u8 each, fixed so a
# recording of a strap always means the same thing).
HR_SENSOR_ID: Final = 0
RR_SENSOR_ID: Final = 1
TEMP_SENSOR_ID: Final = 2
# Heart Rate Measurement arrives about once a second (the profile's typical rate); the rr
# sensor's rate is nominal too: its samples are beat-to-beat intervals, timed by the beats.
HR_NOMINAL_RATE_HZ: Final = 1.0
# Health Thermometer sends a measurement per interval the device chooses; 1 s is typical.
TEMP_NOMINAL_RATE_HZ: Final = 1.0
# RR intervals travel in units of 1/1024 s (Heart Rate Service spec); keeping that unit as
# the raw scale makes the translation lossless.
RR_SCALE_S: Final = 1.0 / 1024.0
# The thermometer sends a decimal float (IEEE-11073); float32 keeps its ~7 significant digits
# without the hub inventing a fixed-point scale.
TEMP_FORMAT: Final = SampleFormat.FLOAT32

# The characteristics and services this source understands (lower-case 128-bit strings).
CUSTOM_SERVICE: Final = normalize_uuid(gatt.WEARABLE_SERVICE_UUID)
CUSTOM_NOTIFY: Final = normalize_uuid(gatt.WEARABLE_PACKET_CHAR_UUID)
HEART_RATE_SERVICE: Final = normalize_uuid(gatt.HEART_RATE_SERVICE_UUID)
HEART_RATE_MEASUREMENT: Final = normalize_uuid(gatt.HEART_RATE_MEASUREMENT_UUID)
BATTERY_SERVICE: Final = normalize_uuid(gatt.BATTERY_SERVICE_UUID)
BATTERY_LEVEL: Final = normalize_uuid(gatt.BATTERY_LEVEL_UUID)
HEALTH_THERMOMETER_SERVICE: Final = normalize_uuid(gatt.HEALTH_THERMOMETER_SERVICE_UUID)
TEMPERATURE_MEASUREMENT: Final = normalize_uuid(gatt.TEMPERATURE_MEASUREMENT_UUID)
DEVICE_INFORMATION_SERVICE: Final = normalize_uuid(gatt.DEVICE_INFORMATION_SERVICE_UUID)
FIRMWARE_REVISION: Final = normalize_uuid(gatt.FIRMWARE_REVISION_UUID)

# What `scan` reports a device offers, by advertised service UUID.
PROFILE_NAMES: Final = {
    CUSTOM_SERVICE: "wearable-edge",
    HEART_RATE_SERVICE: "heart-rate",
    BATTERY_SERVICE: "battery",
    HEALTH_THERMOMETER_SERVICE: "thermometer",
    DEVICE_INFORMATION_SERVICE: "device-info",
}
# Services the source can read data from (the others only add battery / identity).
READABLE_SERVICES: Final = (CUSTOM_SERVICE, HEART_RATE_SERVICE, HEALTH_THERMOMETER_SERVICE)
# With nothing configured, a wearable worth connecting to advertises one of these.
DEFAULT_MATCH_SERVICES: Final = (CUSTOM_SERVICE, HEART_RATE_SERVICE)


class StandardProfileTranslator:
    """A stock device's GATT values -> protocol messages, for one device. Pure: no I/O.

    A stock device has no clock the hub can read, so its "device time" is the hub's
    monotonic clock at reception in µs (the same clock as ``SourceItem.received_at``), and
    :meth:`hello` is followed by a :class:`TimeSync` pairing that clock with itself, so the
    daemon's clock mapping is the identity. Sequence numbers continue across reconnections.
    """

    def __init__(
        self,
        device_id: str,
        *,
        heart_rate: bool,
        thermometer: bool,
        firmware_version: str = "",
    ) -> None:
        self.device_id = device_id
        self.heart_rate = heart_rate
        self.thermometer = thermometer
        self.firmware_version = firmware_version
        self._seq: Counter[int] = Counter()  # per sensor id
        self._event_seq = 0
        self._sync_seq = 0
        self._battery: int | None = None
        self._contact: bool | None = None
        # RR intervals seen from this device (kept across reconnections): only then is the
        # rr sensor announced
        self.sends_rr = False

    def sensors(self) -> tuple[SensorInfo, ...]:
        out = []
        if self.heart_rate:
            out.append(
                SensorInfo(
                    HR_SENSOR_ID, "hr", "bpm", HR_NOMINAL_RATE_HZ, 1, SampleFormat.UINT16, 1.0
                )
            )
        if self.heart_rate and self.sends_rr:
            out.append(
                SensorInfo(
                    RR_SENSOR_ID, "rr", "s", HR_NOMINAL_RATE_HZ, 1, SampleFormat.UINT16, RR_SCALE_S
                )
            )
        if self.thermometer:
            out.append(
                SensorInfo(
                    TEMP_SENSOR_ID, "temp", "degC", TEMP_NOMINAL_RATE_HZ, 1, TEMP_FORMAT, 1.0
                )
            )
        return tuple(out)

    def hello(self, now_us: int) -> list[Message]:
        """What a connection starts with: HELLO and a TimeSync (device clock = hub clock)."""
        hello = Hello(self.device_id, self.firmware_version, PROTOCOL_VERSION, self.sensors())
        sync = TimeSync(self._sync_seq, now_us, now_us)
        self._sync_seq = (self._sync_seq + 1) & 0xFFFF
        return [hello, sync]

    def _next_seq(self, sensor_id: int) -> int:
        seq = self._seq[sensor_id]
        self._seq[sensor_id] = (seq + 1) & 0xFFFF
        return seq

    def _event(self, kind: EventKind, now_us: int, value: int) -> Event:
        ev = Event(kind, self._event_seq, now_us, value)
        self._event_seq = (self._event_seq + 1) & 0xFFFF
        return ev

    def heart_rate_measurement(self, data: bytes, now_us: int) -> list[Message]:
        """One 0x2A37 notification -> Samples(hr), Samples(rr) if any, Event(contact) on change.

        The first RR intervals a device sends are preceded by a new ``Hello`` that announces
        the rr sensor. Raises :class:`~firmware_bridge.errors.ProtocolError` for a malformed
        value.
        """
        m = gatt.parse_heart_rate_measurement(bytes(data))
        out: list[Message] = []
        if m.rr_s and not self.sends_rr:
            self.sends_rr = True
            out.append(Hello(self.device_id, self.firmware_version, PROTOCOL_VERSION,
                             self.sensors()))
        out.append(
            Samples(
                HR_SENSOR_ID, self._next_seq(HR_SENSOR_ID), now_us, np.array([[m.bpm]], np.uint16)
            )
        )
        if m.rr_s:
            rr = np.rint(np.asarray(m.rr_s, np.float64) / RR_SCALE_S).astype(np.uint16)  # (k,)
            # the beat ending the last interval is taken to be now (a strap notifies after
            # it); the first interval's beat came the later intervals' sum before it
            t0 = max(0, now_us - round(float(rr[1:].sum()) * RR_SCALE_S * 1e6))
            out.append(Samples(RR_SENSOR_ID, self._next_seq(RR_SENSOR_ID), t0, rr[:, None]))
        if m.contact is not None and m.contact != self._contact:
            self._contact = m.contact
            out.append(self._event(EventKind.CONTACT, now_us, int(m.contact)))
        return out

    def battery_level(self, data: bytes, now_us: int) -> list[Message]:
        """A 0x2A19 value (read or notified) -> Event(battery) when the level changed."""
        level = gatt.parse_battery_level(bytes(data))
        if level == self._battery:
            return []  # BlueZ echoes a read as a notification too; one event per change
        self._battery = level
        return [self._event(EventKind.BATTERY, now_us, level)]

    def temperature_measurement(self, data: bytes, now_us: int) -> list[Message]:
        """A 0x2A1C indication -> Samples(temp) in °C."""
        m = gatt.parse_temperature_measurement(bytes(data))
        celsius = m.celsius
        if not math.isfinite(celsius):
            return []  # NaN / ±INFINITY: the thermometer says "no valid reading"
        raw = np.array([[celsius]], np.float32)
        return [Samples(TEMP_SENSOR_ID, self._next_seq(TEMP_SENSOR_ID), now_us, raw)]
