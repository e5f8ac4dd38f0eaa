"""atheris harness: serial frames and protocol packets (firmware_bridge.framing / .protocol).

Input byte 0 picks a chunk size, the rest is a serial stream. Checked per input:

- ``FrameDecoder.feed`` in those chunks never raises, holds at most ``MAX_FRAME_LEN`` bytes,
  and gives exactly what ``decode_frame`` gives frame by frame (messages and rejection
  counts; ``tests.fakes.frames.reference_decode``): the streaming decoder's vectorised path
  and the plain one must agree;
- ``decode_message`` / ``decode_packet`` on the raw bytes raise only ``ProtocolError``;
- every message decoded survives ``encode_message`` -> ``decode_message`` unchanged.
"""

from __future__ import annotations

import contextlib
import sys

import atheris
from _common import main

with atheris.instrument_imports(include=["firmware_bridge"]):
    from firmware_bridge.errors import ProtocolError
    from firmware_bridge.framing import MAX_FRAME_LEN, FrameDecoder, decode_packet, encode_frame
    from firmware_bridge.protocol import Message, decode_message, encode_message
    from tests.fakes.frames import reference_decode
    from tests.fakes.inputs import frame_with_valid_crc, valid_messages


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
    want, want_stats = reference_decode(stream)
    assert got == want, (got, want)
    rejected = {k: v for k, v in dec.stats.items() if k not in ("bytes", "frames") and v}
    assert rejected == {k: v for k, v in want_stats.items() if v}, (dec.stats, want_stats)
    for m in got:
        assert decode_message(encode_message(m)) == m
    for parse in (decode_message, decode_packet):
        with contextlib.suppress(ProtocolError):
            parse(stream)


def _seeds() -> list[bytes]:
    frames = [encode_frame(m) for m in valid_messages()]
    stream = b"".join(frames)
    long_pkt = bytes((1, 2)) + b"\x01" * 2050
    return [
        b"\x00" + stream,
        b"\x03" + stream * 3 + b"\x00" * 16,
        b"\x00" + frames[1][:-5] + frames[2],
        b"\x00" + frame_with_valid_crc(long_pkt),
        b"\x01" + b"\x07" * 2100 + b"\x00" + frames[0],
    ]


if __name__ == "__main__":
    main("frames", test_one_input, _seeds())
    sys.exit(0)
