"""atheris harness: serial frames and protocol packets (firmware_bridge.framing / .protocol).

Input byte 0 picks a chunk size, the rest is a serial stream. Checked per input:

- ``FrameDecoder.feed`` in those chunks never raises, holds at most ``MAX_FRAME_LEN`` bytes,
  and gives exactly what ``decode_frame`` gives frame by frame (messages and rejection
  counts): the streaming decoder's vectorised path and the plain one must agree;
- ``decode_message`` / ``decode_packet`` on the raw bytes raise only ``ProtocolError``;
- every message decoded survives ``encode_message`` -> ``decode_message`` unchanged.
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter

import atheris
import numpy as np
from _common import main

with atheris.instrument_imports(include=["firmware_bridge"]):
    from firmware_bridge.errors import ProtocolError
    from firmware_bridge.framing import (
        MAX_FRAME_LEN,
        FrameDecoder,
        cobs_encode,
        crc16,
        decode_frame,
        decode_packet,
        encode_frame,
    )
    from firmware_bridge.protocol import (
        Event,
        EventKind,
        Hello,
        Message,
        SampleFormat,
        Samples,
        SensorInfo,
        TimeSync,
        decode_message,
        encode_message,
    )


def _reference(stream: bytes) -> tuple[list[Message], Counter[str]]:
    *complete, trailing = stream.split(b"\x00")
    msgs: list[Message] = []
    stats: Counter[str] = Counter()
    sensors: dict[int, SensorInfo] = {}
    for frame in complete:
        if not frame:
            stats["empty"] += 1
        elif len(frame) > MAX_FRAME_LEN:
            stats["oversize"] += 1
        else:
            try:
                m = decode_frame(frame, sensors)
            except ProtocolError as e:
                stats[e.reason] += 1
                continue
            if isinstance(m, Hello):
                sensors = m.sensor_map()
            msgs.append(m)
    if len(trailing) > MAX_FRAME_LEN:
        stats["oversize"] += 1
    return msgs, stats


def test_one_input(data: bytes) -> None:
    if not data:
        return
    chunk = 1 + data[0] * 17  # 1 .. 4336 bytes per read
    stream = data[1:]
    dec = FrameDecoder()
    got: list[Message] = []
    for i in range(0, len(stream), chunk):
        got += dec.feed(stream[i : i + chunk])
        assert dec.buffered <= MAX_FRAME_LEN
    want, want_stats = _reference(stream)
    assert got == want, (got, want)
    rejected = {k: v for k, v in dec.stats.items() if k not in ("bytes", "frames") and v}
    assert rejected == {k: v for k, v in want_stats.items() if v}, (dec.stats, want_stats)
    for m in got:
        assert decode_message(encode_message(m)) == m
    for parse in (decode_message, decode_packet):
        with contextlib.suppress(ProtocolError):
            parse(stream)


def _seeds() -> list[bytes]:
    hello = Hello("wrist-01", "1.2.0", 1, (
        SensorInfo(0, "bvp", "a.u.", 64.0, 1, SampleFormat.INT16, 0.01),
        SensorInfo(1, "acc", "g", 32.0, 3, SampleFormat.INT8, 1 / 64),
        SensorInfo(2, "eda", "uS", 4.0, 1, SampleFormat.FLOAT32, 1.0),
    ))
    msgs: list[Message] = [
        hello,
        Samples(0, 1, 10**6, np.arange(16, dtype="<i2")),
        Samples(1, 2, 10**6, np.ones((8, 3), dtype="<i1")),
        Samples(2, 3, 10**6, np.full((4, 1), 0.5, dtype="<f4")),
        Event(EventKind.BATTERY, 4, 2 * 10**6, 87),
        TimeSync(5, 3 * 10**6, 0),
    ]
    frames = [encode_frame(m) for m in msgs]
    stream = b"".join(frames)
    long_pkt = bytes((1, 2)) + b"\x01" * 2050
    return [
        b"\x00" + stream,
        b"\x03" + stream * 3 + b"\x00" * 16,
        b"\x00" + frames[1][:-5] + frames[2],
        b"\x00" + cobs_encode(long_pkt + crc16(long_pkt).to_bytes(2, "big")) + b"\x00",
        b"\x01" + b"\x07" * 2100 + b"\x00" + frames[0],
    ]


if __name__ == "__main__":
    main("frames", test_one_input, _seeds())
    sys.exit(0)
