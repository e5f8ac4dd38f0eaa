"""firmware_bridge.framing: COBS, CRC, single-frame errors and the streaming FrameDecoder."""

from __future__ import annotations

import binascii
import contextlib
import itertools
from collections.abc import Iterator
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_bridge.framing as framing
from firmware_bridge.errors import (
    CrcError,
    FrameTooLongError,
    FramingError,
    ProtocolError,
    TruncatedError,
    UnknownMessageError,
)
from firmware_bridge.framing import (
    CRC_SIZE,
    MAX_FRAME_LEN,
    MAX_PACKET_LEN,
    FrameDecoder,
    cobs_decode,
    cobs_encode,
    crc16,
    decode_frame,
    decode_packet,
    encode_frame,
    encode_packet,
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
    encode_message,
)
from tests.fakes.frames import decode_or_reason, reference_decode
from tests.fakes.inputs import (
    frame_with_valid_crc,
)
from tests.strategies import (
    FAST_PARSER,
    byte_mutated,
    examples,
    messages,
    packets,
    stream_parts,
)

HELLO = Hello("dev-1", "1.0", 1, (
    SensorInfo(1, "bvp", "a.u.", 64.0, 1, SampleFormat.INT16, 0.1),
    SensorInfo(4, "acc", "g", 32.0, 3, SampleFormat.INT16, 1 / 4096),
))  # fmt: skip


def _stream(n: int = 40, seed: int = 0) -> list[Message]:
    rng = np.random.default_rng(seed)
    out: list[Message] = [HELLO]
    for i in range(n):
        if i % 2:
            raw = rng.integers(-300, 300, (8, 3)).astype(np.int16)  # small values: many 0x00
            out.append(Samples(4, i, 1000 * i, raw))
        else:
            out.append(Samples(1, i, 1000 * i, rng.integers(-32768, 32767, (16, 1)).astype(np.int16)))
        if i % 7 == 0:
            out.append(Event(EventKind.BATTERY, i, 1000 * i, 90))
        if i % 11 == 0:
            out.append(TimeSync(i, 1000 * i, 5000 * i))
    return out


def _reference(data: bytes) -> list[Message]:
    """The slow, obviously-correct decoder: split on 0x00, decode_frame each piece."""
    out = []
    for piece in data.split(b"\x00")[:-1]:
        with contextlib.suppress(ProtocolError):
            out.append(decode_frame(piece))
    return out


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_crc_check_value_and_zero_residue() -> None:
    assert crc16(b"123456789") == 0x29B1 == binascii.crc_hqx(b"123456789", 0xFFFF)
    pkt = encode_packet(b"\x01\x04" + bytes(18))
    assert crc16(pkt) == 0  # CRC big-endian after the packet: the residue is zero


@given(st.binary(max_size=1200))
def test_cobs_round_trip_and_no_zero(data: bytes) -> None:
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(enc) == data


@pytest.mark.parametrize(
    ("data", "encoded"),
    [  # Wikipedia's COBS examples
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
        (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    ],
)
def test_cobs_known_encodings(data: bytes, encoded: bytes) -> None:
    assert cobs_encode(data) == encoded
    assert cobs_decode(encoded) == data


def test_decode_frame_says_what_is_wrong() -> None:
    good = encode_frame(Event(EventKind.CONTACT, 1, 2, 1))
    crc_errors = 0
    for i in range(len(good) - 1):  # every single-bit error is caught, as one error or other
        bad = bytearray(good)
        bad[i] ^= 0x40
        with pytest.raises(ProtocolError) as e:
            decode_frame(bytes(bad))
        if isinstance(e.value, CrcError):
            assert e.value.expected != e.value.actual and e.value.reason == "crc"
            crc_errors += 1
    assert crc_errors >= 5  # flips of data bytes; flips of COBS code bytes are framing errors
    with pytest.raises(FramingError):
        decode_frame(b"\x07\x01\x02\x00")  # block of 6 declared, 2 present
    with pytest.raises(FramingError):
        decode_frame(good[:3] + b"\x00" + good[3:])  # stray delimiter inside
    with pytest.raises(TruncatedError):
        decode_frame(cobs_encode(b"\x01\x02\x03") + b"\x00")
    with pytest.raises(UnknownMessageError) as u:
        decode_frame(encode_frame(b"\x01\x42payload"))
    assert u.value.type_code == 0x42
    with pytest.raises(FrameTooLongError):
        decode_frame(b"\x01" * (MAX_FRAME_LEN + 1))
    with pytest.raises(FrameTooLongError):
        encode_packet(b"\x01\x02" + bytes(MAX_PACKET_LEN))
    with pytest.raises(TruncatedError):
        decode_packet(b"\x01")


def test_decoder_whole_stream_and_byte_by_byte() -> None:
    msgs = _stream()
    data = b"".join(encode_frame(m) for m in msgs)
    d = FrameDecoder()
    assert d.feed(data) == msgs
    assert d.stats["frames"] == len(msgs) and d.buffered == 0
    d2 = FrameDecoder()
    out: list[Message] = []
    for i in range(len(data)):
        out += d2.feed(data[i : i + 1])
    assert out == msgs
    assert d2.sensors == HELLO.sensor_map()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 10_000), max_size=30))
def test_decoder_any_chunking_of_a_valid_stream(cuts: list[int]) -> None:
    msgs = _stream(12)
    data = b"".join(encode_frame(m) for m in msgs)
    d = FrameDecoder()
    out: list[Message] = []
    for chunk in _chunks(data, cuts):
        out += d.feed(chunk)
    assert out == msgs
    assert set(d.stats) <= {"bytes", "frames"}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),  # garbage
            st.sampled_from([encode_frame(m) for m in _stream(6)]),  # valid frames
            st.sampled_from([encode_frame(m)[:-3] for m in _stream(6)]),  # cut short
            st.just(b"\x00"),
        ),
        max_size=25,
    ),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_decoder_never_raises_and_agrees_with_the_reference(
    pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces)
    d = FrameDecoder()
    out: list[Message] = []
    for chunk in _chunks(data, cuts):
        out += d.feed(chunk)  # must not raise
    # exactly the frames the slow decoder accepts: CRC-checked, in order, nothing else
    assert out == _reference(data)
    assert d.buffered <= MAX_FRAME_LEN


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.lists(st.integers(0, 10_000), max_size=10))
def test_decoder_on_pure_noise(noise: bytes, cuts: list[int]) -> None:
    d = FrameDecoder()
    out: list[Message] = []
    for chunk in _chunks(noise, cuts):
        out += d.feed(chunk)
    assert out == _reference(noise)
    for m in out:  # anything accepted re-encodes to a frame that passes its own CRC
        assert decode_frame(encode_frame(m)) == m


def test_decoder_resynchronises_after_garbage_and_counts_reasons() -> None:
    msgs = _stream(4)
    good = [encode_frame(m) for m in msgs]
    flipped = bytearray(good[2])
    flipped[4] ^= 0x01
    data = (
        b"\x13\x37garbage"  # mid-frame start: noise up to the first delimiter
        + b"\x00"
        + good[0]
        + bytes(flipped)
        + b"\x00\x00"  # idle delimiters
        + good[1]
        + encode_frame(encode_message(TimeSync(1, 2, 3))[:-1])  # truncated body, valid CRC
        + encode_frame(b"\x01\x77")  # a newer firmware's message type
        + good[3]
    )
    d = FrameDecoder()
    assert d.feed(data) == [msgs[0], msgs[1], msgs[3]]
    assert d.stats["crc"] == 1
    assert d.stats["framing"] + d.stats["crc"] + d.stats["truncated"] >= 2  # the garbage + flip
    assert d.stats["truncated"] >= 1 and d.stats["unknown_type"] == 1
    assert d.stats["empty"] == 2


def test_decoder_bounds_its_buffer_and_recovers() -> None:
    d = FrameDecoder()
    junk = b"\x05" * 700
    for _ in range(10):  # 7000 bytes without a delimiter
        assert d.feed(junk) == []
        assert d.buffered <= MAX_FRAME_LEN
    assert d.stats["oversize"] == 1  # one over-long frame, counted once
    msg = Event(EventKind.BUTTON, 1, 2, 3)
    assert d.feed(b"\x05\x05\x00" + encode_frame(msg)) == [msg]
    assert d.stats["oversize"] == 1 and d.stats["framing"] == 0  # its tail is not recounted
    # an over-long frame completed within one chunk is counted too
    assert d.feed(b"\x05" * (MAX_FRAME_LEN + 5) + b"\x00" + encode_frame(msg)) == [msg]
    assert d.stats["oversize"] == 2


def test_decoder_rejects_samples_contradicting_the_hello() -> None:
    d = FrameDecoder()
    wrong = Samples(4, 0, 0, np.zeros((2, 1), np.int16))  # sensor 4 announced 3 channels
    right = Samples(4, 1, 0, np.zeros((2, 3), np.int16))
    out = d.feed(b"".join(encode_frame(m) for m in (HELLO, wrong, right)))
    assert out == [HELLO, right]
    assert d.stats["payload"] == 1
    # the same in one large read (the vectorised path)
    d2 = FrameDecoder()
    many = [HELLO, *([wrong, right] * 30)]
    assert d2.feed(b"".join(encode_frame(m) for m in many)) == [HELLO, *([right] * 30)]
    assert d2.stats["payload"] == 30


def test_decoder_long_frames_and_mixed_sizes() -> None:
    big = Samples(1, 0, 0, np.arange(1000, dtype=np.int16).reshape(-1, 1))  # 2 KB-ish, 0xFF blocks
    nz = Samples(2, 0x0101, 0x0101010101010101, np.full((0x0101, 1), 0x0101, np.int16))
    msgs = [big, nz, *_stream(30)]
    data = b"".join(encode_frame(m) for m in msgs)
    for size in (1, 7, 254, 255, 4096, len(data)):
        d = FrameDecoder()
        out: list[Message] = []
        for i in range(0, len(data), size):
            out += d.feed(data[i : i + size])
        assert out == msgs, size


# -- every implementation path of FrameDecoder agrees with decode_frame ----------------------
# FrameDecoder picks, per read, a Python or a numpy COBS pass, a numpy chase that may finish
# in Python, and ndarray-per-packet or sliced row views for ``raw``; the thresholds are
# forced here so each combination meets the same streams, whatever sizes reads happen to have.
_PATHS = {  # name -> (_VECTOR_MIN_FRAMES, _CHASE_MIN_FRAMES, _VIEW_MIN_PACKETS)
    "python": (10**9, 10**9, 10**9),
    "python-views": (10**9, 10**9, 1),
    "numpy": (1, 1, 1),
    "numpy-python-tail": (1, 10**9, 10**9),
    "numpy-mixed": (1, 3, 1),
}


@contextlib.contextmanager
def _forced(path: str) -> Iterator[None]:
    vector, chase, views = _PATHS[path]
    with (
        mock.patch.object(framing, "_VECTOR_MIN_FRAMES", vector),
        mock.patch.object(framing, "_CHASE_MIN_FRAMES", chase),
        mock.patch.object(framing, "_VIEW_MIN_PACKETS", views),
    ):
        yield


HELLO_2 = Hello("dev-1", "1.1", 1, (  # a firmware update: sensor 4 becomes 1 x float32
    SensorInfo(1, "bvp", "a.u.", 64.0, 1, SampleFormat.INT16, 0.1),
    SensorInfo(4, "eda", "uS", 4.0, 1, SampleFormat.FLOAT32, 1.0),
))  # fmt: skip


def _valid_crc_frame(packet: bytes) -> bytes:
    return cobs_encode(packet + crc16(packet).to_bytes(2, "big")) + b"\x00"


_RNG = np.random.default_rng(7)
_PIECES = [  # frames that reach every branch: fast path, fallbacks, rejections
    *(encode_frame(m) for m in _stream(8)),
    encode_frame(HELLO),
    encode_frame(HELLO_2),
    encode_frame(Samples(4, 9, 9, np.zeros((2, 1), np.int16))),  # contradicts HELLO (3 ch)
    encode_frame(Samples(4, 9, 9, np.ones((3, 1), np.float32))),  # contradicts HELLO, fits 2
    encode_frame(Samples(9, 1, 2, np.zeros((0, 2), np.uint8))),  # unannounced, no samples
    encode_frame(Samples(1, 3, 4, _RNG.integers(-9, 9, (200, 1)).astype(np.int16))),  # long
    encode_frame(Samples(1, 5, 6, np.full((600, 1), 0x0101, np.int16))),  # 0xFF blocks
    _valid_crc_frame(b"\x01\x02" + bytes(MAX_PACKET_LEN - 4)),  # at the packet limit
    _valid_crc_frame(b"\x01\x02" + b"\x01" * (MAX_PACKET_LEN - 2)),  # frame fits, packet not
    _valid_crc_frame(b"\x01\x02\x04\x03\x01\x00\x00" + bytes(10)),  # SAMPLES, length wrong
    _valid_crc_frame(b"\x02\x02" + bytes(15)),  # other version
    _valid_crc_frame(b"\x01\x77"),  # unknown type
    _valid_crc_frame(b"\x01"),  # truncated
    b"\x02\x01\x00",  # COBS-valid, one-byte packet
    b"\x05\x01\x00",  # COBS block past the end
    b"\xff\x01\x02\x00",  # 0xFF block in a short frame
    b"\x07" * (MAX_FRAME_LEN + 3) + b"\x00",  # over-long
    b"\x00",
]


@pytest.mark.parametrize("path", sorted(_PATHS))
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_PIECES),
            st.sampled_from(_PIECES).flatmap(  # corrupted: one byte changed
                lambda f: st.tuples(st.integers(0, len(f) - 1), st.integers(1, 255)).map(
                    lambda iv, f=f: f[: iv[0]] + bytes([f[iv[0]] ^ iv[1]]) + f[iv[0] + 1 :]
                )
            ),
            st.binary(max_size=40),
        ),
        max_size=60,
    ),
    st.lists(st.integers(0, 200_000), max_size=6),
)
def test_every_decoder_path_agrees_with_decode_frame(
    path: str, pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces)
    want, want_stats = reference_decode(data)
    with _forced(path):
        d = FrameDecoder()
        out: list[Message] = []
        for chunk in _chunks(data, cuts):
            out += d.feed(chunk)
    assert out == want
    assert {k: v for k, v in d.stats.items() if k not in ("bytes", "frames")} == want_stats
    assert d.stats["frames"] == len(want)
    for m in out:
        if isinstance(m, Samples):  # the wire dtype, read-only, C-ordered (count, channels)
            assert m.raw.ndim == 2 and not m.raw.flags.writeable and m.raw.flags.c_contiguous
            assert m.raw.dtype == m.sample_format.dtype


@pytest.mark.parametrize("path", sorted(_PATHS))
def test_every_decoder_path_decodes_a_long_clean_stream(path: str) -> None:
    # many frames per read, a HELLO change half way, odd and even byte phases of every dtype
    msgs = [*_stream(150, seed=1), HELLO_2]
    msgs += [Samples(4, i, i, _RNG.normal(size=(i % 5, 1)).astype(np.float32)) for i in range(60)]
    data = b"".join(encode_frame(m) for m in msgs)
    with _forced(path):
        d = FrameDecoder()
        out = d.feed(data[:5000]) + d.feed(data[5000:])
    assert out == msgs
    assert set(d.stats) == {"bytes", "frames"}
    assert d.sensors == HELLO_2.sensor_map()
    raws = [m.raw for m in out if isinstance(m, Samples)]
    assert {r.ctypes.data % 4 for r in raws if r.dtype.itemsize == 4} == {0, 1, 2, 3}


def test_a_repeated_hello_is_reused_and_a_changed_one_learned() -> None:
    d = FrameDecoder()
    out = d.feed(b"".join(encode_frame(m) for m in (HELLO, HELLO, HELLO_2, HELLO)))
    assert out == [HELLO, HELLO, HELLO_2, HELLO]
    assert out[1] is out[0]  # frozen, identical bytes: not parsed again
    assert d.sensors == HELLO.sensor_map()


@pytest.mark.parametrize("path", sorted(_PATHS))
def test_a_new_hello_revokes_what_the_old_one_allowed(path: str) -> None:
    acc = Samples(4, 1, 0, np.ones((8, 3), np.int16))  # fits HELLO, contradicts HELLO_2
    eda = Samples(4, 2, 0, np.ones((1, 1), np.float32))  # the reverse
    msgs = [HELLO, *[acc] * 40, HELLO_2, *[acc, eda] * 40, HELLO, eda, acc]
    with _forced(path):
        d = FrameDecoder()
        out = d.feed(b"".join(encode_frame(m) for m in msgs))
    assert out == [HELLO, *[acc] * 40, HELLO_2, *[eda] * 40, HELLO, acc]
    assert d.stats["payload"] == 41


# -- malformed input ends in a typed error (property tests; regressions: test_regression_*) --
@examples(4 * FAST_PARSER)
@given(st.one_of(st.binary(max_size=400), packets.map(frame_with_valid_crc)))
def test_decode_frame_raises_only_protocol_errors(frame: bytes) -> None:
    decode_or_reason(lambda: decode_frame(frame))


@examples(2 * FAST_PARSER)
@given(st.data())
def test_decode_frame_of_mutated_valid_frames(data: st.DataObject) -> None:
    frame = encode_frame(data.draw(messages))
    bad = data.draw(byte_mutated(frame))
    decode_or_reason(lambda: decode_frame(bad))


@examples(3 * FAST_PARSER)
@given(
    # up to 24 parts: a read completing 128+ frames takes the decoder's vectorised path; fewer, the Python loop
    st.lists(st.one_of(stream_parts, st.just(b"\x00" * 16)), max_size=24),
    st.lists(st.integers(0, 60_000), max_size=12),
)
def test_frame_decoder_agrees_with_decode_frame_in_any_chunking(
    parts: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(parts)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    dec = FrameDecoder()
    got: list[Message] = []
    for a, b in zip([0, *points], [*points, len(stream)], strict=True):
        got += dec.feed(stream[a:b])
        assert dec.buffered <= MAX_FRAME_LEN  # bounded whatever arrives
    want, want_stats = reference_decode(stream)
    assert got == want
    rejected = {k: v for k, v in dec.stats.items() if k not in ("bytes", "frames")}
    assert rejected == {k: v for k, v in want_stats.items() if v}
    assert dec.stats["frames"] == len(want)
    assert dec.stats["bytes"] == len(stream)


def _oversize_packet_frame() -> bytes:
    """A CRC-valid SAMPLES frame whose packet is 2054 bytes: over MAX_PACKET_LEN, under
    MAX_FRAME_LEN (zeros cost no COBS overhead), so only a packet-length check catches it."""
    raw = np.zeros((MAX_PACKET_LEN - 11, 1), np.uint8)  # 13-byte header + data + CRC = 2054
    return frame_with_valid_crc(encode_message(Samples(1, 0, 0, raw)))


@pytest.mark.parametrize("idle_fill", [0, 20])  # 20 delimiters: the vectorised decode path
def test_regression_frame_decoder_rejects_packets_over_the_limit(idle_fill: int) -> None:
    frame = _oversize_packet_frame()
    with pytest.raises(ProtocolError) as e:
        decode_frame(frame)
    assert e.value.reason == "oversize"
    dec = FrameDecoder()
    assert dec.feed(frame + b"\x00" * idle_fill) == []
    assert dec.stats["oversize"] == 1 and dec.stats["frames"] == 0


# -- the cached SAMPLES fast path checks the exact length (issue 18) ---------------------------
@pytest.mark.parametrize("path", sorted(_PATHS))
@pytest.mark.parametrize("extra", [1, 2, 6])
def test_regression_fast_path_rejects_a_longer_packet_after_a_warming_frame(
    path: str, extra: int
) -> None:
    # The first SAMPLES of a sensor fills the decoder's key cache; the second, CRC-valid but
    # with bytes past what its count implies, then meets only the cached fast path. The
    # count says 8 rows, so ``>=`` instead of ``==`` there would let it through.
    warm = Samples(4, 1, 10, np.arange(24, dtype=np.int16).reshape(8, 3))
    packet = encode_message(Samples(4, 2, 20, np.ones((8, 3), np.int16))) + b"\x07" * extra
    bad = _valid_crc_frame(packet)
    with pytest.raises(ProtocolError) as e:
        decode_frame(bad, HELLO.sensor_map())
    assert e.value.reason == "payload"
    tail = Samples(1, 3, 30, np.ones((4, 1), np.int16))  # the stream goes on past it
    data = encode_frame(HELLO) + encode_frame(warm) + bad * 3 + encode_frame(tail)
    with _forced(path):
        d = FrameDecoder()
        assert d.feed(data) == [HELLO, warm, tail]
        assert d.stats["payload"] == 3
        # the same, one byte at a time: every frame completes in a read of its own
        d = FrameDecoder()
        out = [m for b in data for m in d.feed(bytes([b]))]
    assert out == [HELLO, warm, tail]
    assert d.stats["payload"] == 3


# -- edges found by mutation testing (benchmarks/mutation.py) ----------------------------------
def _crc_valid_packet_without_zeros(head: bytes, total: int) -> bytes:
    """A CRC-valid packet of ``total`` bytes (CRC included) with no 0x00 anywhere, so COBS
    adds its most: one byte, plus one per full 254-byte block."""
    for fill in range(1, 256):
        body = head + bytes([fill]) * (total - len(head) - CRC_SIZE)
        packet = body + crc16(body).to_bytes(2, "big")
        if 0 not in packet:
            return packet
    raise AssertionError("no filler avoids a zero CRC byte")


def test_errors_say_what_is_wrong_with_their_numbers() -> None:
    with pytest.raises(FramingError, match=r"^empty COBS block$"):
        cobs_decode(b"")
    with pytest.raises(FramingError, match=r"^0x00 inside a COBS frame at offset 1$"):
        cobs_decode(b"\x03\x00\x01\x00")
    with pytest.raises(FramingError, match=r"^COBS block at offset 2 runs 3 bytes past the frame end$"):
        cobs_decode(b"\x02\x01\x06\x01\x01")
    with pytest.raises(TruncatedError) as t:
        decode_packet(b"\x01\x02\x03")
    assert (t.value.what, t.value.needed, t.value.got) == ("packet", 4, 3)
    body = b"\x01\x03" + bytes(range(1, 12))  # any bytes: the CRC is checked first
    packet = body + b"\x12\x34"
    with pytest.raises(CrcError) as c:
        decode_packet(packet)
    assert (c.value.expected, c.value.actual) == (0x1234, crc16(body))
    with pytest.raises(FrameTooLongError) as f:
        decode_packet(bytes(MAX_PACKET_LEN + 1))
    assert (f.value.length, f.value.limit) == (MAX_PACKET_LEN + 1, MAX_PACKET_LEN)
    with pytest.raises(FrameTooLongError) as f:
        decode_frame(b"\x01" * (MAX_FRAME_LEN + 1))
    assert (f.value.length, f.value.limit) == (MAX_FRAME_LEN + 1, MAX_FRAME_LEN)
    with pytest.raises(FrameTooLongError) as f:
        encode_packet(bytes(MAX_PACKET_LEN - 1))
    assert (f.value.length, f.value.limit) == (MAX_PACKET_LEN + 1, MAX_PACKET_LEN)
    # exactly at the limit is a packet
    assert len(encode_packet(bytes(MAX_PACKET_LEN - CRC_SIZE))) == MAX_PACKET_LEN


def test_decode_frame_and_packet_check_samples_against_the_sensors_given() -> None:
    acc2 = Samples(4, 1, 0, np.ones((2, 2), np.int16))  # sensor 4 is 3-channel in HELLO
    for decode, data in ((decode_frame, encode_frame(acc2)), (decode_packet, encode_packet(acc2))):
        assert decode(data) == acc2  # no HELLO known: taken as it is
        with pytest.raises(ProtocolError) as e:
            decode(data, HELLO.sensor_map())
        assert e.value.reason == "payload"


@pytest.mark.parametrize("data", [
    b"\x01" * 254, b"\x01" * 254 + b"\x00", b"\x01" * 254 + b"\x00\x02", b"\x01" * 253 + b"\x00",
    b"\x01" * 508 + b"\x00" + b"\x02" * 3, b"\x00" * 3,
])
def test_cobs_round_trips_full_blocks_next_to_zeros(data: bytes) -> None:
    # a run of exactly 254 non-zero bytes fills an 0xFF block, which implies no zero after
    # it: a zero that follows needs its own block
    enc = cobs_encode(data)
    assert 0 not in enc and cobs_decode(enc) == data


def test_cobs_encoding_of_a_full_block_followed_by_a_zero() -> None:
    assert cobs_encode(b"\x01" * 254 + b"\x00") == b"\xff" + b"\x01" * 254 + b"\x01\x01"
    assert cobs_encode(b"\x01" * 254) == b"\xff" + b"\x01" * 254


@pytest.mark.parametrize("path", sorted(_PATHS))
@pytest.mark.parametrize(("length", "packet_len"), [(254, 253), (MAX_FRAME_LEN, MAX_PACKET_LEN)])
def test_frames_exactly_at_the_internal_limits_decode_as_decode_frame_does(
    path: str, length: int, packet_len: int
) -> None:
    # 254: the longest frame undone in place; MAX_FRAME_LEN: the longest frame at all (the
    # longest packet, without a zero, so COBS adds its most)
    packet = _crc_valid_packet_without_zeros(b"\x01\x77", packet_len)  # unknown type
    frame = cobs_encode(packet) + b"\x00"
    assert len(frame) == length + 1
    with pytest.raises(ProtocolError) as e:
        decode_frame(frame)
    assert e.value.reason == "unknown_type"
    ok = encode_frame(TimeSync(1, 2, 3))
    with _forced(path):
        d = FrameDecoder()
        assert d.feed(frame + ok + frame) == [TimeSync(1, 2, 3)]
    assert dict(d.stats) == {"bytes": 2 * len(frame) + len(ok), "unknown_type": 2, "frames": 1}


@pytest.mark.parametrize("path", sorted(_PATHS))
def test_the_rest_of_an_over_long_frame_is_dropped_and_counted_once(path: str) -> None:
    a, b = TimeSync(1, 2, 3), TimeSync(4, 5, 6)
    long = b"\x07" * (MAX_FRAME_LEN + 5)
    with _forced(path):
        d = FrameDecoder()
        assert d.feed(encode_frame(a) + long) == [a]  # over-long tail: dropped, not buffered
        assert d.buffered == 0
        assert d.feed(b"\x07" * 10 + b"\x00" + encode_frame(b)) == [b]
        assert d.feed(long) == []  # a second over-long frame: counted as it overflows
        # it ends at the first byte of a read and a third begins: counted too, and the
        # empty piece before that delimiter is the second's end, not an idle delimiter
        assert d.feed(b"\x00" + long) == []
        assert d.feed(long + b"\x00" + encode_frame(a)) == [a]
    assert dict(d.stats) == {"bytes": d.stats["bytes"], "frames": 3, "oversize": 3}


@pytest.mark.parametrize("path", sorted(_PATHS))
def test_counters_add_up_over_reads(path: str) -> None:
    with _forced(path):
        d = FrameDecoder()
        for _ in range(2):
            d.feed(b"\x00\x00" + b"\x02\x01\x00" * 2)  # two empty, two truncated per read
    assert (d.stats["empty"], d.stats["truncated"]) == (4, 4)


def test_a_new_decoder_knows_no_sensors_and_reset_forgets_a_partial_frame() -> None:
    d = FrameDecoder()
    assert d.sensors == {} and d.buffered == 0
    frame = encode_frame(TimeSync(1, 2, 3))
    d.feed(frame[:5])
    assert d.buffered == 5
    d.reset()
    assert d.buffered == 0
    assert d.feed(frame) == [TimeSync(1, 2, 3)]
    d.feed(b"\x07" * (MAX_FRAME_LEN + 1))  # inside an over-long frame...
    d.reset()  # ...a reconnect: the next bytes start a new frame
    assert d.feed(frame) == [TimeSync(1, 2, 3)]
