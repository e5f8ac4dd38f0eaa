"""BLE side of the bridge: GATT UUIDs, standard profile values, protocol-packet fragments.

Standard profiles (so a stock chest strap works without our firmware), each with a parser
that raises a :class:`~firmware_bridge.errors.ProtocolError` subclass on malformed bytes
and an encoder (used by the simulator and the tests):

- Heart Rate Measurement 0x2A37: :func:`parse_heart_rate_measurement` /
  :func:`encode_heart_rate_measurement` (every flag combination: uint8/uint16 rate, contact
  supported/detected, energy expended, any number of RR intervals in 1/1024 s).
- Battery Level 0x2A19: :func:`parse_battery_level` / :func:`encode_battery_level`.
- Temperature Measurement 0x2A1C: :func:`parse_temperature_measurement` /
  :func:`encode_temperature_measurement` (IEEE-11073 32-bit FLOAT with its NaN / NRes /
  ±INFINITY specials, °F flag, time stamp, temperature type).
- Device Information strings 0x2A29 / 0x2A24 / 0x2A26: :func:`parse_device_info_string`.

Our own firmware sends the protocol packets of :mod:`firmware_bridge.framing` (header +
body + CRC, no COBS: a notification is already delimited) as notifications of
:data:`WEARABLE_PACKET_CHAR_UUID`. A packet larger than the negotiated ATT payload (MTU - 3)
is cut by :class:`Fragmenter`; each fragment starts with one byte::

    bit 7  START   first fragment of a packet
    bit 6  END     last fragment of a packet (a packet that fits is START|END)
    bit 0-5        rolling fragment counter, +1 per fragment mod 64 (detects losses)

:class:`Reassembler` rebuilds packets and counts lost fragments; :class:`NotificationDecoder`
turns notifications into messages and, like ``FrameDecoder``, never raises on bad input.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Final, NamedTuple

from firmware_bridge.errors import (
    FrameTooLongError,
    PayloadError,
    ProtocolError,
    TruncatedError,
)
from firmware_bridge.framing import MAX_PACKET_LEN, decode_packet
from firmware_bridge.protocol import Message

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "DEVICE_INFORMATION_SERVICE_UUID",
    "FIRMWARE_REVISION_UUID",
    "HEALTH_THERMOMETER_SERVICE_UUID",
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "MANUFACTURER_NAME_UUID",
    "MODEL_NUMBER_UUID",
    "TEMPERATURE_MEASUREMENT_UUID",
    "WEARABLE_COMMAND_CHAR_UUID",
    "WEARABLE_PACKET_CHAR_UUID",
    "WEARABLE_SERVICE_UUID",
    "BleDateTime",
    "Fragmenter",
    "HeartRateMeasurement",
    "NotificationDecoder",
    "Reassembler",
    "TemperatureMeasurement",
    "decode_ieee11073_float",
    "encode_battery_level",
    "encode_device_info_string",
    "encode_heart_rate_measurement",
    "encode_ieee11073_float",
    "encode_temperature_measurement",
    "parse_battery_level",
    "parse_device_info_string",
    "parse_heart_rate_measurement",
    "parse_temperature_measurement",
    "uuid16",
]


def uuid16(short: int) -> str:
    """A 16-bit SIG UUID as the full lower-case 128-bit string bleak reports."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


HEART_RATE_SERVICE_UUID: Final = uuid16(0x180D)
HEART_RATE_MEASUREMENT_UUID: Final = uuid16(0x2A37)
BATTERY_SERVICE_UUID: Final = uuid16(0x180F)
BATTERY_LEVEL_UUID: Final = uuid16(0x2A19)
HEALTH_THERMOMETER_SERVICE_UUID: Final = uuid16(0x1809)
TEMPERATURE_MEASUREMENT_UUID: Final = uuid16(0x2A1C)
DEVICE_INFORMATION_SERVICE_UUID: Final = uuid16(0x180A)
MANUFACTURER_NAME_UUID: Final = uuid16(0x2A29)
MODEL_NUMBER_UUID: Final = uuid16(0x2A24)
FIRMWARE_REVISION_UUID: Final = uuid16(0x2A26)

# Our service: a random (version 4) base so it cannot collide with anyone's; the
# characteristics differ in the first group only, as vendor services usually do.
WEARABLE_SERVICE_UUID: Final = "6e710001-1882-4dfd-9c0f-44feff7889b5"
WEARABLE_PACKET_CHAR_UUID: Final = "6e710002-1882-4dfd-9c0f-44feff7889b5"  # notify: device -> hub
WEARABLE_COMMAND_CHAR_UUID: Final = "6e710003-1882-4dfd-9c0f-44feff7889b5"  # write: hub -> device

DEFAULT_ATT_PAYLOAD: Final = 20  # the default ATT MTU (23) minus the 3-byte notification header
FRAG_START: Final = 0x80
FRAG_END: Final = 0x40
FRAG_COUNTER_MASK: Final = 0x3F  # 64 values: a gap of 64+ fragments is undercounted (mod 64)

# -- Heart Rate Measurement (0x2A37) ----------------------------------------------------------
HR_FLAG_UINT16: Final = 0x01
HR_FLAG_CONTACT_DETECTED: Final = 0x02
HR_FLAG_CONTACT_SUPPORTED: Final = 0x04
HR_FLAG_ENERGY: Final = 0x08
HR_FLAG_RR: Final = 0x10
RR_UNITS_PER_S: Final = 1024.0  # RR intervals are sent in 1/1024 s


@dataclass(frozen=True)
class HeartRateMeasurement:
    """One 0x2A37 notification. ``contact`` is None when the sensor cannot detect contact."""

    bpm: int
    rr_s: tuple[float, ...] = ()  # RR intervals in seconds (multiples of 1/1024), oldest first
    contact: bool | None = None
    energy_kj: int | None = None  # cumulative energy expended, kJ


def parse_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    """Parse a Heart Rate Measurement value; :class:`TruncatedError`/:class:`PayloadError`."""
    n = len(data)
    if n < 1:
        raise TruncatedError("heart_rate.flags", needed=1, got=0)
    flags = data[0]
    pos = 1
    if flags & HR_FLAG_UINT16:
        if n < 3:
            raise TruncatedError("heart_rate.bpm", needed=3, got=n)
        bpm = data[1] | data[2] << 8
        pos = 3
    else:
        if n < 2:
            raise TruncatedError("heart_rate.bpm", needed=2, got=n)
        bpm = data[1]
        pos = 2
    contact = bool(flags & HR_FLAG_CONTACT_DETECTED) if flags & HR_FLAG_CONTACT_SUPPORTED else None
    energy = None
    if flags & HR_FLAG_ENERGY:
        if n < pos + 2:
            raise TruncatedError("heart_rate.energy", needed=pos + 2, got=n)
        energy = data[pos] | data[pos + 1] << 8
        pos += 2
    rr: tuple[float, ...] = ()
    if flags & HR_FLAG_RR:
        rest = n - pos
        if rest % 2:
            raise PayloadError(f"{rest} RR bytes is not a whole number of uint16", field="heart_rate.rr")
        rr = tuple(v / RR_UNITS_PER_S for v in struct.unpack_from(f"<{rest // 2}H", data, pos))
    elif pos != n:
        # a reading with unexplained bytes more likely means we misread the flags than padding
        raise PayloadError(f"{n - pos} trailing bytes", field="heart_rate")
    return HeartRateMeasurement(bpm, rr, contact, energy)


def encode_heart_rate_measurement(
    m: HeartRateMeasurement, *, uint16: bool | None = None
) -> bytes:
    """Encode ``m``; the rate is uint16 when ``uint16`` or when it exceeds 255."""
    if not 0 <= m.bpm <= 0xFFFF:
        raise PayloadError(f"{m.bpm} is not a uint16", field="heart_rate.bpm")
    wide = m.bpm > 0xFF if uint16 is None else uint16
    if not wide and m.bpm > 0xFF:
        raise PayloadError(f"{m.bpm} does not fit uint8", field="heart_rate.bpm")
    flags = HR_FLAG_UINT16 if wide else 0
    if m.contact is not None:
        flags |= HR_FLAG_CONTACT_SUPPORTED | (HR_FLAG_CONTACT_DETECTED if m.contact else 0)
    out = bytearray(b"\x00")
    out += struct.pack("<H", m.bpm) if wide else bytes((m.bpm,))
    if m.energy_kj is not None:
        if not 0 <= m.energy_kj <= 0xFFFF:
            raise PayloadError(f"{m.energy_kj} is not a uint16", field="heart_rate.energy")
        flags |= HR_FLAG_ENERGY
        out += struct.pack("<H", m.energy_kj)
    if m.rr_s:
        flags |= HR_FLAG_RR
        units = [round(r * RR_UNITS_PER_S) for r in m.rr_s]
        if not all(0 <= u <= 0xFFFF for u in units):
            raise PayloadError(f"{m.rr_s} outside 0..64 s", field="heart_rate.rr")
        out += struct.pack(f"<{len(units)}H", *units)
    out[0] = flags
    return bytes(out)


# -- Battery Level (0x2A19) -------------------------------------------------------------------
def parse_battery_level(data: bytes) -> int:
    """Battery Level: one byte, 0..100 %."""
    if len(data) != 1:
        if not data:
            raise TruncatedError("battery_level", needed=1, got=0)
        raise PayloadError(f"{len(data)} bytes, expected 1", field="battery_level")
    if data[0] > 100:
        raise PayloadError(f"{data[0]} % is above 100", field="battery_level")
    return data[0]


def encode_battery_level(percent: int) -> bytes:
    if not 0 <= percent <= 100:
        raise PayloadError(f"{percent} % is outside 0..100", field="battery_level")
    return bytes((percent,))


# -- IEEE-11073 32-bit FLOAT ------------------------------------------------------------------
# Specials live at exponent 0; the mantissa says which.
FLOAT_NAN: Final = 0x007FFFFF
FLOAT_NRES: Final = 0x00800000  # "not at this resolution"
FLOAT_POS_INF: Final = 0x007FFFFE
FLOAT_NEG_INF: Final = 0x00800002
FLOAT_RESERVED: Final = 0x00800001
FLOAT_MAX_MANTISSA: Final = 0x7FFFFD  # 0x7FFFFE.. and their negatives are the specials
_SPECIALS: Final = {
    FLOAT_NAN: math.nan,
    FLOAT_NRES: math.nan,
    FLOAT_RESERVED: math.nan,
    FLOAT_POS_INF: math.inf,
    FLOAT_NEG_INF: -math.inf,
}


def decode_ieee11073_float(data: bytes) -> float:
    """4 bytes (LE: 24-bit signed mantissa, then 8-bit signed exponent) -> float.

    NaN, NRes and the reserved value decode to NaN; ±INFINITY to ±inf.
    """
    if len(data) != 4:
        raise TruncatedError("ieee11073_float", needed=4, got=len(data))
    raw = int.from_bytes(data, "little")
    if raw in _SPECIALS:
        return _SPECIALS[raw]
    mantissa = raw & 0xFFFFFF
    if mantissa & 0x800000:
        mantissa -= 1 << 24
    exponent = raw >> 24
    if exponent & 0x80:
        exponent -= 256
    # divide for negative exponents: 366 / 10 is exact-nearest, 366 * 0.1 is not
    return mantissa / 10.0**-exponent if exponent < 0 else mantissa * 10.0**exponent


def encode_ieee11073_float(value: float, *, exponent: int | None = None) -> bytes:
    """float -> 4 bytes; the most precise exponent that fits unless ``exponent`` is given.

    The mantissa is stripped of trailing decimal zeros (36.6 -> 366e-1), so a value read
    with :func:`decode_ieee11073_float` encodes back to the same canonical bytes.
    """
    if math.isnan(value):
        return FLOAT_NAN.to_bytes(4, "little")
    if math.isinf(value):
        return (FLOAT_POS_INF if value > 0 else FLOAT_NEG_INF).to_bytes(4, "little")
    if exponent is not None:
        candidates: list[int] = [exponent]
    elif value == 0:
        candidates = [0]
    else:  # 7 significant digits is all a 24-bit mantissa holds; try from the most precise
        e0 = math.floor(math.log10(abs(value))) - 7
        candidates = [e for e in range(e0, e0 + 3) if -128 <= e <= 127]
    for e in candidates:
        m = round(value / 10.0**e) if e >= 0 else round(value * 10.0**-e)
        if abs(m) <= FLOAT_MAX_MANTISSA:
            while exponent is None and m and m % 10 == 0 and e < 127:
                m //= 10
                e += 1
            return ((m & 0xFFFFFF) | ((e & 0xFF) << 24)).to_bytes(4, "little")
    raise PayloadError(f"{value!r} has no IEEE-11073 FLOAT representation", field="ieee11073_float")


# -- Temperature Measurement (0x2A1C) ---------------------------------------------------------
TEMP_FLAG_FAHRENHEIT: Final = 0x01
TEMP_FLAG_TIMESTAMP: Final = 0x02
TEMP_FLAG_TYPE: Final = 0x04


class BleDateTime(NamedTuple):
    """The GATT Date Time characteristic; 0 in year/month/day means unknown."""

    year: int  # 1582..9999 or 0
    month: int  # 1..12 or 0
    day: int  # 1..31 or 0
    hours: int
    minutes: int
    seconds: int


_DATE_TIME: Final = struct.Struct("<HBBBBB")


@dataclass(frozen=True)
class TemperatureMeasurement:
    """One 0x2A1C indication; ``value`` in °F when ``fahrenheit`` else °C."""

    value: float
    fahrenheit: bool = False
    timestamp: BleDateTime | None = None
    temp_type: int | None = None  # 1 armpit, 2 body, 3 ear, 4 finger, 5 GI, 6 mouth, ...

    @property
    def celsius(self) -> float:
        return (self.value - 32.0) * 5.0 / 9.0 if self.fahrenheit else self.value


def _check_date_time(dt: BleDateTime) -> None:
    limits = ((0, 9999), (0, 12), (0, 31), (0, 23), (0, 59), (0, 59))
    for name, v, (lo, hi) in zip(BleDateTime._fields, dt, limits, strict=True):
        if not lo <= v <= hi:
            raise PayloadError(f"{v} outside {lo}..{hi}", field=f"temperature.timestamp.{name}")


def parse_temperature_measurement(data: bytes) -> TemperatureMeasurement:
    n = len(data)
    if n < 5:
        raise TruncatedError("temperature", needed=5, got=n)
    flags = data[0]
    value = decode_ieee11073_float(bytes(data[1:5]))
    pos = 5
    ts = None
    if flags & TEMP_FLAG_TIMESTAMP:
        if n < pos + _DATE_TIME.size:
            raise TruncatedError("temperature.timestamp", needed=pos + _DATE_TIME.size, got=n)
        ts = BleDateTime(*_DATE_TIME.unpack_from(data, pos))
        _check_date_time(ts)
        pos += _DATE_TIME.size
    ttype = None
    if flags & TEMP_FLAG_TYPE:
        if n < pos + 1:
            raise TruncatedError("temperature.type", needed=pos + 1, got=n)
        ttype = data[pos]
        pos += 1
    if pos != n:
        raise PayloadError(f"{n - pos} trailing bytes", field="temperature")
    return TemperatureMeasurement(value, bool(flags & TEMP_FLAG_FAHRENHEIT), ts, ttype)


def encode_temperature_measurement(m: TemperatureMeasurement) -> bytes:
    flags = TEMP_FLAG_FAHRENHEIT if m.fahrenheit else 0
    out = bytearray(b"\x00")
    out += encode_ieee11073_float(m.value)
    if m.timestamp is not None:
        _check_date_time(m.timestamp)
        flags |= TEMP_FLAG_TIMESTAMP
        out += _DATE_TIME.pack(*m.timestamp)
    if m.temp_type is not None:
        if not 0 <= m.temp_type <= 0xFF:
            raise PayloadError(f"{m.temp_type} is not a u8", field="temperature.type")
        flags |= TEMP_FLAG_TYPE
        out.append(m.temp_type)
    out[0] = flags
    return bytes(out)


# -- Device Information strings ---------------------------------------------------------------
def parse_device_info_string(data: bytes) -> str:
    """A UTF-8 string characteristic; trailing NULs (C firmwares send them) are stripped."""
    try:
        return bytes(data).rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError as e:
        raise PayloadError(f"not UTF-8 at byte {e.start}", field="device_info") from None


def encode_device_info_string(s: str) -> bytes:
    return s.encode("utf-8")


# -- protocol packets over notifications ------------------------------------------------------
class Fragmenter:
    """Cuts packets into notifications of at most ``att_payload`` bytes (MTU - 3)."""

    def __init__(self, att_payload: int = DEFAULT_ATT_PAYLOAD) -> None:
        if att_payload < 2:
            raise PayloadError(f"{att_payload} leaves no room for data", field="att_payload")
        self.att_payload = att_payload
        self._counter = 0

    def fragment(self, packet: bytes) -> list[bytes]:
        """``packet`` (with CRC, from ``encode_packet``) -> fragments, each with its header."""
        if len(packet) > MAX_PACKET_LEN:
            raise FrameTooLongError(len(packet), MAX_PACKET_LEN)
        step = self.att_payload - 1
        chunks = [packet[i : i + step] for i in range(0, len(packet), step)] or [b""]
        out = []
        for i, chunk in enumerate(chunks):
            head = self._counter
            if i == 0:
                head |= FRAG_START
            if i == len(chunks) - 1:
                head |= FRAG_END
            self._counter = (self._counter + 1) & FRAG_COUNTER_MASK
            out.append(bytes((head,)) + chunk)
        return out


class Reassembler:
    """Fragments -> packets. Never raises; ``stats`` counts what was lost and why.

    ``fragments_lost`` (counter gaps), ``packets_incomplete`` (a packet abandoned because a
    fragment of it was lost), ``orphan_fragments`` (continuations with no START seen),
    ``oversize``, ``empty_fragments``, ``packets`` (completed).
    """

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self._parts: list[bytes] | None = None
        self._size = 0
        self._expect: int | None = None

    def feed(self, fragment: bytes) -> bytes | None:
        """One notification; returns the packet it completes, if any."""
        if not fragment:
            self.stats["empty_fragments"] += 1
            return None
        head = fragment[0]
        counter = head & FRAG_COUNTER_MASK
        if self._expect is not None and counter != self._expect:
            self.stats["fragments_lost"] += (counter - self._expect) & FRAG_COUNTER_MASK
            if self._parts is not None:
                self.stats["packets_incomplete"] += 1
                self._parts = None
        self._expect = (counter + 1) & FRAG_COUNTER_MASK
        if head & FRAG_START:
            if self._parts is not None:  # END lost with no counter gap (64 lost): abandon
                self.stats["packets_incomplete"] += 1
            self._parts, self._size = [], 0
        elif self._parts is None:
            self.stats["orphan_fragments"] += 1
            return None
        self._parts.append(fragment[1:])
        self._size += len(fragment) - 1
        if self._size > MAX_PACKET_LEN:
            self.stats[FrameTooLongError.reason] += 1
            self._parts = None
            return None
        if head & FRAG_END:
            packet = b"".join(self._parts)
            self._parts = None
            self.stats["packets"] += 1
            return packet
        return None


class NotificationDecoder:
    """Notifications of :data:`WEARABLE_PACKET_CHAR_UUID` -> messages; never raises.

    ``stats`` holds the :class:`Reassembler` counters plus, for rejected packets, their
    :attr:`ProtocolError.reason` (``crc``, ``truncated``, ``unknown_type`` ...), and
    ``messages`` decoded. It lives for one connection and keeps no record of the device's
    HELLO: whoever reads the messages owns what the device announced and checks SAMPLES
    packets against it, across connections.
    """

    def __init__(self) -> None:
        self.reassembler = Reassembler()
        self.stats = self.reassembler.stats

    def feed(self, fragment: bytes) -> list[Message]:
        packet = self.reassembler.feed(bytes(fragment))
        if packet is None:
            return []
        try:
            msg = decode_packet(packet)
        except ProtocolError as e:
            self.stats[e.reason] += 1
            return []
        self.stats["messages"] += 1
        return [msg]
