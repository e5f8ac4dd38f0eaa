"""Serial framing: packet + CRC-16/CCITT-FALSE, COBS-encoded, 0x00-delimited.

::

    packet = header + body                       (firmware_bridge.protocol)
    frame  = COBS(packet + crc16(packet)) + 0x00

``crc16`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor;
``binascii.crc_hqx(data, 0xFFFF)``, check value 0x29B1 for ``b"123456789"``). It is the one
field sent **big-endian** (high byte first), the convention for this CRC: the CRC over
``packet + crc`` is then 0, so a receiver checks a packet with a single pass.

COBS (Cheshire & Baker 1999) removes every 0x00 from the encoded bytes, so 0x00 only ever
marks the end of a frame and a receiver that starts mid-stream or loses bytes
resynchronises at the next 0x00. Overhead: 1 byte per 254 plus the delimiter.

- :func:`encode_frame` / :func:`decode_frame`: one frame; ``decode_frame`` raises a
  :class:`~firmware_bridge.errors.ProtocolError` subclass saying what is wrong.
- :func:`encode_packet` / :func:`decode_packet`: packet + CRC without COBS (what a BLE
  notification carries, see :mod:`firmware_bridge.gatt`).
- :class:`FrameDecoder`: the streaming decoder for a serial port. ``feed(data)`` accepts
  any chunking, never raises on corrupt input, counts each rejected frame by reason in
  ``stats`` and bounds its buffer to :data:`MAX_FRAME_LEN`.

Speed: the decoder works on everything a ``feed`` call completed at once. The COBS
pointer chase (each code byte says where the next one is) advances all frames of the chunk
together as numpy index arrays, so Python-level work per frame is a slice, a CRC and the
message parse. Measured by ``benchmarks/bench_decoder.py``.
"""

from __future__ import annotations

import binascii
from collections import Counter
from collections.abc import Mapping
from typing import Final

import numpy as np

from firmware_bridge.errors import (
    CrcError,
    FrameTooLongError,
    FramingError,
    ProtocolError,
    TruncatedError,
)
from firmware_bridge.protocol import (
    _DTYPE_BY_CODE,
    _SAMPLES,
    HEADER_SIZE,
    PROTOCOL_VERSION,
    SAMPLES_HEADER_SIZE,
    Hello,
    Message,
    MessageType,
    Samples,
    SensorInfo,
    decode_message,
    encode_message,
)

__all__ = [
    "CRC_INIT",
    "CRC_SIZE",
    "MAX_FRAME_LEN",
    "MAX_PACKET_LEN",
    "FrameDecoder",
    "cobs_decode",
    "cobs_encode",
    "crc16",
    "decode_frame",
    "decode_packet",
    "encode_frame",
    "encode_packet",
]

CRC_INIT: Final = 0xFFFF  # CRC-16/CCITT-FALSE initial value
CRC_SIZE: Final = 2
# Largest packet (header + body + CRC). 2 KiB holds 1 s of 700 Hz int16 ECG or 0.5 s of a
# 3-axis int16 accelerometer at 300 Hz, yet two of them fit a small MCU's RAM
# (double-buffered transmit) and a hub never holds more than this per stalled stream.
MAX_PACKET_LEN: Final = 2048
# COBS adds one byte per 254 plus the leading code byte.
MAX_FRAME_LEN: Final = MAX_PACKET_LEN + MAX_PACKET_LEN // 254 + 1
# Below this many frames still being chased, a plain Python loop beats another numpy round.
_VECTOR_MIN_FRAMES: Final = 16
_SAMPLES_TYPE: Final = int(MessageType.SAMPLES)


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE."""
    return binascii.crc_hqx(data, CRC_INIT)


def cobs_encode(data: bytes | bytearray | memoryview) -> bytes:
    """COBS-encode ``data``; the result has no 0x00 (the delimiter is not appended).

    Canonical form (as the C reference and the ``cobs`` package): a final block of exactly
    254 non-zero bytes is not followed by an empty ``0x01`` block.
    """
    out = bytearray()
    parts = bytes(data).split(b"\x00")
    last = len(parts) - 1
    for i, part in enumerate(parts):
        n = len(part)
        j = 0
        while n - j >= 254:
            out.append(0xFF)
            out += part[j : j + 254]
            j += 254
        if j < n or j == 0 or i < last:
            out.append(n - j + 1)
            out += part[j:]
    return bytes(out)


def cobs_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Inverse of :func:`cobs_encode` (no delimiter); :class:`FramingError` if malformed."""
    data = bytes(data)
    n = len(data)
    if n == 0:
        raise FramingError("empty COBS block")
    if 0 in data:
        raise FramingError(f"0x00 inside a COBS frame at offset {data.index(0)}")
    out = bytearray()
    i = 0
    while i < n:
        code = data[i]
        j = i + code
        if j > n:
            raise FramingError(f"COBS block at offset {i} runs {j - n} bytes past the frame end")
        out += data[i + 1 : j]
        if code != 0xFF and j < n:
            out.append(0)
        i = j
    return bytes(out)


def encode_packet(msg_or_payload: Message | bytes) -> bytes:
    """A message (or packet bytes from :func:`encode_message`) + its CRC, big-endian."""
    pkt = msg_or_payload if isinstance(msg_or_payload, bytes) else encode_message(msg_or_payload)
    if len(pkt) + CRC_SIZE > MAX_PACKET_LEN:
        raise FrameTooLongError(len(pkt) + CRC_SIZE, MAX_PACKET_LEN)
    return pkt + crc16(pkt).to_bytes(2, "big")


def decode_packet(packet: bytes, sensors: Mapping[int, SensorInfo] | None = None) -> Message:
    """Packet + CRC -> message; raises a :class:`ProtocolError` subclass."""
    n = len(packet)
    if n > MAX_PACKET_LEN:
        raise FrameTooLongError(n, MAX_PACKET_LEN)
    if n < HEADER_SIZE + CRC_SIZE:
        raise TruncatedError("packet", needed=HEADER_SIZE + CRC_SIZE, got=n)
    if crc16(packet) != 0:
        raise CrcError(int.from_bytes(packet[-2:], "big"), crc16(packet[:-2]))
    return decode_message(bytes(packet[:-2]), sensors)


def encode_frame(msg_or_payload: Message | bytes) -> bytes:
    """A message (or packet bytes without CRC) -> a complete frame ending in 0x00."""
    return cobs_encode(encode_packet(msg_or_payload)) + b"\x00"


def decode_frame(frame: bytes, sensors: Mapping[int, SensorInfo] | None = None) -> Message:
    """One frame (with or without its trailing 0x00) -> message.

    Raises :class:`FramingError` (bad COBS), :class:`FrameTooLongError`,
    :class:`TruncatedError`, :class:`CrcError`, :class:`UnknownMessageError`,
    :class:`UnsupportedVersionError` or :class:`PayloadError`.
    """
    frame = bytes(frame)
    if frame.endswith(b"\x00"):
        frame = frame[:-1]
    if len(frame) > MAX_FRAME_LEN:
        raise FrameTooLongError(len(frame), MAX_FRAME_LEN)
    return decode_packet(cobs_decode(frame), sensors)


class FrameDecoder:
    """Streaming frame decoder: bytes in any chunking -> messages, never raises on bad input.

    ``stats`` counts ``frames`` (decoded), ``bytes`` (fed) and every rejected frame under its
    :attr:`ProtocolError.reason` (``framing``, ``oversize``, ``truncated``, ``crc``,
    ``unknown_type``, ``version``, ``payload``); ``empty`` counts bare delimiters (idle
    fill some firmwares send, not an error). ``sensors`` follows the last HELLO and is used
    to check SAMPLES packets against what the device announced.
    """

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self.sensors: dict[int, SensorInfo] = {}
        self._announced: dict[int, tuple[int, int]] = {}  # sensor id -> (format, channels)
        self._buf = b""
        self._discarding = False  # inside an over-long frame: drop bytes up to the next 0x00

    def reset(self) -> None:
        """Forget a partial frame (after a reconnect); counters and sensors are kept."""
        self._buf = b""
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held (never more than :data:`MAX_FRAME_LEN`)."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add received bytes; return the messages of every frame they complete, in order."""
        if not data:
            return []
        self.stats["bytes"] += len(data)
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        last = buf.rfind(b"\x00")
        tail = buf[last + 1 :]
        if len(tail) > MAX_FRAME_LEN:
            if not self._discarding or last >= 0:
                self.stats[FrameTooLongError.reason] += 1
            tail = b""
            discard_after = True
        else:
            discard_after = False
        if last < 0:
            self._buf = tail
            self._discarding = self._discarding or discard_after
            return []
        skip_first = self._discarding
        self._discarding = discard_after
        self._buf = tail
        return self._decode_region(buf[: last + 1], skip_first)

    def _decode_few(self, region: bytes, skip_first: bool) -> list[Message]:
        """Frame by frame: cheaper than the numpy set-up when a read completed few frames."""
        stats = self.stats
        msgs: list[Message] = []
        for i, piece in enumerate(region.split(b"\x00")[:-1]):
            if i == 0 and skip_first:  # the tail of an over-long frame, already counted
                continue
            if not piece:
                stats["empty"] += 1
                continue
            if len(piece) > MAX_FRAME_LEN:
                stats[FrameTooLongError.reason] += 1
                continue
            try:
                msg = decode_packet(cobs_decode(piece), self.sensors)
            except ProtocolError as e:
                stats[e.reason] += 1
                continue
            if isinstance(msg, Hello):
                self._learn(msg)
            msgs.append(msg)
        stats["frames"] += len(msgs)
        return msgs

    def _learn(self, hello: Hello) -> None:
        self.sensors = hello.sensor_map()
        self._announced = {s.sensor_id: (int(s.sample_format), s.channels) for s in hello.sensors}

    # -- batch decoding ------------------------------------------------------------------
    def _decode_region(self, region: bytes, skip_first: bool) -> list[Message]:
        """Decode ``region`` (ends with 0x00): all its frames at once."""
        if region.count(0) < _VECTOR_MIN_FRAMES:
            return self._decode_few(region, skip_first)
        stats = self.stats
        a = np.frombuffer(region, np.uint8)
        ends = np.flatnonzero(a == 0)  # (F,) delimiter positions
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        lengths = ends - starts
        valid = (lengths > 0) & (lengths <= MAX_FRAME_LEN)
        if skip_first:  # the tail of an over-long frame, already counted
            valid[0] = False
            lengths[0] = -1
        n_empty = int(np.count_nonzero(lengths == 0))
        if n_empty:
            stats["empty"] += n_empty
        n_long = int(np.count_nonzero(lengths > MAX_FRAME_LEN))
        if n_long:
            stats[FrameTooLongError.reason] += n_long
        idx = np.flatnonzero(valid)
        if idx.size == 0:
            return []

        # COBS pointer chase, all frames in step: positions of every code byte.
        bad = np.zeros(ends.size, bool)
        pos_parts: list[np.ndarray] = []
        fid_parts: list[np.ndarray] = []
        cur, end, fid = starts[idx], ends[idx], idx
        while cur.size >= _VECTOR_MIN_FRAMES:
            pos_parts.append(cur)
            fid_parts.append(fid)
            nxt = cur + a[cur]
            done = nxt >= end
            if done.any():
                bad[fid[nxt > end]] = True
                more = ~done
                cur, end, fid = nxt[more], end[more], fid[more]
            else:
                cur = nxt
        if cur.size:
            tail_pos: list[int] = []
            tail_fid: list[int] = []
            for c, e, f in zip(cur.tolist(), end.tolist(), fid.tolist(), strict=True):
                while c < e:
                    tail_pos.append(c)
                    tail_fid.append(f)
                    c += region[c]
                if c != e:
                    bad[f] = True
            pos_parts.append(np.asarray(tail_pos, dtype=starts.dtype))
            fid_parts.append(np.asarray(tail_fid, dtype=starts.dtype))
        n_bad = int(np.count_nonzero(bad))
        if n_bad:
            stats[FramingError.reason] += n_bad
        good = valid & ~bad
        gidx = np.flatnonzero(good)
        if gidx.size == 0:
            return []
        pos = np.concatenate(pos_parts)
        if n_bad:
            pos = pos[good[np.concatenate(fid_parts)]]

        # Undo COBS in one pass: a code byte is the zero the previous block implied (or is
        # dropped after a 0xFF block); the first code byte and the delimiter are dropped.
        codes = a[pos]
        nxt = pos + codes
        inner = a[nxt] != 0  # not the frame's last block
        out = a.copy()
        keep = np.ones(a.size, bool)
        keep[ends] = False
        keep[starts[gidx]] = False
        full = codes == 0xFF
        out[nxt[inner & ~full]] = 0
        keep[nxt[inner & full]] = False
        ck = np.zeros(a.size + 1, np.int64)
        np.cumsum(keep, out=ck[1:])
        dec = out[keep].tobytes()
        mv = memoryview(dec)
        d_starts = ck[starts[gidx]].tolist()
        d_ends = ck[ends[gidx]].tolist()

        msgs: list[Message] = []
        append = msgs.append
        sensors = self.sensors
        announced = self._announced
        crc = binascii.crc_hqx
        unpack_from = _SAMPLES.unpack_from
        ndarray = np.ndarray
        new = object.__new__
        min_len = HEADER_SIZE + CRC_SIZE
        for ds, de in zip(d_starts, d_ends, strict=True):
            if de - ds < min_len:
                stats[TruncatedError.reason] += 1
                continue
            if de - ds > MAX_PACKET_LEN:  # a frame under MAX_FRAME_LEN can still decode to more
                stats[FrameTooLongError.reason] += 1
                continue
            if crc(mv[ds:de], CRC_INIT):
                stats[CrcError.reason] += 1
                continue
            # Hot path: a well-formed SAMPLES packet, parsed inline. Anything unusual falls
            # through to decode_message, which raises the precise error.
            if dec[ds + 1] == _SAMPLES_TYPE and dec[ds] == PROTOCOL_VERSION and (
                de - ds >= SAMPLES_HEADER_SIZE + CRC_SIZE
            ):
                _, _, sid, fmt, ch, seq, t_us, count = unpack_from(dec, ds)
                dt = _DTYPE_BY_CODE[fmt]
                if (
                    dt is not None
                    and ch
                    and de - ds == SAMPLES_HEADER_SIZE + CRC_SIZE + count * ch * dt.itemsize
                    and announced.get(sid, (fmt, ch)) == (fmt, ch)
                ):
                    msg = new(Samples)
                    attrs = msg.__dict__  # bypasses the frozen __setattr__ (costly per field)
                    attrs["sensor_id"] = sid
                    attrs["seq"] = seq
                    attrs["t_device_us"] = t_us
                    attrs["raw"] = ndarray((count, ch), dt, dec, ds + SAMPLES_HEADER_SIZE)
                    append(msg)
                    continue
            try:
                m = decode_message(dec[ds : de - CRC_SIZE], sensors)
            except ProtocolError as e:
                stats[e.reason] += 1
                continue
            if isinstance(m, Hello):
                self._learn(m)
                sensors, announced = self.sensors, self._announced
            append(m)
        stats["frames"] += len(msgs)
        return msgs
