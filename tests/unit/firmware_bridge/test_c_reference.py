"""The C reference (firmware_bridge/c) agrees with Python byte for byte, from shared vectors.

The C is compiled with gcc as a firmware would (C99, all warnings as errors) into a shared
library and called through ctypes: C builds every valid vector's frame from its decoded
meaning and must produce the vector's bytes; C decodes every vector frame (and random
Python-made frames) back to the packet; C rejects every invalid vector. On streams the C
builders make, the hub's streaming ``FrameDecoder`` yields what C framing + ``decode_message``
yield, frame by frame, in any read sizes.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import ProtocolError
from firmware_bridge.framing import (
    MAX_FRAME_LEN,
    MAX_PACKET_LEN,
    FrameDecoder,
    cobs_decode,
    cobs_encode,
    crc16,
    decode_frame,
    encode_frame,
)
from firmware_bridge.protocol import EventKind, Hello, SampleFormat, decode_message, encode_message
from firmware_bridge.vectors.generate import VECTORS_PATH, build_vectors, message_from_meaning

C_DIR = Path(__file__).resolve().parents[3] / "firmware_bridge" / "c"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
CAP = 4096
# C decoder error codes -> the hub's reasons (the C decoder stops at framing + CRC)
C_ERRORS = {-1: "framing", -2: "truncated", -3: "crc"}


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    gcc = shutil.which("gcc")
    assert gcc is not None, "gcc is required (apt-get install gcc)"
    out = tmp_path_factory.mktemp("c") / "libwearable_proto.so"
    subprocess.run(
        [gcc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror",
         "-shared", "-fPIC", "-o", str(out), str(C_DIR / "wearable_proto.c")],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    so = ctypes.CDLL(str(out))
    size_t, u8p = ctypes.c_size_t, ctypes.POINTER(ctypes.c_uint8)
    so.wp_crc16.restype = ctypes.c_uint16
    so.wp_crc16.argtypes = [u8p, size_t, ctypes.c_uint16]
    so.wp_cobs_encode.restype = size_t
    so.wp_cobs_encode.argtypes = [u8p, size_t, u8p, size_t]
    so.wp_cobs_decode.restype = ctypes.c_int32
    so.wp_cobs_decode.argtypes = [u8p, size_t, u8p, size_t]
    so.wp_encode_frame.restype = size_t
    so.wp_encode_frame.argtypes = [u8p, size_t, u8p, size_t]
    so.wp_decode_frame.restype = ctypes.c_int32
    so.wp_decode_frame.argtypes = [u8p, size_t, u8p, size_t]
    so.wp_append_crc.restype = size_t
    so.wp_append_crc.argtypes = [u8p, size_t, size_t]
    so.wp_build_samples.restype = size_t
    so.wp_build_samples.argtypes = [
        u8p, size_t, ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint16,
        ctypes.c_uint64, ctypes.c_uint16, ctypes.c_void_p,
    ]  # fmt: skip
    so.wp_build_event.restype = size_t
    so.wp_build_event.argtypes = [u8p, size_t, ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint64,
                                  ctypes.c_int32]  # fmt: skip
    so.wp_build_time_sync.restype = size_t
    so.wp_build_time_sync.argtypes = [
        u8p,
        size_t,
        ctypes.c_uint16,
        ctypes.c_uint64,
        ctypes.c_uint64,
    ]
    so.wp_hello_begin.restype = size_t
    so.wp_hello_begin.argtypes = [u8p, size_t, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint8]
    so.wp_hello_add_sensor.restype = size_t
    so.wp_hello_add_sensor.argtypes = [
        u8p, size_t, size_t, ctypes.c_uint8, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_float,
        ctypes.c_uint8, ctypes.c_uint8, ctypes.c_float, ctypes.c_float,
    ]  # fmt: skip
    return so


def _buf(data: bytes = b"", cap: int = CAP) -> Any:
    b = (ctypes.c_uint8 * max(cap, len(data), 1))()
    ctypes.memmove(b, data, len(data))
    return b


def _c_packet(lib: ctypes.CDLL, meaning: dict[str, Any]) -> bytes:
    """Build the packet with the C builders from a vector's meaning."""
    out = _buf()
    t = meaning["type"]
    if t == "samples":
        fmt = SampleFormat[meaning["format"]]
        data = np.asarray(meaning["raw"], fmt.dtype).reshape(-1, meaning["channels"])
        src = data.tobytes()
        n = lib.wp_build_samples(out, CAP, meaning["sensor_id"], int(fmt), meaning["channels"],
                                 meaning["seq"], meaning["t_device_us"], data.shape[0],
                                 src)  # fmt: skip
    elif t == "event":
        n = lib.wp_build_event(out, CAP, int(EventKind[meaning["kind"]]), meaning["seq"],
                               meaning["t_device_us"], meaning["value"])  # fmt: skip
    elif t == "time_sync":
        n = lib.wp_build_time_sync(out, CAP, meaning["seq"], meaning["t_device_us"],
                                   meaning["t_hub_us"])  # fmt: skip
    else:
        n = lib.wp_hello_begin(out, CAP, meaning["device_id"].encode(),
                               meaning["firmware_version"].encode(),
                               meaning["protocol_version"])  # fmt: skip
        for s in meaning["sensors"]:
            n = lib.wp_hello_add_sensor(
                out, CAP, n, s["sensor_id"], s["kind"].encode(), s["unit"].encode(),
                s["rate_hz"], s["channels"], int(SampleFormat[s["format"]]), s["scale"],
                s["offset"],
            )  # fmt: skip
    assert n > 0, meaning
    return bytes(out[:n])


def _c_frame(lib: ctypes.CDLL, packet: bytes) -> bytes:
    out = _buf()
    n = lib.wp_encode_frame(_buf(packet), len(packet), out, CAP)
    assert n > 0
    return bytes(out[:n])


def _c_decode(lib: ctypes.CDLL, frame: bytes) -> bytes | int:
    out = _buf()
    n = lib.wp_decode_frame(_buf(frame), len(frame), out, CAP)
    return n if n < 0 else bytes(out[:n])


def test_vectors_file_is_current() -> None:
    assert build_vectors() == VECTORS, "run: python -m firmware_bridge.vectors.generate"


def test_crc_check_value(lib: ctypes.CDLL) -> None:
    assert lib.wp_crc16(_buf(b"123456789"), 9, 0xFFFF) == 0x29B1


@pytest.mark.parametrize("v", VECTORS["cobs"], ids=lambda v: f"cobs{len(v['data_hex']) // 2}")
def test_cobs_vectors_in_c(lib: ctypes.CDLL, v: dict[str, str]) -> None:
    data, enc = bytes.fromhex(v["data_hex"]), bytes.fromhex(v["encoded_hex"])
    out = _buf()
    n = lib.wp_cobs_encode(_buf(data), len(data), out, CAP)
    assert bytes(out[:n]) == enc == cobs_encode(data)
    m = lib.wp_cobs_decode(_buf(enc), len(enc), out, CAP)
    assert bytes(out[:m]) == data


@pytest.mark.parametrize("v", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vectors_both_ways(lib: ctypes.CDLL, v: dict[str, Any]) -> None:
    packet = bytes.fromhex(v["packet_hex"])
    frame = bytes.fromhex(v["frame_hex"])
    msg = message_from_meaning(v["message"])
    # Python: meaning -> bytes and bytes -> meaning
    assert encode_message(msg) == packet
    assert encode_frame(msg) == frame
    assert decode_frame(frame) == msg
    # C: meaning -> the same bytes, and the vector frame -> the same packet
    assert _c_packet(lib, v["message"]) == packet
    assert _c_frame(lib, packet) == frame
    assert _c_decode(lib, frame) == packet
    with_crc = _buf(packet)
    n = lib.wp_append_crc(with_crc, len(packet), CAP)
    assert bytes(with_crc[:n]).hex() == v["packet_with_crc_hex"]


@pytest.mark.parametrize("v", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vectors_rejected(lib: ctypes.CDLL, v: dict[str, str]) -> None:
    frame = bytes.fromhex(v["frame_hex"])
    with pytest.raises(ProtocolError) as e:
        decode_frame(frame)
    assert e.value.reason == v["reason"]
    got = _c_decode(lib, frame)
    if v["layer"] == "frame":  # framing-level faults: C must see them too
        assert isinstance(got, int) and C_ERRORS[got] == v["reason"]
    else:  # message-level faults pass C's framing check; the hub's parser rejects them
        assert isinstance(got, bytes)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=2, max_size=1500))
def test_random_packets_agree(lib: ctypes.CDLL, packet: bytes) -> None:
    c_frame = _c_frame(lib, packet)
    assert c_frame == encode_frame(packet)
    assert _c_decode(lib, c_frame) == packet


def _py_frame_check(frame: bytes) -> bytes | None:
    """Python's framing layer alone: COBS + length + CRC, packet without CRC or None."""
    try:
        packet = cobs_decode(frame[:-1] if frame.endswith(b"\x00") else frame)
    except ProtocolError:
        return None
    if len(packet) < 4 or crc16(packet) != 0:
        return None
    return packet[:-2]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_c_and_python_framing_agree_on_noise(lib: ctypes.CDLL, noise: bytes) -> None:
    got = _c_decode(lib, noise)
    want = _py_frame_check(noise)
    if want is None:
        assert isinstance(got, int) and got < 0
    else:
        assert got == want


def test_c_refuses_small_buffers(lib: ctypes.CDLL) -> None:
    out = _buf(cap=8)
    assert lib.wp_build_event(out, 8, 1, 1, 1, 1) == 0
    assert lib.wp_build_samples(out, CAP, 1, 99, 1, 0, 0, 1, b"\x00\x00") == 0  # bad format
    packet = bytes(range(1, 100))
    assert lib.wp_encode_frame(_buf(packet), len(packet), out, 8) == 0
    assert lib.wp_decode_frame(_buf(encode_frame(packet)), len(packet) + 4, out, 8) == -4


# -- the streaming decoder against the C reference, on generated streams ---------------------
# The stream is built by the C builders (what a firmware sends), then cut into reads of any
# size. The reference is independent of the hub's decoder: C does the framing and the CRC of
# each 0x00-delimited frame, and the message layer is the plain ``decode_message`` under the
# sensors of the last HELLO. FrameDecoder's vectorised unstuffing, its SAMPLES key cache and
# its row views must give the same messages and count the same rejections.
_HELLO_MEANING: dict[str, Any] = {
    "type": "hello", "device_id": "dev-c", "firmware_version": "2.0", "protocol_version": 1,
    "sensors": [
        {"sensor_id": 1, "kind": "bvp", "unit": "a.u.", "rate_hz": 64.0, "channels": 1,
         "format": "INT16", "scale": 0.5, "offset": 0.0},
        {"sensor_id": 4, "kind": "acc", "unit": "g", "rate_hz": 32.0, "channels": 3,
         "format": "INT16", "scale": 0.25, "offset": 0.0},
        {"sensor_id": 7, "kind": "eda", "unit": "uS", "rate_hz": 4.0, "channels": 1,
         "format": "FLOAT32", "scale": 1.0, "offset": 0.0},
    ],
}  # fmt: skip
_ANNOUNCED = {s["sensor_id"]: s for s in _HELLO_MEANING["sensors"]}
C_DECODE_REASONS = {**C_ERRORS, -4: "oversize"}  # cap = the largest packet the hub accepts


def _samples_meaning(
    sid: int, fmt: str, channels: int, seq: int, rows: np.ndarray
) -> dict[str, Any]:
    return {"type": "samples", "sensor_id": sid, "format": fmt, "channels": channels, "seq": seq,
            "t_device_us": 1000 * seq, "raw": rows.reshape(-1).tolist()}  # fmt: skip


@st.composite
def _c_pieces(draw: st.DrawFn) -> tuple[str, dict[str, Any] | bytes, int]:
    """One piece of a stream: (kind, meaning or raw bytes, extra bytes after a packet)."""
    kind = draw(st.sampled_from(["hello", "samples", "samples", "samples", "long", "wrong",
                                 "event", "time_sync", "noise", "empty"]))  # fmt: skip
    seq = draw(st.integers(0, 0xFFFF))
    if kind == "hello":
        return kind, _HELLO_MEANING, 0
    if kind in ("samples", "long"):
        s = _ANNOUNCED[draw(st.sampled_from(sorted(_ANNOUNCED)))]
        dt = SampleFormat[s["format"]].dtype
        count = draw(st.integers(0 if kind == "samples" else 1, 40))
        rows = np.frombuffer(
            draw(
                st.binary(
                    min_size=count * s["channels"] * dt.itemsize,
                    max_size=count * s["channels"] * dt.itemsize,
                )
            ),
            dt,
        )
        if dt.kind == "f":
            rows = np.nan_to_num(rows)  # NaN != NaN would fail the comparison, not the decoder
        meaning = _samples_meaning(s["sensor_id"], s["format"], s["channels"], seq, rows)
        # "long": CRC-valid, but with bytes past what its count implies (the fast-path trap)
        return kind, meaning, draw(st.integers(1, 9)) if kind == "long" else 0
    if kind == "wrong":  # a sensor the HELLO announced with other channels, or one it did not
        sid, ch = draw(st.sampled_from([(4, 1), (4, 2), (1, 3), (9, 1)]))
        rows = np.arange(draw(st.integers(1, 6)) * ch, dtype=np.int16)
        return kind, _samples_meaning(sid, "INT16", ch, seq, rows), 0
    if kind == "event":
        return (
            kind,
            {
                "type": "event",
                "kind": draw(st.sampled_from([k.name for k in EventKind])),
                "seq": seq,
                "t_device_us": seq * 7,
                "value": draw(st.integers(-5, 5)),
            },
            0,
        )
    if kind == "time_sync":
        return kind, {"type": "time_sync", "seq": seq, "t_device_us": seq, "t_hub_us": 2 * seq}, 0
    if kind == "noise":
        return kind, draw(st.binary(max_size=40)), 0
    return kind, b"\x00", 0


def _c_stream(lib: ctypes.CDLL, pieces: list[tuple[str, Any, int]], flips: list[int]) -> bytes:
    frames = []
    for _kind, what, extra in pieces:
        if isinstance(what, bytes):
            frames.append(what)
            continue
        packet = _c_packet(lib, what) + bytes([0x5A]) * extra
        frames.append(_c_frame(lib, packet))
    for i, f in zip(flips, range(len(frames)), strict=False):  # corrupt a few frames' bytes
        frame = frames[f]
        if len(frame) > 1 and i % 3 == 0:
            k = i % (len(frame) - 1)
            frames[f] = frame[:k] + bytes([frame[k] ^ 0x21]) + frame[k + 1 :]
    return b"".join(frames)


def _c_reference(lib: ctypes.CDLL, stream: bytes) -> tuple[list[Any], dict[str, int]]:
    """C framing + CRC per frame, then decode_message under the last HELLO's sensors."""
    *frames, trailing = stream.split(b"\x00")
    msgs: list[Any] = []
    stats: Counter[str] = Counter()
    sensors: dict[int, Any] = {}
    for frame in frames:
        if not frame:
            stats["empty"] += 1
            continue
        if len(frame) > MAX_FRAME_LEN:
            stats["oversize"] += 1
            continue
        out = _buf(cap=MAX_PACKET_LEN)
        n = lib.wp_decode_frame(_buf(frame), len(frame), out, MAX_PACKET_LEN)
        if n < 0:
            stats[C_DECODE_REASONS[n]] += 1
            continue
        try:
            m = decode_message(bytes(out[:n]), sensors)
        except ProtocolError as e:
            stats[e.reason] += 1
            continue
        if isinstance(m, Hello):
            sensors = m.sensor_map()
        msgs.append(m)
    if len(trailing) > MAX_FRAME_LEN:
        stats["oversize"] += 1
    return msgs, dict(stats)


@settings(max_examples=150, deadline=None)
@example(  # the fast-path trap: a CRC-valid SAMPLES longer than its count, after warming
    [("long", _samples_meaning(4, "INT16", 3, 5, np.arange(24, dtype=np.int16)), 3)], [], [7]
)
@given(
    st.lists(_c_pieces(), min_size=1, max_size=60),
    st.lists(st.integers(0, 10**6), max_size=8),
    st.lists(st.integers(0, 10**6), max_size=6),
)
def test_stream_decoder_agrees_with_c_on_generated_streams(
    lib: ctypes.CDLL, pieces: list[tuple[str, Any, int]], flips: list[int], cuts: list[int]
) -> None:
    # a HELLO first and a warming SAMPLES of each sensor, so the key cache is filled before
    # the rest: a "long" packet then meets only the cache's fast path
    warm = [("hello", _HELLO_MEANING, 0)] + [
        ("samples", _samples_meaning(s["sensor_id"], s["format"], s["channels"], 0,
                                     np.zeros(2 * s["channels"], SampleFormat[s["format"]].dtype)), 0)
        for s in _ANNOUNCED.values()
    ]  # fmt: skip
    stream = _c_stream(lib, warm, []) + _c_stream(lib, pieces, flips)
    want, want_stats = _c_reference(lib, stream)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    edges = [0, *points, len(stream)]
    for many in (False, True):  # the per-frame Python path, and the vectorised one
        d = FrameDecoder()
        out: list[Any] = []
        reads = [stream[a:b] for a, b in itertools.pairwise(edges)]
        if many:  # one read holding every frame: the numpy paths
            reads = [stream]
        for r in reads:
            out += d.feed(r)
        assert out == want
        got_stats = {k: v for k, v in d.stats.items() if k not in ("bytes", "frames") and v}
        assert got_stats == want_stats
