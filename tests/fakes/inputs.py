"""Valid inputs of the parsers a hub exposes, and the checks every input must pass: what the
property tests mutate and what the atheris harnesses of tests/fuzz/ seed their corpus with
(one copy for both; no torch, so the harnesses run on the hub install)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.contract import InputContract, Modality, Normalization
from core.errors import ConfigError
from core.signal import Calibration
from edge.calibration_store import contract_fingerprint
from edge.config import DaemonConfig, load_config
from firmware_bridge import gatt
from firmware_bridge import protocol as wire
from firmware_bridge.framing import cobs_encode, crc16

# The parsers of single GATT characteristic values, by name (the order is the atheris
# harness's target byte: keep it).
GATT_VALUE_PARSERS: Final = {
    "heart_rate": gatt.parse_heart_rate_measurement,
    "battery": gatt.parse_battery_level,
    "temperature": gatt.parse_temperature_measurement,
    "device_info": gatt.parse_device_info_string,
    "ieee11073_float": gatt.decode_ieee11073_float,
}


def valid_messages() -> list[wire.Message]:
    """One of each message a wearable sends: a HELLO of three sensors in three sample
    formats, a SAMPLES packet of each, an event and a time sync."""
    hello = wire.Hello("wrist-01", "1.2.0", 1, (
        wire.SensorInfo(0, "bvp", "a.u.", 64.0, 1, wire.SampleFormat.INT16, 0.01),
        wire.SensorInfo(1, "acc", "g", 32.0, 3, wire.SampleFormat.INT8, 1 / 64),
        wire.SensorInfo(2, "eda", "uS", 4.0, 1, wire.SampleFormat.FLOAT32, 1.0),
    ))
    return [
        hello,
        wire.Samples(0, 1, 10**6, np.arange(16, dtype="<i2")),
        wire.Samples(1, 2, 10**6, np.ones((8, 3), dtype="<i1")),
        wire.Samples(2, 3, 10**6, np.full((4, 1), 0.5, dtype="<f4")),
        wire.Event(wire.EventKind.BATTERY, 4, 2 * 10**6, 87),
        wire.TimeSync(5, 3 * 10**6, 0),
    ]


def frame_with_valid_crc(packet: bytes) -> bytes:
    """Frame ``packet`` (any length, even over the limit) with a correct CRC."""
    return cobs_encode(packet + crc16(packet).to_bytes(2, "big")) + b"\x00"


# -- contract, calibration ------------------------------------------------------------------
def small_contract() -> InputContract:
    """Two modalities at low rates over 4 s windows: small manifests, contracts and baselines."""
    return InputContract(
        modalities=(
            Modality("bvp", "a.u.", 8.0, ("bvp",)),
            Modality("acc", "g", 4.0, ("x", "y", "z"), valid_range=(-8.0, 8.0)),
        ),
        class_names=("baseline", "stress", "amusement"),
        window_s=4.0,
        hop_s=1.0,
        normalization=Normalization(calibration_s=10.0),
    )


CALIBRATION_DICT: Final = Calibration(
    center={"bvp": [0.0], "acc": [0.1, 0.2, 0.9]}, scale={"bvp": [1.0], "acc": [0.1, 0.1, 0.1]},
    source="fuzz",
).to_dict()


def store_doc(calibration: Any) -> dict[str, Any]:
    """A stored baseline of resident ``r1`` for the small contract, as CalibrationStore writes it."""
    return {
        "version": 1,
        "resident": "r1",
        "created": "2025-01-01T00:00:00+0000",
        "fingerprint": contract_fingerprint(small_contract()),
        "calibration": calibration,
    }


# -- recordings -----------------------------------------------------------------------------
def npz_bytes(arrays: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


NPZ_HEADER: Final = {
    "format": "wearable-edge-recording",
    "version": 1,
    "subject": "S0",
    "meta": {"source": "fuzz"},
    "signals": {
        "bvp": {"rate_hz": 8.0, "unit": "a.u.", "channels": ["bvp"]},
        "acc": {"rate_hz": 4.0, "unit": "g", "channels": ["x", "y", "z"]},
    },
    "labels": {"rate_hz": 4.0, "unit": "code", "channels": ["label"]},
}


def recording_npz() -> bytes:
    """A valid ``.npz`` recording with NPZ_HEADER's streams."""
    return npz_bytes({
        "header": np.array(json.dumps(NPZ_HEADER)),
        "sig_bvp": np.zeros((8, 1), np.float32),
        "sig_acc": np.zeros((4, 3), np.float32),
        "labels": np.ones((4, 1), np.int8),
    })


def tiny_wesad(dtype: Any = np.float32) -> dict[str, Any]:
    """The smallest dict that load_wesad_subject accepts: 1 s of every WESAD stream."""
    chest = {k: np.zeros((700, c), dtype) for k, c in
             (("ACC", 3), ("ECG", 1), ("EMG", 1), ("EDA", 1), ("Temp", 1), ("Resp", 1))}
    wrist = {"ACC": np.zeros((32, 3), dtype), "BVP": np.zeros((64, 1), dtype),
             "EDA": np.zeros((4, 1), dtype), "TEMP": np.zeros((4, 1), dtype)}
    return {"subject": "S2", "signal": {"chest": chest, "wrist": wrist},
            "label": np.ones(700, np.int32)}


# -- the daemon's config file ---------------------------------------------------------------
def exercise_config(path: Path) -> None:
    """``load_config(path)`` gives a validated DaemonConfig or refuses with a ConfigError."""
    try:
        cfg = load_config(path)
    except ConfigError:
        return
    assert isinstance(cfg, DaemonConfig)
