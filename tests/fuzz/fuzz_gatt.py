"""atheris harness: BLE GATT values and fragmented protocol packets (firmware_bridge.gatt).

Input byte 0 picks the parser; the rest is its input. For the notification decoder the
rest is a list of fragments, each prefixed by its length byte. Parsers may raise only
``ProtocolError``; the decoders never raise, and never return a packet over the limit.
"""

from __future__ import annotations

import contextlib
import sys

import atheris
import numpy as np
from _common import main

with atheris.instrument_imports(include=["firmware_bridge"]):
    from firmware_bridge import gatt
    from firmware_bridge.errors import ProtocolError
    from firmware_bridge.framing import MAX_PACKET_LEN, encode_packet
    from firmware_bridge.protocol import Samples
    from tests.fakes.inputs import GATT_VALUE_PARSERS

PARSERS = tuple(GATT_VALUE_PARSERS.values())


def _fragments(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = data[i]
        out.append(data[i + 1 : i + 1 + n])
        i += 1 + n
    return out


def test_one_input(data: bytes) -> None:
    if not data:
        return
    which, rest = data[0] % (len(PARSERS) + 1), data[1:]
    if which < len(PARSERS):
        with contextlib.suppress(ProtocolError):
            PARSERS[which](rest)
        return
    dec = gatt.NotificationDecoder()
    for frag in _fragments(rest):
        dec.feed(frag)
        assert all(v >= 0 for v in dec.stats.values())
    reassembler = gatt.Reassembler()
    for frag in _fragments(rest):  # the reassembler alone: packets stay within the limit
        packet = reassembler.feed(frag)
        assert packet is None or len(packet) <= MAX_PACKET_LEN


def _seeds() -> list[bytes]:
    hr = gatt.encode_heart_rate_measurement(gatt.HeartRateMeasurement(72, (0.8, 0.85), True, 12))
    temp = gatt.encode_temperature_measurement(
        gatt.TemperatureMeasurement(36.6, False, gatt.BleDateTime(2024, 5, 1, 12, 0, 0), 2)
    )
    packet = encode_packet(Samples(0, 1, 0, np.arange(40, dtype="<i2")))
    notif = b"".join(bytes((len(f),)) + f for f in gatt.Fragmenter(20).fragment(packet))
    return [b"\x00" + hr, b"\x01" + b"\x55", b"\x02" + temp, b"\x03" + b"Acme\x00\x00",
            b"\x04" + temp[1:5], b"\x05" + notif]


if __name__ == "__main__":
    main("gatt", test_one_input, _seeds())
    sys.exit(0)
