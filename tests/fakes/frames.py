"""The one reference decoder that FrameDecoder is checked against: ``decode_frame`` on each frame.

Shared by the framing tests, the property tests and the atheris harness ``fuzz_frames``:
whatever internal path the streaming decoder takes (Python loop, vectorised, cached
headers), it must yield exactly these messages and count exactly these rejections.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from firmware_bridge.errors import ProtocolError
from firmware_bridge.framing import MAX_FRAME_LEN, decode_frame
from firmware_bridge.protocol import Hello, Message, SensorInfo


def reference_decode(stream: bytes) -> tuple[list[Message], Counter[str]]:
    """decode_frame on each 0x00-delimited frame, with the sensors of the last HELLO."""
    *complete, trailing = stream.split(b"\x00")
    msgs: list[Message] = []
    stats: Counter[str] = Counter()
    sensors: dict[int, SensorInfo] = {}
    for frame in complete:
        if not frame:
            stats["empty"] += 1
            continue
        if len(frame) > MAX_FRAME_LEN:
            stats["oversize"] += 1
            continue
        try:
            m = decode_frame(frame, sensors)
        except ProtocolError as e:
            stats[e.reason] += 1
            continue
        if isinstance(m, Hello):
            sensors = m.sensor_map()
        msgs.append(m)
    if len(trailing) > MAX_FRAME_LEN:
        stats["oversize"] += 1  # counted when it outgrows the buffer, before its delimiter
    return msgs, stats


def decode_or_reason(fn: Callable[[], Message]) -> Message | str:
    """``fn()``, or the reason of the ProtocolError it raised (no other error may escape)."""
    try:
        return fn()
    except ProtocolError as e:
        return e.reason
