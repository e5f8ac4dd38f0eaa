"""Build ``frames.json``: frames with their decoded meaning, shared by Python, C and firmware.

``python -m firmware_bridge.vectors.generate`` rewrites the file. It is committed: the
tests check that this code still produces it byte for byte, that the hub decodes every
valid frame to its stated meaning and rejects every invalid one for its stated reason,
and that the C reference builds and decodes the same bytes.

``meaning`` is plain JSON: ``{"type": "samples", "sensor_id": 1, ..., "format": "INT16",
"raw": [[...], ...]}``; :func:`message_from_meaning` and :func:`meaning_from_message`
convert both ways.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

import numpy as np

from firmware_bridge.framing import cobs_encode, crc16, encode_frame, encode_packet
from firmware_bridge.protocol import (
    PROTOCOL_VERSION,
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

__all__ = ["VECTORS_PATH", "build_vectors", "meaning_from_message", "message_from_meaning"]

VECTORS_PATH: Final = Path(__file__).with_name("frames.json")


def meaning_from_message(m: Message) -> dict[str, Any]:
    if isinstance(m, Samples):
        return {
            "type": "samples", "sensor_id": m.sensor_id, "seq": m.seq,
            "t_device_us": m.t_device_us, "format": m.sample_format.name,
            "channels": m.channels, "raw": m.raw.tolist(),
        }  # fmt: skip
    if isinstance(m, Event):
        return {"type": "event", "kind": m.kind.name, "seq": m.seq,
                "t_device_us": m.t_device_us, "value": m.value}  # fmt: skip
    if isinstance(m, TimeSync):
        return {"type": "time_sync", "seq": m.seq, "t_device_us": m.t_device_us,
                "t_hub_us": m.t_hub_us}  # fmt: skip
    return {
        "type": "hello", "device_id": m.device_id, "firmware_version": m.firmware_version,
        "protocol_version": m.protocol_version,
        "sensors": [
            {"sensor_id": s.sensor_id, "kind": s.kind, "unit": s.unit, "rate_hz": s.rate_hz,
             "channels": s.channels, "format": s.sample_format.name, "scale": s.scale,
             "offset": s.offset}
            for s in m.sensors
        ],
    }  # fmt: skip


def message_from_meaning(d: dict[str, Any]) -> Message:
    t = d["type"]
    if t == "samples":
        fmt = SampleFormat[d["format"]]
        raw = np.asarray(d["raw"], dtype=fmt.dtype).reshape(-1, d["channels"])
        return Samples(d["sensor_id"], d["seq"], d["t_device_us"], raw)
    if t == "event":
        return Event(EventKind[d["kind"]], d["seq"], d["t_device_us"], d["value"])
    if t == "time_sync":
        return TimeSync(d["seq"], d["t_device_us"], d["t_hub_us"])
    sensors = tuple(
        SensorInfo(s["sensor_id"], s["kind"], s["unit"], s["rate_hz"], s["channels"],
                   SampleFormat[s["format"]], s["scale"], s["offset"])
        for s in d["sensors"]
    )  # fmt: skip
    return Hello(d["device_id"], d["firmware_version"], d["protocol_version"], sensors)


def _valid_messages() -> list[tuple[str, Message]]:
    i16 = np.dtype("<i2")
    ramp = np.arange(1, 301, dtype=np.int16).reshape(300, 1)  # 600 bytes: several 0x00
    return [
        ("hello_wrist", Hello("E4-A01F", "1.2.3", PROTOCOL_VERSION, (
            SensorInfo(1, "bvp", "a.u.", 64.0, 1, SampleFormat.INT16, 0.01),
            SensorInfo(2, "eda", "uS", 4.0, 1, SampleFormat.UINT16, 0.001),
            SensorInfo(3, "temp", "degC", 4.0, 1, SampleFormat.INT16, 0.01, 20.0),
            SensorInfo(4, "acc", "g", 32.0, 3, SampleFormat.INT16, 1 / 4096),
        ))),
        ("hello_no_sensors_utf8", Hello("Gerät-µ", "", PROTOCOL_VERSION, ())),
        ("samples_bvp", Samples(1, 7, 1_000_000, np.array([[-3], [0], [5], [32767]], i16))),
        ("samples_acc_3ch", Samples(4, 65535, 2**40 + 17,
                                    np.array([[4096, 0, -4096], [1, 2, 3]], i16))),
        # header and data without a single 0x00: COBS blocks of 254 (code 0xFF)
        ("samples_long_nonzero_run", Samples(9, 0x0101, 0x0101010101010101,
                                             np.full((0x0101, 1), 0x0101, i16))),
        ("samples_ramp_600_bytes", Samples(1, 300, 123_456_789, ramp)),
        ("samples_int8", Samples(5, 1, 5, np.array([[-128], [127]], np.int8))),
        ("samples_uint8", Samples(5, 2, 6, np.array([[0], [255]], np.uint8))),
        ("samples_int32", Samples(6, 3, 7, np.array([[-(2**31)], [2**31 - 1]], "<i4"))),
        ("samples_uint32", Samples(6, 4, 8, np.array([[0, 2**32 - 1]], "<u4"))),
        ("samples_float32", Samples(7, 5, 9, np.array([[1.5, -0.25]], "<f4"))),
        ("samples_empty", Samples(1, 8, 10, np.zeros((0, 1), i16))),
        ("event_battery", Event(EventKind.BATTERY, 1, 3_600_000_000, 87)),
        ("event_button", Event(EventKind.BUTTON, 2, 1, 1)),
        ("event_contact_off", Event(EventKind.CONTACT, 3, 2, 0)),
        ("event_fault", Event(EventKind.FAULT, 4, 3, -2)),
        ("time_sync_one_way", TimeSync(1, 5_000_000, 0)),
        ("time_sync_two_way", TimeSync(2, 5_000_123, 987_654_321_000)),
    ]  # fmt: skip


def _cobs_only(data: bytes) -> bytes:
    return cobs_encode(data) + b"\x00"


def _invalid_frames() -> list[tuple[str, bytes, str, str]]:
    """(name, frame, the hub's reason, layer): ``frame`` faults (COBS, length, CRC) are
    caught by any receiver incl. the C decoder; ``message`` faults by the hub's parser."""
    good = encode_frame(Event(EventKind.BATTERY, 1, 2, 50))
    bad_crc = bytearray(good)
    bad_crc[3] ^= 0x01 if bad_crc[3] != 0x01 else 0x03
    unknown = bytes((PROTOCOL_VERSION, 0x7E, 1, 2, 3))
    v2 = bytes((2, 0x03)) + bytes(15)
    short_samples = encode_message(Samples(1, 1, 1, np.ones((2, 1), np.int16)))[:-1]
    bad_kind = bytes((PROTOCOL_VERSION, 0x03, 99)) + bytes(14)
    return [
        ("crc_flipped_bit", bytes(bad_crc), "crc", "frame"),
        ("cobs_block_past_end", b"\x05\x01\x02\x00", "framing", "frame"),
        ("too_short_for_crc", _cobs_only(b"\x01"), "truncated", "frame"),
        ("unknown_type", encode_frame(unknown), "unknown_type", "message"),
        ("version_2", encode_frame(v2), "version", "message"),
        ("samples_truncated_data", encode_frame(short_samples), "truncated", "message"),
        ("event_unknown_kind", encode_frame(bad_kind), "payload", "message"),
        ("event_trailing_byte", encode_frame(encode_message(Event(EventKind.BUTTON, 1, 1, 1)) + b"\x09"),
         "payload", "message"),
    ]  # fmt: skip


def build_vectors() -> dict[str, Any]:
    valid = []
    for name, msg in _valid_messages():
        packet = encode_message(msg)
        valid.append({
            "name": name,
            "message": meaning_from_message(msg),
            "packet_hex": packet.hex(),
            "crc": f"0x{crc16(packet):04X}",
            "packet_with_crc_hex": encode_packet(packet).hex(),
            "frame_hex": encode_frame(packet).hex(),
        })  # fmt: skip
    cobs = [
        {"data_hex": d.hex(), "encoded_hex": cobs_encode(d).hex()}
        for d in (
            b"", b"\x00", b"\x00\x00", b"\x11\x22\x00\x33", b"\x11\x00\x00\x00",
            bytes(range(1, 255)),  # exactly 254 non-zero bytes: no trailing empty block
            bytes(range(0, 255)),
            bytes(range(1, 256)),
            bytes(range(1, 255)) + b"\x00",
            bytes(range(1, 255)) * 2,
        )
    ]
    invalid = [
        {"name": n, "frame_hex": f.hex(), "reason": r, "layer": layer}
        for n, f, r, layer in _invalid_frames()
    ]
    return {
        "format": "wearable-edge-frame-vectors",
        "protocol_version": PROTOCOL_VERSION,
        "crc": "CRC-16/CCITT-FALSE, big-endian after the packet",
        "cobs": cobs,
        "valid": valid,
        "invalid": invalid,
    }


def main() -> int:
    VECTORS_PATH.write_text(json.dumps(build_vectors(), indent=1, ensure_ascii=False) + "\n")
    sys.stdout.write(f"wrote {VECTORS_PATH}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
