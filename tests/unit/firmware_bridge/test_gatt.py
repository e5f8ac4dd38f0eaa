"""firmware_bridge.gatt: standard profile values (every flag combination) and fragmentation."""

from __future__ import annotations

import contextlib
import math
import struct
from typing import Final

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import FrameTooLongError, PayloadError, ProtocolError, TruncatedError
from firmware_bridge.framing import (
    MAX_PACKET_LEN,
    decode_packet,
    encode_packet,
)
from firmware_bridge.gatt import (
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    WEARABLE_PACKET_CHAR_UUID,
    WEARABLE_SERVICE_UUID,
    BleDateTime,
    Fragmenter,
    HeartRateMeasurement,
    NotificationDecoder,
    Reassembler,
    TemperatureMeasurement,
    decode_ieee11073_float,
    encode_battery_level,
    encode_heart_rate_measurement,
    encode_ieee11073_float,
    encode_temperature_measurement,
    parse_battery_level,
    parse_device_info_string,
    parse_heart_rate_measurement,
    parse_temperature_measurement,
)
from firmware_bridge.protocol import (
    Event,
    EventKind,
    Hello,
    Message,
    Samples,
    TimeSync,
)
from tests.fakes.frames import decode_or_reason
from tests.fakes.inputs import GATT_VALUE_PARSERS
from tests.strategies import (
    FAST_PARSER,
    examples,
    messages,
)


def test_uuids() -> None:
    assert HEART_RATE_MEASUREMENT_UUID == "00002a37-0000-1000-8000-00805f9b34fb"
    assert BATTERY_LEVEL_UUID == "00002a19-0000-1000-8000-00805f9b34fb"
    assert WEARABLE_SERVICE_UUID != WEARABLE_PACKET_CHAR_UUID
    assert len(WEARABLE_SERVICE_UUID) == 36 and WEARABLE_SERVICE_UUID.lower() == WEARABLE_SERVICE_UUID


@settings(max_examples=400)
@given(
    flags=st.integers(0, 0x1F),
    bpm=st.integers(0, 0xFFFF),
    energy=st.integers(0, 0xFFFF),
    rr=st.lists(st.integers(0, 0xFFFF), max_size=9),
    rfu=st.integers(0, 7),
)
def test_heart_rate_every_flag_combination(
    flags: int, bpm: int, energy: int, rr: list[int], rfu: int
) -> None:
    """Build the bytes by hand from the spec, parse, check each field, re-encode."""
    wide = bool(flags & 0x01)
    bpm = bpm if wide else bpm & 0xFF
    data = bytes((flags | rfu << 5,)) + (struct.pack("<H", bpm) if wide else bytes((bpm,)))
    if flags & 0x08:
        data += struct.pack("<H", energy)
    if flags & 0x10:
        data += struct.pack(f"<{len(rr)}H", *rr)
    m = parse_heart_rate_measurement(data)
    assert m.bpm == bpm
    assert m.contact == (bool(flags & 0x02) if flags & 0x04 else None)
    assert m.energy_kj == (energy if flags & 0x08 else None)
    assert m.rr_s == (tuple(r / 1024 for r in rr) if flags & 0x10 else ())
    again = encode_heart_rate_measurement(m, uint16=wide)
    assert parse_heart_rate_measurement(again) == m
    # byte-exact unless: "detected" without "supported" (not re-encoded), RFU bits set, or
    # an RR flag with no RR values (encoded without the flag)
    if (flags & 0x04 or not flags & 0x02) and rfu == 0 and (rr or not flags & 0x10):
        assert again == data


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", TruncatedError),
        (b"\x00", TruncatedError),
        (b"\x01\x50", TruncatedError),  # uint16 rate, one byte
        (b"\x08\x50\x01", TruncatedError),  # energy flag, one byte of it
        (b"\x10\x50\x00\x04\x01", PayloadError),  # RR flag, three RR bytes
        (b"\x00\x50\x01", PayloadError),  # unexplained trailing byte
    ],
)
def test_heart_rate_malformed(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_heart_rate_measurement(data)


def test_heart_rate_typical_strap_notification() -> None:
    # Polar-style: uint8 rate 72, contact supported+detected, two RR intervals
    m = parse_heart_rate_measurement(bytes((0x16, 72)) + struct.pack("<2H", 850, 860))
    assert m == HeartRateMeasurement(72, (850 / 1024, 860 / 1024), True, None)
    with pytest.raises(PayloadError):
        encode_heart_rate_measurement(HeartRateMeasurement(300), uint16=False)


def test_battery_level() -> None:
    assert parse_battery_level(b"\x57") == 87
    assert encode_battery_level(0) == b"\x00"
    for bad, err in ((b"", TruncatedError), (b"\x65", PayloadError), (b"\x01\x02", PayloadError)):
        with pytest.raises(err):
            parse_battery_level(bad)
    with pytest.raises(PayloadError):
        encode_battery_level(101)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0xFF00016E, 36.6),  # 366 x 10^-1
        (0xFE000E4A, 36.58),
        (0x00000000, 0.0),
        (0x02FFFFFF, -100.0),  # -1 x 10^2
        (0x007FFFFF, math.nan),  # NaN
        (0x00800000, math.nan),  # NRes
        (0x00800001, math.nan),  # reserved
        (0x007FFFFE, math.inf),
        (0x00800002, -math.inf),
    ],
)
def test_ieee11073_float_known_values(raw: int, value: float) -> None:
    got = decode_ieee11073_float(raw.to_bytes(4, "little"))
    if math.isnan(value):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(value, rel=1e-12)


@given(
    mantissa=st.integers(-0x7FFFFD, 0x7FFFFD).filter(lambda m: m % 10 != 0),
    exponent=st.integers(-10, 10),
)
def test_ieee11073_float_canonical_round_trip(mantissa: int, exponent: int) -> None:
    data = ((mantissa & 0xFFFFFF) | (exponent & 0xFF) << 24).to_bytes(4, "little")
    assert encode_ieee11073_float(decode_ieee11073_float(data)) == data


def test_ieee11073_float_specials_encode() -> None:
    assert encode_ieee11073_float(math.nan) == (0x007FFFFF).to_bytes(4, "little")
    assert decode_ieee11073_float(encode_ieee11073_float(-math.inf)) == -math.inf
    assert decode_ieee11073_float(encode_ieee11073_float(1e30)) == pytest.approx(1e30)
    with pytest.raises(TruncatedError):
        decode_ieee11073_float(b"\x00\x00")


@pytest.mark.parametrize("fahrenheit", [False, True])
@pytest.mark.parametrize("timestamp", [None, BleDateTime(2024, 5, 17, 13, 45, 59), BleDateTime(0, 0, 0, 0, 0, 0)])
@pytest.mark.parametrize("temp_type", [None, 2])
def test_temperature_every_flag_combination(
    fahrenheit: bool, timestamp: BleDateTime | None, temp_type: int | None
) -> None:
    m = TemperatureMeasurement(98.6 if fahrenheit else 36.6, fahrenheit, timestamp, temp_type)
    data = encode_temperature_measurement(m)
    assert data[0] == fahrenheit | (timestamp is not None) << 1 | (temp_type is not None) << 2
    assert len(data) == 5 + 7 * (timestamp is not None) + (temp_type is not None)
    back = parse_temperature_measurement(data)
    assert back == m
    assert back.celsius == pytest.approx(37.0 if fahrenheit else 36.6)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00\x6e\x01", TruncatedError),
        (b"\x02\x6e\x01\x00\xff\xe8\x07", TruncatedError),  # timestamp flag, short
        (b"\x04\x6e\x01\x00\xff", TruncatedError),  # type flag, no type
        (b"\x00\x6e\x01\x00\xff\x02", PayloadError),  # trailing byte
        (b"\x02\x6e\x01\x00\xff" + struct.pack("<HBBBBB", 2024, 13, 1, 0, 0, 0), PayloadError),
    ],
)
def test_temperature_malformed(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_temperature_measurement(data)


def test_device_info_strings() -> None:
    assert parse_device_info_string(b"Polar\x00\x00") == "Polar"
    assert parse_device_info_string("Gerät".encode()) == "Gerät"
    with pytest.raises(PayloadError):
        parse_device_info_string(b"\xff\xfe")


@settings(max_examples=100, deadline=None)
@given(
    att=st.integers(2, 244),
    sizes=st.lists(st.integers(0, 600), min_size=1, max_size=8),
)
def test_fragment_reassemble_round_trip(att: int, sizes: list[int]) -> None:
    frag = Fragmenter(att)
    re = Reassembler()
    rng = np.random.default_rng(len(sizes))
    packets = [
        encode_packet(Samples(1, i, i, rng.integers(-99, 99, (n, 1)).astype(np.int16)))
        for i, n in enumerate(sizes)
    ]
    out = []
    for p in packets:
        fragments = frag.fragment(p)
        assert all(len(f) <= att for f in fragments)
        out += [q for f in fragments if (q := re.feed(f)) is not None]
    assert out == packets
    assert re.stats["packets"] == len(packets) and re.stats["fragments_lost"] == 0


def test_lost_fragments_are_counted_and_the_stream_recovers() -> None:
    frag = Fragmenter(20)
    msgs = [Samples(1, i, i, np.full((30, 1), i + 1, np.int16)) for i in range(4)]  # 3+ fragments each
    fragments = [frag.fragment(encode_packet(m)) for m in msgs]
    dec = NotificationDecoder()
    out = []
    for i, fs in enumerate(fragments):
        for j, f in enumerate(fs):
            if i == 1 and j == 1:
                continue  # lose one fragment in the middle of packet 1
            out += dec.feed(f)
    assert out == [msgs[0], msgs[2], msgs[3]]
    assert dec.stats["fragments_lost"] == 1
    assert dec.stats["packets_incomplete"] == 1
    assert dec.stats["messages"] == 3
    # a continuation with no START (joined mid-packet) is an orphan, not a crash
    dec2 = NotificationDecoder()
    assert dec2.feed(fragments[0][1]) == [] and dec2.stats["orphan_fragments"] == 1
    assert dec2.feed(b"") == [] and dec2.stats["empty_fragments"] == 1


def test_notification_decoder_counts_bad_packets() -> None:
    frag = Fragmenter(185)
    good = encode_packet(Event(EventKind.BATTERY, 1, 1, 50))
    bad = bytearray(good)
    bad[4] ^= 0xFF
    dec = NotificationDecoder()
    assert dec.feed(frag.fragment(bytes(bad))[0]) == []
    assert dec.feed(frag.fragment(good)[0]) == [Event(EventKind.BATTERY, 1, 1, 50)]
    assert dec.stats["crc"] == 1


def test_fragmenter_limits() -> None:
    with pytest.raises(PayloadError):
        Fragmenter(1)
    with pytest.raises(FrameTooLongError):
        Fragmenter(20).fragment(bytes(MAX_PACKET_LEN + 1))
    re = Reassembler()
    f = Fragmenter(200)
    pieces = f.fragment(bytes(MAX_PACKET_LEN))
    for p in pieces[:-1]:
        assert re.feed(p) is None
    # one more byte than the limit in the last fragment
    last = pieces[-1][:1] + pieces[-1][1:] + b"\x00"
    assert re.feed(last) is None and re.stats["oversize"] == 1


# -- malformed input ends in a typed error (property tests; regressions: test_regression_*) --
_GATT_PARSERS: Final = {**GATT_VALUE_PARSERS, "packet": decode_packet}


@pytest.mark.parametrize("name", sorted(_GATT_PARSERS))
@examples(2 * FAST_PARSER)
@given(data=st.one_of(st.binary(max_size=40), st.binary(min_size=1, max_size=3).map(lambda b: b * 9)))
def test_gatt_value_parsers_raise_only_protocol_errors(name: str, data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        _GATT_PARSERS[name](data)


@examples(3 * FAST_PARSER)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=25),
            st.builds(lambda h, b: bytes((h,)) + b, st.integers(0, 255), st.binary(max_size=24)),
        ),
        max_size=40,
    ),
    st.lists(messages, min_size=1, max_size=4),
    st.integers(2, 60),
)
def test_notification_decoder_counts_garbage_then_resynchronises(
    garbage: list[bytes], msgs: list[Message], att_payload: int
) -> None:
    dec = NotificationDecoder()
    for g in garbage:
        for m in dec.feed(g):  # garbage that happens to be a valid packet is a message
            assert isinstance(m, Hello | Samples | Event | TimeSync)
    assert all(count >= 0 for count in dec.stats.values())
    # after any garbage, well-formed notifications decode again: nothing is stuck
    frag = Fragmenter(att_payload)
    got: list[Message] = []
    want: list[Message] = []
    for m in msgs:
        packet = encode_packet(m)
        # the decoder keeps no HELLO: every packet decodes on its own
        expected = decode_or_reason(lambda p=packet: decode_packet(p))  # type: ignore[misc]
        if not isinstance(expected, str):
            want.append(expected)
        for f in frag.fragment(packet):
            got += dec.feed(f)
    assert got == want


@examples(3 * FAST_PARSER)
@given(st.lists(st.binary(max_size=30), max_size=60))
def test_reassembler_bounds_packets_and_never_raises(fragments: list[bytes]) -> None:
    r = Reassembler()
    for f in fragments:
        packet = r.feed(f)
        assert packet is None or len(packet) <= MAX_PACKET_LEN
    assert sum(1 for f in fragments if not f) == r.stats["empty_fragments"]
