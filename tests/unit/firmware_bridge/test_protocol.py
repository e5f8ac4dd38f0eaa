"""firmware_bridge.protocol: every message survives encode -> decode; bad bytes give typed errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import (
    PayloadError,
    ProtocolError,
    TruncatedError,
    UnknownMessageError,
    UnsupportedVersionError,
)
from firmware_bridge.framing import (
    decode_frame,
    encode_frame,
)
from firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Event,
    EventKind,
    Hello,
    SampleFormat,
    Samples,
    SensorInfo,
    TimeSync,
    decode_message,
    encode_message,
)
from tests.fakes.frames import decode_or_reason
from tests.strategies import (
    FAST_PARSER,
    byte_mutated,
    examples,
    messages,
    packets,
)


@given(messages)
def test_encode_decode_is_identity_for_every_message(msg: object) -> None:
    packet = encode_message(msg)  # type: ignore[arg-type]
    assert packet[0] == PROTOCOL_VERSION
    assert decode_message(packet) == msg
    assert decode_frame(encode_frame(msg)) == msg  # type: ignore[arg-type]


def test_samples_decode_to_read_only_views_with_wire_dtype() -> None:
    raw = np.array([[1, -2, 3], [4, 5, -6]], dtype=">i2")  # big-endian input is converted
    msg = decode_message(encode_message(Samples(2, 9, 1234, raw)))
    assert isinstance(msg, Samples)
    assert msg.raw.dtype == np.dtype("<i2") and msg.raw.shape == (2, 3)
    assert not msg.raw.flags.writeable
    np.testing.assert_array_equal(msg.raw, raw)
    assert msg.count == 2 and msg.channels == 3 and msg.sample_format is SampleFormat.INT16


def test_sensor_info_to_physical_and_back() -> None:
    info = SensorInfo(1, "temp", "degC", 4.0, 1, SampleFormat.INT16, 0.01, 20.0)
    raw = info.to_raw(np.array([[20.0], [36.65], [-1000.0]]))
    np.testing.assert_array_equal(raw[:, 0], [0, 1665, -32768])  # the last one saturates
    phys = info.to_physical(raw)
    assert phys.dtype == np.float32 and phys.shape == (3, 1)
    np.testing.assert_allclose(phys[:2, 0], [20.0, 36.65], atol=0.005)


def test_sensor_info_rounds_floats_to_the_wire() -> None:
    info = SensorInfo(1, "eda", "uS", 4.0, 1, SampleFormat.UINT16, 0.1)
    assert info.scale == float(np.float32(0.1))
    h = Hello("d", "f", 1, (info,))
    assert decode_message(encode_message(h)) == h


@pytest.mark.parametrize(
    ("packet", "error", "attr"),
    [
        (b"", TruncatedError, ("needed", 2)),
        (b"\x01", TruncatedError, ("got", 1)),
        (bytes((2, 2)), UnsupportedVersionError, ("version", 2)),
        (bytes((1, 0x55)), UnknownMessageError, ("type_code", 0x55)),
        (bytes((1, 3, 1)) + bytes(13), TruncatedError, ("what", "event")),
        (bytes((1, 3, 1)) + bytes(15), PayloadError, ("field", "event")),
        (bytes((1, 3, 9)) + bytes(14), PayloadError, ("field", "event.kind")),
        (bytes((1, 4)) + bytes(17), TruncatedError, ("what", "time_sync")),
        (bytes((1, 2, 1, 3, 1)) + bytes(12) + b"\x01", PayloadError, ("field", "samples")),
        (bytes((1, 2, 1, 99, 1)) + bytes(12), PayloadError, ("field", "samples.format")),
        (bytes((1, 2, 1, 3, 0)) + bytes(12), PayloadError, ("field", "samples.channels")),
        (bytes((1, 2, 1, 3, 1, 0, 0)) + bytes(8) + b"\x02\x00\x01\x00", TruncatedError,
         ("what", "samples.data")),
        (bytes((1, 1, 5)) + b"ab", TruncatedError, ("what", "hello.device_id")),
        (bytes((1, 1, 2)) + b"\xff\xfe" + b"\x00\x01\x00", PayloadError,
         ("field", "hello.device_id")),
        (bytes((1, 1, 0, 0, 1, 1)), TruncatedError, ("what", "hello.sensor[0]")),
        (bytes((1, 1, 0, 0, 1, 0, 7)), PayloadError, ("field", "hello")),
    ],
)  # fmt: skip
def test_malformed_packets_raise_typed_errors(
    packet: bytes, error: type[ProtocolError], attr: tuple[str, object]
) -> None:
    with pytest.raises(error) as info:
        decode_message(packet)
    assert getattr(info.value, attr[0]) == attr[1]
    assert info.value.reason == error.reason


def test_samples_checked_against_the_hello() -> None:
    info = SensorInfo(3, "acc", "g", 32.0, 3, SampleFormat.INT16, 1 / 4096)
    packet = encode_message(Samples(3, 0, 0, np.zeros((2, 1), np.int16)))  # 1 channel, not 3
    assert isinstance(decode_message(packet), Samples)  # alone it is self-describing
    with pytest.raises(PayloadError, match="announced INT16x3"):
        decode_message(packet, {3: info})


@pytest.mark.parametrize(
    "build",
    [
        lambda: SensorInfo(256, "bvp", "", 1.0, 1, SampleFormat.INT16, 1.0),
        lambda: SensorInfo(1, "not a name", "", 1.0, 1, SampleFormat.INT16, 1.0),
        lambda: SensorInfo(1, "bvp", "", 0.0, 1, SampleFormat.INT16, 1.0),
        lambda: SensorInfo(1, "bvp", "", 1.0, 0, SampleFormat.INT16, 1.0),
        lambda: SensorInfo(1, "bvp", "", 1.0, 1, SampleFormat.INT16, 0.0),
        lambda: SensorInfo(1, "bvp", "", 1.0, 1, 42, 1.0),  # type: ignore[arg-type]
        lambda: SensorInfo(1, "bvp", "x" * 256, 1.0, 1, SampleFormat.INT16, 1.0),
        lambda: Hello("d", "f", 1, (SensorInfo(1, "bvp", "", 1.0, 1, SampleFormat.INT8, 1.0),) * 2),
        lambda: Samples(1, 70000, 0, np.zeros((1, 1), np.int16)),
        lambda: Samples(1, 0, -1, np.zeros((1, 1), np.int16)),
        lambda: Samples(1, 0, 0, np.zeros((1, 1), np.float64)),
        lambda: Event(9, 0, 0, 0),  # type: ignore[arg-type]
        lambda: Event(EventKind.FAULT, 0, 0, 2**31),
        lambda: TimeSync(0, 2**64, 0),
    ],
)  # fmt: skip
def test_invalid_messages_are_refused_at_construction(build: object) -> None:
    with pytest.raises(PayloadError):
        build()  # type: ignore[operator]


def test_encode_refuses_non_messages() -> None:
    with pytest.raises(PayloadError):
        encode_message("hello")  # type: ignore[arg-type]


# -- malformed input ends in a typed error (property tests; regressions: test_regression_*) --
@examples(4 * FAST_PARSER)
@given(packets)
def test_decode_message_raises_only_protocol_errors(packet: bytes) -> None:
    decode_or_reason(lambda: decode_message(packet))


@examples(4 * FAST_PARSER)
@given(st.data())
def test_decode_message_of_mutated_valid_packets(data: st.DataObject) -> None:
    msg = data.draw(messages)
    packet = encode_message(msg)
    assert decode_message(packet) == msg  # the unmutated packet is the oracle's anchor
    bad = data.draw(byte_mutated(packet))
    sensors = msg.sensor_map() if isinstance(msg, Hello) else None
    got = decode_or_reason(lambda: decode_message(bad, sensors))
    if not isinstance(got, str):
        # anything accepted must survive its own round trip (no half-parsed message)
        assert decode_message(encode_message(got)) == got
