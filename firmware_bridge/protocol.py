"""Protocol messages and their packet layout (byte tables in ``PROTOCOL.md``).

A *packet* is ``header + body``: the header is two bytes, ``version`` then ``type``; the
body layout depends on the type. All multi-byte fields are little-endian. Framing
(:mod:`firmware_bridge.framing`) appends a CRC and COBS-encodes packets for a serial line;
over BLE the same packets (with their CRC) are GATT notifications
(:mod:`firmware_bridge.gatt`).

Messages are frozen dataclasses:

- :class:`Hello` — device id, firmware version, protocol version and the sensors
  (:class:`SensorInfo`: kind, unit, rate, channels, sample format, scale, offset). Sent on
  connect and repeated periodically so a hub that joins mid-stream learns the sensors.
- :class:`Samples` — ``count`` consecutive samples of one sensor, ``raw`` ``(count,
  channels)`` in the sensor's integer/float format; ``t_device_us`` stamps the first
  sample, sample ``i`` is at ``t_device_us + i * 1e6 / rate_hz``. The packet repeats the
  sample format and channel count, so it decodes without the HELLO (a hub that missed it
  still gets the numbers; it needs the HELLO only for units and scale).
- :class:`Event` — battery %, button, contact on/off, fault code.
- :class:`TimeSync` — a device/hub clock pair for :class:`firmware_bridge.timesync.ClockMapper`.

Unknown message types raise :class:`UnknownMessageError` here; the streaming decoders skip
and count them, so a newer firmware never breaks an older hub.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import numpy as np

from firmware_bridge.errors import (
    PayloadError,
    TruncatedError,
    UnknownMessageError,
    UnsupportedVersionError,
)

__all__ = [
    "HEADER_SIZE",
    "PROTOCOL_VERSION",
    "SAMPLES_HEADER_SIZE",
    "Event",
    "EventKind",
    "Hello",
    "Message",
    "MessageType",
    "SampleFormat",
    "Samples",
    "SensorInfo",
    "TimeSync",
    "decode_message",
    "encode_message",
]

PROTOCOL_VERSION: Final = 1  # bump when a layout changes meaning; hubs refuse other versions

HEADER_SIZE: Final = 2  # version u8 + type u8: the least a packet can carry and still say what it is
SEQ_MODULO: Final = 1 << 16  # sequence numbers are u16: 4.5 h of 4 packets/s before wrapping
MAX_STRING_BYTES: Final = 255  # strings are length-prefixed with a u8 (cheap for firmware)


class MessageType(enum.IntEnum):
    """The ``type`` byte of a packet. 0x00 is never used (a frame of zeros is noise)."""

    HELLO = 0x01
    SAMPLES = 0x02
    EVENT = 0x03
    TIME_SYNC = 0x04


class SampleFormat(enum.IntEnum):
    """How one sample value is stored on the wire (all little-endian)."""

    INT8 = 1
    UINT8 = 2
    INT16 = 3
    UINT16 = 4
    INT32 = 5
    UINT32 = 6
    FLOAT32 = 7

    @property
    def dtype(self) -> np.dtype[Any]:
        return _FORMAT_DTYPES[self]

    @classmethod
    def from_dtype(cls, dtype: np.dtype[Any] | type) -> SampleFormat:
        """The format of a numpy dtype of either byte order; :class:`PayloadError` if none."""
        d = np.dtype(dtype)
        try:
            return _DTYPE_FORMATS[(d.kind, d.itemsize)]
        except KeyError:
            raise PayloadError(f"dtype {d} has no wire format", field="samples.raw") from None


_FORMAT_DTYPES: Final[dict[SampleFormat, np.dtype[Any]]] = {
    SampleFormat.INT8: np.dtype("<i1"),
    SampleFormat.UINT8: np.dtype("<u1"),
    SampleFormat.INT16: np.dtype("<i2"),
    SampleFormat.UINT16: np.dtype("<u2"),
    SampleFormat.INT32: np.dtype("<i4"),
    SampleFormat.UINT32: np.dtype("<u4"),
    SampleFormat.FLOAT32: np.dtype("<f4"),
}
_DTYPE_FORMATS: Final = {(d.kind, d.itemsize): f for f, d in _FORMAT_DTYPES.items()}
# indexed by the raw format byte, for the hot decode path (None: not a format)
_DTYPE_BY_CODE: Final[tuple[np.dtype[Any] | None, ...]] = tuple(
    _FORMAT_DTYPES.get(c) for c in range(256)  # type: ignore[call-overload]
)


class EventKind(enum.IntEnum):
    """What an :class:`Event` reports; ``value`` means what the comment says."""

    BATTERY = 1  # value: state of charge, 0..100 %
    BUTTON = 2  # value: button id (firmware-defined), pressed
    CONTACT = 3  # value: 1 skin contact on, 0 off
    FAULT = 4  # value: firmware fault code (nonzero)


def _f32(x: float) -> float:
    # Floats travel as IEEE float32: store the value the wire will carry, so a message
    # equals its own decoded copy.
    return float(np.float32(x))


@dataclass(frozen=True)
class SensorInfo:
    """One sensor as the device describes it in HELLO.

    ``kind`` uses the modality names of :mod:`core.contract` (``bvp``, ``eda``, ``temp``,
    ``acc``, ``hr``, ``rr``, ``ecg``, ``resp`` ...). Physical value = ``raw * scale +
    offset`` in ``unit``. ``rate_hz``, ``scale`` and ``offset`` are float32 on the wire and
    are rounded to float32 on construction.
    """

    sensor_id: int  # u8, unique within a device
    kind: str
    unit: str
    rate_hz: float
    channels: int  # u8, >= 1
    sample_format: SampleFormat
    scale: float
    offset: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.sensor_id <= 0xFF:
            raise PayloadError(f"{self.sensor_id} is not a u8", field="sensor.sensor_id")
        if not (isinstance(self.kind, str) and self.kind.isidentifier()):
            raise PayloadError(f"{self.kind!r} is not a modality name", field="sensor.kind")
        if not 1 <= self.channels <= 0xFF:
            raise PayloadError(f"{self.channels} must be in 1..255", field="sensor.channels")
        _check_string(self.kind, "sensor.kind")
        _check_string(self.unit, "sensor.unit")
        try:
            fmt = SampleFormat(self.sample_format)
        except ValueError:
            raise PayloadError(
                f"{self.sample_format!r} is not a sample format", field="sensor.sample_format"
            ) from None
        object.__setattr__(self, "sample_format", fmt)
        for name in ("rate_hz", "scale", "offset"):
            object.__setattr__(self, name, _f32(getattr(self, name)))
        if not (self.rate_hz > 0 and math.isfinite(self.rate_hz)):
            raise PayloadError(f"{self.rate_hz} must be positive", field="sensor.rate_hz")
        if not (math.isfinite(self.scale) and self.scale != 0):
            raise PayloadError(f"{self.scale} must be finite and nonzero", field="sensor.scale")
        if not math.isfinite(self.offset):
            raise PayloadError(f"{self.offset} must be finite", field="sensor.offset")

    def to_physical(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` (count, channels) wire values -> float32 (count, channels) in ``unit``."""
        x = np.asarray(raw).astype(np.float32)
        x *= np.float32(self.scale)
        if self.offset:
            x += np.float32(self.offset)
        return x

    def to_raw(self, values: np.ndarray) -> np.ndarray:
        """Physical values -> wire values (rounded, clipped to the format's range)."""
        dt = self.sample_format.dtype
        x = (np.asarray(values, dtype=np.float64) - self.offset) / self.scale
        if dt.kind == "f":
            return x.astype(dt)
        info = np.iinfo(dt)
        return np.clip(np.rint(x), info.min, info.max).astype(dt)


@dataclass(frozen=True)
class Hello:
    """Device identity and its sensors; the first message of every connection."""

    device_id: str
    firmware_version: str
    protocol_version: int  # u8, the version this firmware implements
    sensors: tuple[SensorInfo, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensors", tuple(self.sensors))
        _check_string(self.device_id, "hello.device_id")
        _check_string(self.firmware_version, "hello.firmware_version")
        if not 0 <= self.protocol_version <= 0xFF:
            raise PayloadError(f"{self.protocol_version} is not a u8", field="hello.protocol_version")
        if len(self.sensors) > 0xFF:
            raise PayloadError(f"{len(self.sensors)} sensors > 255", field="hello.sensors")
        ids = [s.sensor_id for s in self.sensors]
        if len(set(ids)) != len(ids):
            raise PayloadError(f"duplicate sensor ids {ids}", field="hello.sensors")

    def sensor_map(self) -> dict[int, SensorInfo]:
        return {s.sensor_id: s for s in self.sensors}


@dataclass(frozen=True, eq=False)
class Samples:
    """``raw`` (count, channels) consecutive samples of one sensor; first at ``t_device_us``.

    Decoded arrays are read-only views of the received bytes (messages are immutable).
    A 1-D ``raw`` is taken as one channel.
    """

    sensor_id: int  # u8
    seq: int  # u16, per sensor, wraps
    t_device_us: int  # u64, device clock of the first sample
    raw: np.ndarray  # (count, channels)

    def __post_init__(self) -> None:
        raw = np.asarray(self.raw)
        if raw.ndim == 1:
            raw = raw[:, None]
        if raw.ndim != 2 or not 1 <= raw.shape[1] <= 0xFF or raw.shape[0] > 0xFFFF:
            raise PayloadError(f"shape {raw.shape} is not (count<=65535, 1..255)", field="samples.raw")
        SampleFormat.from_dtype(raw.dtype)
        object.__setattr__(self, "raw", raw)
        _check_uint(self.sensor_id, 8, "samples.sensor_id")
        _check_uint(self.seq, 16, "samples.seq")
        _check_uint(self.t_device_us, 64, "samples.t_device_us")

    @classmethod
    def _from_wire(cls, sensor_id: int, seq: int, t_device_us: int, raw: np.ndarray) -> Samples:
        """Trusted construction for decoders: the wire layout already range-checked every
        field, and ``raw`` is a ``(count, channels)`` view in a wire dtype. Skips
        ``__post_init__`` and the frozen ``__setattr__``, which cost more than the parse.
        (:class:`firmware_bridge.framing.FrameDecoder` inlines the same four stores.)"""
        msg = object.__new__(cls)
        d = msg.__dict__
        d["sensor_id"] = sensor_id
        d["seq"] = seq
        d["t_device_us"] = t_device_us
        d["raw"] = raw
        return msg

    @property
    def count(self) -> int:
        return int(self.raw.shape[0])

    @property
    def channels(self) -> int:
        return int(self.raw.shape[1])

    @property
    def sample_format(self) -> SampleFormat:
        return SampleFormat.from_dtype(self.raw.dtype)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Samples):
            return NotImplemented
        return (
            self.sensor_id == other.sensor_id
            and self.seq == other.seq
            and self.t_device_us == other.t_device_us
            and self.sample_format == other.sample_format
            and self.raw.shape == other.raw.shape
            and bool(np.array_equal(self.raw, other.raw, equal_nan=self.raw.dtype.kind == "f"))
        )

    __hash__ = None  # type: ignore[assignment]  # holds an ndarray


@dataclass(frozen=True)
class Event:
    """Something happened on the device at ``t_device_us``; see :class:`EventKind`."""

    kind: EventKind
    seq: int  # u16, one counter for all events of a device
    t_device_us: int  # u64
    value: int  # i32

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", EventKind(self.kind))
        except ValueError:
            raise PayloadError(f"{self.kind!r} is not an event kind", field="event.kind") from None
        _check_uint(self.seq, 16, "event.seq")
        _check_uint(self.t_device_us, 64, "event.t_device_us")
        if not -(1 << 31) <= self.value < (1 << 31):
            raise PayloadError(f"{self.value} is not an i32", field="event.value")

    @classmethod
    def _from_wire(cls, kind: int, seq: int, t_device_us: int, value: int) -> Event:
        """Trusted construction from unpacked wire fields (u16, u64, i32 by layout); only
        ``kind`` is checked. :class:`PayloadError` for an unknown kind."""
        k = _EVENT_KINDS.get(kind)
        if k is None:
            raise PayloadError(f"{kind!r} is not an event kind", field="event.kind")
        msg = object.__new__(cls)
        msg.__dict__.update(kind=k, seq=seq, t_device_us=t_device_us, value=value)
        return msg


@dataclass(frozen=True)
class TimeSync:
    """A (device clock, hub clock) pair, both in µs.

    ``t_hub_us == 0`` means the device does not know the hub's time (one-way link): the hub
    pairs ``t_device_us`` with its own reception time. Otherwise the device echoes the hub
    time of a hub-initiated request (two-way), see ``PROTOCOL.md``.
    """

    seq: int  # u16
    t_device_us: int  # u64
    t_hub_us: int  # u64

    def __post_init__(self) -> None:
        _check_uint(self.seq, 16, "time_sync.seq")
        _check_uint(self.t_device_us, 64, "time_sync.t_device_us")
        _check_uint(self.t_hub_us, 64, "time_sync.t_hub_us")

    @classmethod
    def _from_wire(cls, seq: int, t_device_us: int, t_hub_us: int) -> TimeSync:
        """Trusted construction from unpacked wire fields (u16, u64, u64 by layout)."""
        msg = object.__new__(cls)
        msg.__dict__.update(seq=seq, t_device_us=t_device_us, t_hub_us=t_hub_us)
        return msg


Message: TypeAlias = Hello | Samples | Event | TimeSync
_EVENT_KINDS: Final = {int(k): k for k in EventKind}  # wire code -> kind, for _from_wire


def _check_uint(v: int, bits: int, field: str) -> None:
    if not (isinstance(v, int | np.integer) and 0 <= v < (1 << bits)):
        raise PayloadError(f"{v!r} is not a u{bits}", field=field)


def _check_string(s: str, field: str) -> None:
    if not isinstance(s, str):
        raise PayloadError(f"{s!r} is not a str", field=field)
    if len(s.encode("utf-8")) > MAX_STRING_BYTES:
        raise PayloadError(f"longer than {MAX_STRING_BYTES} UTF-8 bytes", field=field)


# -- layouts ----------------------------------------------------------------------------------
_HEADER: Final = struct.Struct("<BB")  # version, type
# sensor_id, format, channels, seq, t_device_us, count (after the packet header)
_SAMPLES: Final = struct.Struct("<BBBBBHQH")
SAMPLES_HEADER_SIZE: Final = _SAMPLES.size
_EVENT: Final = struct.Struct("<BBBHQi")  # header, kind, seq, t_device_us, value
_TIME_SYNC: Final = struct.Struct("<BBHQQ")  # header, seq, t_device_us, t_hub_us
_SENSOR: Final = struct.Struct("<BBBfff")  # id, format, channels, rate_hz, scale, offset
_U8: Final = struct.Struct("<B")


def _put_str(out: bytearray, s: str) -> None:
    b = s.encode("utf-8")
    out += _U8.pack(len(b))
    out += b


def encode_message(msg: Message) -> bytes:
    """A message -> packet bytes (header + body, no CRC)."""
    if isinstance(msg, Samples):
        raw = msg.raw
        fmt = SampleFormat.from_dtype(raw.dtype)
        head = _SAMPLES.pack(
            PROTOCOL_VERSION, MessageType.SAMPLES, msg.sensor_id, fmt, raw.shape[1],
            msg.seq, msg.t_device_us, raw.shape[0],
        )  # fmt: skip
        return head + raw.astype(fmt.dtype, copy=False).tobytes()
    if isinstance(msg, Event):
        return _EVENT.pack(
            PROTOCOL_VERSION, MessageType.EVENT, msg.kind, msg.seq, msg.t_device_us, msg.value
        )
    if isinstance(msg, TimeSync):
        return _TIME_SYNC.pack(
            PROTOCOL_VERSION, MessageType.TIME_SYNC, msg.seq, msg.t_device_us, msg.t_hub_us
        )
    if isinstance(msg, Hello):
        out = bytearray(_HEADER.pack(PROTOCOL_VERSION, MessageType.HELLO))
        _put_str(out, msg.device_id)
        _put_str(out, msg.firmware_version)
        out += bytes((msg.protocol_version, len(msg.sensors)))
        for s in msg.sensors:
            out += _SENSOR.pack(
                s.sensor_id, s.sample_format, s.channels, s.rate_hz, s.scale, s.offset
            )
            _put_str(out, s.kind)
            _put_str(out, s.unit)
        return bytes(out)
    raise PayloadError(f"{type(msg).__name__} is not a protocol message", field="message")


class _Reader:
    """Cursor over a body that raises :class:`TruncatedError` naming the field it wanted."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise TruncatedError(what, needed=end, got=len(self.data))
        b = self.data[self.pos : end]
        self.pos = end
        return b

    def string(self, what: str) -> str:
        n = self.take(1, what)[0]
        try:
            return self.take(n, what).decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("not UTF-8", field=what) from None


def _decode_hello(data: bytes) -> Hello:
    r = _Reader(data, HEADER_SIZE)
    device_id = r.string("hello.device_id")
    firmware = r.string("hello.firmware_version")
    version, n = r.take(2, "hello.protocol_version")
    sensors = []
    for i in range(n):
        sid, fmt, ch, rate, scale, offset = _SENSOR.unpack(r.take(_SENSOR.size, f"hello.sensor[{i}]"))
        kind = r.string(f"hello.sensor[{i}].kind")
        unit = r.string(f"hello.sensor[{i}].unit")
        sensors.append(SensorInfo(sid, kind, unit, rate, ch, fmt, scale, offset))
    if r.pos != len(data):
        raise PayloadError(f"{len(data) - r.pos} trailing bytes", field="hello")
    return Hello(device_id, firmware, version, tuple(sensors))


def _decode_samples_at(
    data: bytes, start: int, end: int, sensors: Mapping[int, SensorInfo] | None
) -> Samples:
    """SAMPLES packet in ``data[start:end]`` (header checked by the caller) -> :class:`Samples`.

    Takes offsets so the stream decoder can view one decoded buffer without slicing copies.
    """
    n = end - start
    if n < SAMPLES_HEADER_SIZE:
        raise TruncatedError("samples.header", needed=SAMPLES_HEADER_SIZE, got=n)
    _, _, sid, fmt, ch, seq, t_us, count = _SAMPLES.unpack_from(data, start)
    dt = _DTYPE_BY_CODE[fmt]
    if dt is None:
        raise PayloadError(f"unknown sample format {fmt}", field="samples.format")
    if ch == 0:
        raise PayloadError("zero channels", field="samples.channels")
    need = SAMPLES_HEADER_SIZE + count * ch * dt.itemsize
    if n != need:
        if n < need:
            raise TruncatedError("samples.data", needed=need, got=n)
        raise PayloadError(f"{n - need} trailing bytes", field="samples")
    if sensors:
        info = sensors.get(sid)
        if info is not None and (info.sample_format != fmt or info.channels != ch):
            raise PayloadError(
                f"sensor {sid} announced {info.sample_format.name}x{info.channels}, "
                f"packet has {SampleFormat(fmt).name}x{ch}",
                field="samples.format",
            )
    # a read-only (count, channels) view of the packet bytes
    raw = np.ndarray((count, ch), dt, data, start + SAMPLES_HEADER_SIZE)
    return Samples._from_wire(sid, seq, t_us, raw)


def decode_message(
    payload: bytes, sensors: Mapping[int, SensorInfo] | None = None
) -> Message:
    """Packet bytes (header + body, CRC already checked and removed) -> message.

    ``sensors`` (from the device's HELLO), when given, is checked against SAMPLES packets
    of known sensors. Raises a :class:`~firmware_bridge.errors.ProtocolError` subclass.
    """
    if not isinstance(payload, bytes):
        payload = bytes(payload)  # decoded arrays view the bytes: never a mutable buffer
    n = len(payload)
    if n < HEADER_SIZE:
        raise TruncatedError("header", needed=HEADER_SIZE, got=n)
    version = payload[0]
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersionError(version, PROTOCOL_VERSION)
    mtype = payload[1]
    if mtype == MessageType.SAMPLES:
        return _decode_samples_at(payload, 0, n, sensors)
    if mtype == MessageType.EVENT:
        if n != _EVENT.size:
            _size_error("event", n, _EVENT.size)
        _, _, kind, seq, t_us, value = _EVENT.unpack(payload)
        return Event._from_wire(kind, seq, t_us, value)
    if mtype == MessageType.TIME_SYNC:
        if n != _TIME_SYNC.size:
            _size_error("time_sync", n, _TIME_SYNC.size)
        _, _, seq, t_dev, t_hub = _TIME_SYNC.unpack(payload)
        return TimeSync._from_wire(seq, t_dev, t_hub)
    if mtype == MessageType.HELLO:
        return _decode_hello(payload)
    raise UnknownMessageError(mtype)


def _size_error(what: str, got: int, needed: int) -> None:
    if got < needed:
        raise TruncatedError(what, needed=needed, got=got)
    raise PayloadError(f"{got - needed} trailing bytes", field=what)
