"""Property-based fuzzing of every parser that reads bytes or files from outside the hub.

The rule each test enforces (issue 7): malformed input ends in a typed error of the parser's
package (:class:`firmware_bridge.errors.ProtocolError` / ``BridgeError``, or
:class:`edge.errors.EdgeError`), or, for streaming decoders, in a counted rejection. Never
another exception, never a hang, never memory out of proportion to the input.

Inputs are built three ways, because random bytes alone rarely get past a CRC or a JSON
parser: arbitrary bytes; valid inputs with a few bytes (or one JSON value) changed; and
inputs built from the format's own pieces (a packet with a correct CRC around a random body,
a tar of hostile members, a TOML file of known keys with values of the wrong type). Where a
second implementation exists (the streaming frame decoder and ``decode_frame``) they must
agree frame by frame.

The coverage-guided (atheris) harnesses for longer runs live in ``tests/fuzz/``; the
minimal inputs they or these tests found are the ``test_regression_*`` tests at the end.
Budget: the whole file runs in well under a minute (``max_examples`` per test below).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import pickle
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import edge.bundle as bundle_mod
from core.contract import InputContract, Modality, Normalization
from core.errors import CalibrationError, ConfigError, ContractError, RecordingError
from core.recording import load_recording
from core.signal import Calibration
from edge.bundle import MANIFEST_NAME, load_bundle
from edge.calibration_store import CalibrationStore, contract_fingerprint
from edge.config import DaemonConfig, apply_overrides, load_config
from edge.errors import BundleError
from firmware_bridge.errors import ProtocolError
from firmware_bridge.framing import (
    MAX_FRAME_LEN,
    MAX_PACKET_LEN,
    FrameDecoder,
    cobs_encode,
    crc16,
    decode_frame,
    decode_packet,
    encode_frame,
    encode_packet,
)
from firmware_bridge.gatt import (
    Fragmenter,
    NotificationDecoder,
    Reassembler,
    decode_ieee11073_float,
    parse_battery_level,
    parse_device_info_string,
    parse_heart_rate_measurement,
    parse_temperature_measurement,
)
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
    decode_message,
    encode_message,
)
from tests.fakes.frames import reference_decode
from tests.fakes.runs import write_fake_bundle

# One budget for the whole file: each test's max_examples is a multiple of this.
_FAST: Final = 60  # parsers that run in microseconds per input
_SLOW: Final = 25  # parsers that touch the file system (bundles, archives, config, recordings)


def fuzz(n: int) -> Callable[[Any], Any]:
    """Hypothesis settings for a fuzz test: ``n`` inputs, no per-input deadline."""
    return settings(
        max_examples=n,
        deadline=None,  # a shared 2-core CI box: timing is not what these tests measure
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- generic building blocks ----------------------------------------------------------------
# JSON-like values, including what JSON parsers really produce from hostile text: huge ints,
# inf/nan (Python's json reads Infinity/NaN), unicode, nesting.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**400, -(10**400), 0, -1, 2**63, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path (tuple of keys / indices) into a JSON-like value, the root included."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn, base: Any, n_max: int = 3) -> Any:
    """``base`` (a JSON-like value) with 1..n_max of its values replaced, deleted or added."""
    obj = json.loads(json.dumps(base))  # a private deep copy
    for _ in range(draw(st.integers(1, n_max))):
        paths = list(_paths(obj))
        path = draw(st.sampled_from(paths))
        if not path:
            return draw(json_values)
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return obj


@st.composite
def byte_mutated(draw: st.DrawFn, data: bytes, n_max: int = 4) -> bytes:
    """``data`` with a few bytes flipped, deleted, inserted, or cut short."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, n_max))):
        op = draw(st.sampled_from(["flip", "flip", "delete", "insert", "truncate"]))
        if not b:
            b += draw(st.binary(min_size=1, max_size=4))
            continue
        i = draw(st.integers(0, len(b) - 1))
        if op == "flip":
            b[i] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del b[i]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del b[i:]
    return bytes(b)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # module-scoped: hypothesis re-runs the test body, a function-scoped tmp_path would not reset
    return tmp_path_factory.mktemp("fuzz")


# ===========================================================================================
# firmware_bridge: packets, frames, GATT
# ===========================================================================================
_kinds = st.sampled_from(["bvp", "eda", "temp", "acc", "hr", "rr", "ecg", "resp"])
_finite32 = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@st.composite
def sensor_infos(draw: st.DrawFn, sensor_id: int) -> SensorInfo:
    return SensorInfo(
        sensor_id=sensor_id,
        kind=draw(_kinds),
        unit=draw(st.text(max_size=8)),
        rate_hz=draw(st.floats(0.5, 1000.0, width=32)),
        channels=draw(st.integers(1, 4)),
        sample_format=draw(st.sampled_from(list(SampleFormat))),
        scale=draw(_finite32.filter(lambda v: v != 0)),
        offset=draw(_finite32),
    )


@st.composite
def hellos(draw: st.DrawFn) -> Hello:
    ids = draw(st.lists(st.integers(0, 255), unique=True, max_size=4))
    return Hello(
        device_id=draw(st.text(max_size=20)),
        firmware_version=draw(st.text(max_size=10)),
        protocol_version=PROTOCOL_VERSION,
        sensors=tuple(draw(sensor_infos(i)) for i in ids),
    )


@st.composite
def samples_msgs(draw: st.DrawFn) -> Samples:
    fmt = draw(st.sampled_from(list(SampleFormat)))
    raw = draw(
        hnp.arrays(fmt.dtype, st.tuples(st.integers(0, 12), st.integers(1, 3)))
    )
    return Samples(
        sensor_id=draw(st.integers(0, 255)),
        seq=draw(st.integers(0, 0xFFFF)),
        t_device_us=draw(st.integers(0, 2**64 - 1)),
        raw=raw,
    )


messages = st.one_of(
    hellos(),
    samples_msgs(),
    st.builds(
        Event,
        kind=st.sampled_from(list(EventKind)),
        seq=st.integers(0, 0xFFFF),
        t_device_us=st.integers(0, 2**64 - 1),
        value=st.integers(-(2**31), 2**31 - 1),
    ),
    st.builds(
        TimeSync,
        seq=st.integers(0, 0xFFFF),
        t_device_us=st.integers(0, 2**64 - 1),
        t_hub_us=st.integers(0, 2**64 - 1),
    ),
)

# A packet body that decode_message will actually look at: version 1, a known (or unknown)
# type, then anything.
packets = st.builds(
    lambda v, t, body: bytes((v, t)) + body,
    st.sampled_from([PROTOCOL_VERSION, PROTOCOL_VERSION, PROTOCOL_VERSION, 0, 2, 255]),
    st.sampled_from([1, 2, 3, 4, 1, 2, 0, 5, 255]),
    st.binary(max_size=300),
)


def _frame_with_valid_crc(packet: bytes) -> bytes:
    """Frame ``packet`` (any length, even over the limit) with a correct CRC."""
    return cobs_encode(packet + crc16(packet).to_bytes(2, "big")) + b"\x00"


def _decode_or_reason(fn: Callable[[], Message]) -> Message | str:
    try:
        return fn()
    except ProtocolError as e:
        return e.reason


@fuzz(4 * _FAST)
@given(packets)
def test_decode_message_raises_only_protocol_errors(packet: bytes) -> None:
    _decode_or_reason(lambda: decode_message(packet))


@fuzz(4 * _FAST)
@given(st.data())
def test_decode_message_of_mutated_valid_packets(data: st.DataObject) -> None:
    msg = data.draw(messages)
    packet = encode_message(msg)
    assert decode_message(packet) == msg  # the unmutated packet is the oracle's anchor
    bad = data.draw(byte_mutated(packet))
    sensors = msg.sensor_map() if isinstance(msg, Hello) else None
    got = _decode_or_reason(lambda: decode_message(bad, sensors))
    if not isinstance(got, str):
        # anything accepted must survive its own round trip (no half-parsed message)
        assert decode_message(encode_message(got)) == got


@fuzz(4 * _FAST)
@given(st.one_of(st.binary(max_size=400), packets.map(_frame_with_valid_crc)))
def test_decode_frame_raises_only_protocol_errors(frame: bytes) -> None:
    _decode_or_reason(lambda: decode_frame(frame))


@fuzz(2 * _FAST)
@given(st.data())
def test_decode_frame_of_mutated_valid_frames(data: st.DataObject) -> None:
    frame = encode_frame(data.draw(messages))
    bad = data.draw(byte_mutated(frame))
    _decode_or_reason(lambda: decode_frame(bad))


# Pieces of a serial stream: valid frames, corrupted ones, CRC-valid frames around random
# packets, frames at the length limits, garbage with and without delimiters.
_stream_parts = st.one_of(
    messages.map(encode_frame),
    messages.map(encode_frame).flatmap(byte_mutated),
    packets.map(_frame_with_valid_crc),
    st.integers(MAX_PACKET_LEN - 4, MAX_PACKET_LEN + 8).map(
        lambda n: _frame_with_valid_crc(bytes((PROTOCOL_VERSION, 2)) + b"\x01" * (n - 4))
    ),
    st.integers(MAX_FRAME_LEN - 2, MAX_FRAME_LEN + 300).map(lambda n: b"\x07" * n),
    st.binary(max_size=60),
    st.just(b"\x00"),
)


@fuzz(3 * _FAST)
@given(
    # up to 24 parts: a read completing 128+ frames takes the decoder's vectorised path; fewer, the Python loop
    st.lists(st.one_of(_stream_parts, st.just(b"\x00" * 16)), max_size=24),
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


# -- GATT -----------------------------------------------------------------------------------
_GATT_PARSERS: Final = {
    "heart_rate": parse_heart_rate_measurement,
    "battery": parse_battery_level,
    "temperature": parse_temperature_measurement,
    "device_info": parse_device_info_string,
    "ieee11073_float": decode_ieee11073_float,
    "packet": decode_packet,
}


@pytest.mark.parametrize("name", sorted(_GATT_PARSERS))
@fuzz(2 * _FAST)
@given(data=st.one_of(st.binary(max_size=40), st.binary(min_size=1, max_size=3).map(lambda b: b * 9)))
def test_gatt_value_parsers_raise_only_protocol_errors(name: str, data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        _GATT_PARSERS[name](data)


@fuzz(3 * _FAST)
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
        expected = _decode_or_reason(lambda p=packet: decode_packet(p))  # type: ignore[misc]
        if not isinstance(expected, str):
            want.append(expected)
        for f in frag.fragment(packet):
            got += dec.feed(f)
    assert got == want


@fuzz(3 * _FAST)
@given(st.lists(st.binary(max_size=30), max_size=60))
def test_reassembler_bounds_packets_and_never_raises(fragments: list[bytes]) -> None:
    r = Reassembler()
    for f in fragments:
        packet = r.feed(f)
        assert packet is None or len(packet) <= MAX_PACKET_LEN
    assert sum(1 for f in fragments if not f) == r.stats["empty_fragments"]


# ===========================================================================================
# edge: contract, calibration, bundle, config, recordings
# ===========================================================================================
def _small_contract() -> InputContract:
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


_CONTRACT_DICT: Final = _small_contract().to_dict()


@fuzz(4 * _FAST)
@given(st.one_of(mutated(_CONTRACT_DICT), json_values))
def test_contract_from_dict_raises_only_contract_errors(d: Any) -> None:
    try:
        c = InputContract.from_dict(d)
    except ContractError:
        return
    assert InputContract.from_dict(c.to_dict()) == c


_CALIBRATION_DICT: Final = Calibration(
    center={"bvp": [0.0], "acc": [0.1, 0.2, 0.9]}, scale={"bvp": [1.0], "acc": [0.1, 0.1, 0.1]},
    source="fuzz",
).to_dict()


@fuzz(4 * _FAST)
@given(st.one_of(mutated(_CALIBRATION_DICT), json_values))
def test_calibration_from_dict_raises_only_calibration_errors(d: Any) -> None:
    with contextlib.suppress(CalibrationError):
        Calibration.from_dict(d)


def _store_doc(calibration: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "resident": "r1",
        "created": "2025-01-01T00:00:00+0000",
        "fingerprint": contract_fingerprint(_small_contract()),
        "calibration": calibration,
    }


@fuzz(2 * _FAST)
@given(
    st.one_of(
        mutated(_store_doc(_CALIBRATION_DICT)).map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=200),
        st.integers(1, 20_000).map(lambda n: b"[" * n),
    )
)
def test_calibration_store_treats_any_file_as_a_baseline_or_none(workdir: Path, raw: bytes) -> None:
    store = CalibrationStore(workdir / "calibration")
    store.directory.mkdir(exist_ok=True)
    store.path_for("r1").write_bytes(raw)
    got = store.load("r1", _small_contract())
    assert got is None or isinstance(got, Calibration)


# -- bundles --------------------------------------------------------------------------------
_MODEL_FILES: Final = {
    "onnx_fp32": "model_fp32.onnx",
    "onnx_int8": "model_int8.onnx",
    "tflite_fp32": "model_fp32.tflite",
    "tflite_int8": "model_int8.tflite",
}


def _write_bundle(root: Path) -> dict[str, Any]:
    """A valid bundle whose model files are random bytes (the loader never parses them)."""
    return write_fake_bundle(root, contract=_small_contract(), file_size=512, model_id="fuzz")


@pytest.fixture(scope="module")
def fuzz_bundle(workdir: Path) -> tuple[Path, dict[str, Any]]:
    root = workdir / "bundle"
    manifest = _write_bundle(root)
    load_bundle(root).close()  # the base is valid: every failure below is the mutation's
    return root, manifest


def _exercise_bundle(path: Path) -> None:
    """Load ``path``; a loaded bundle's accessors must not raise either."""
    try:
        b = load_bundle(path)
    except BundleError:
        return
    with b:
        _ = (b.model_id, b.model_version, b.class_names, b.calibration_required, b.recommended)
        _ = repr(b)
        for key in b.files:
            assert b.path_of(key).is_file()
            b.read_verified(key)


@fuzz(3 * _FAST)
@given(data=st.data())
def test_load_bundle_with_mutated_manifest(
    fuzz_bundle: tuple[Path, dict[str, Any]], data: st.DataObject
) -> None:
    root, manifest = fuzz_bundle
    where = data.draw(st.sampled_from(["anywhere", "contract", "files", "tensor"]))
    if where == "anywhere":
        m = data.draw(mutated(manifest))
    elif where == "contract":
        m = {**manifest, "contract": data.draw(mutated(manifest["contract"]))}
    elif where == "files":
        m = {**manifest, "files": data.draw(mutated(manifest["files"]))}
    else:
        key = data.draw(st.sampled_from(sorted(_MODEL_FILES)))
        entry = data.draw(mutated(manifest["files"][key]))
        m = {**manifest, "files": {**manifest["files"], key: entry}}
    raw = json.dumps(m).encode()
    if data.draw(st.booleans()):
        raw = data.draw(byte_mutated(raw))
    try:
        (root / MANIFEST_NAME).write_bytes(raw)
        _exercise_bundle(root)
    finally:
        (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))


# A tar member: (name, kind, payload). Kinds cover what an attacker can put in a tar.
_member_names = st.one_of(
    st.sampled_from([
        "manifest.json", "bundle/manifest.json", "model_fp32.onnx", "../evil", "/abs/evil",
        "bundle/../../evil", "a/b/../../../evil", "./manifest.json", "", ".", "..",
        "bundle", "dir/", "x" * 200,
    ]),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20),
)
_member_kinds = st.sampled_from(
    [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
     tarfile.CHRTYPE, tarfile.FIFOTYPE]
)


@contextlib.contextmanager
def _private_tempdir(path: Path) -> Iterator[Path]:
    """Point ``tempfile`` (where load_bundle extracts archives) at an empty ``path``."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    saved = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = saved


def _tar_bytes(members: list[tuple[str, bytes, bytes, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.linkname = link
                tar.addfile(info)
    return buf.getvalue()


@fuzz(2 * _SLOW)
@given(
    st.lists(
        st.tuples(
            _member_names,
            _member_kinds,
            st.binary(max_size=64),
            st.sampled_from(["/etc/passwd", "../../x", "manifest.json", "model_fp32.onnx"]),
        ),
        max_size=6,
    )
)
def test_load_bundle_archive_of_hostile_members(
    workdir: Path, members: list[tuple[str, bytes, bytes, str]]
) -> None:
    archive = workdir / "hostile.tar"
    try:
        archive.write_bytes(_tar_bytes(members))
    except (ValueError, UnicodeError, tarfile.TarError):
        assume(False)  # tarfile itself cannot write this member list
    with _private_tempdir(workdir / "tmp") as tmp:
        _exercise_bundle(archive)
        # nothing escaped the bundle's private directory, and that directory is gone
        assert list(tmp.iterdir()) == []


@pytest.fixture(scope="module")
def bundle_tars(fuzz_bundle: tuple[Path, dict[str, Any]], workdir: Path) -> dict[str, bytes]:
    """The valid bundle as a plain, gzip and xz archive (load_bundle opens all three)."""
    root, _ = fuzz_bundle
    out = {}
    for mode in ("w", "w:gz", "w:xz"):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
            tar.add(root, arcname="bundle")
        path = workdir / "good.tar"
        path.write_bytes(buf.getvalue())
        load_bundle(path).close()
        out[mode] = buf.getvalue()
    return out


@fuzz(3 * _SLOW)
@given(data=st.data())
def test_load_bundle_archive_with_mutated_bytes(
    bundle_tars: dict[str, bytes], workdir: Path, data: st.DataObject
) -> None:
    good = bundle_tars[data.draw(st.sampled_from(sorted(bundle_tars)))]
    raw = data.draw(byte_mutated(good, n_max=6))
    archive = workdir / "mutated.tar"
    archive.write_bytes(raw)
    with _private_tempdir(workdir / "tmp"):
        _exercise_bundle(archive)


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_regression_corrupt_compressed_archive(tmp_path: Path, mode: str, damage: str) -> None:
    # gzip/bz2/lzma raise EOFError and LZMAError, which tarfile lets through
    root = tmp_path / "b"
    _write_bundle(root)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        tar.add(root, arcname="b")
    raw = bytearray(buf.getvalue())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2] ^= 0xFF
    archive = tmp_path / "b.tar"
    archive.write_bytes(bytes(raw))
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    # gzip checks its CRC only at the end, which tarfile may never read: a flipped byte can
    # surface as a model file whose hash is wrong, still refused
    assert e.value.reason in ("archive", "hash_mismatch", "manifest", "missing_file")


# -- daemon config --------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string (lone surrogates aside)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return '"?"'  # None has no TOML form


def _toml(doc: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in doc.items()) + "\n"


def _config_keys() -> dict[str, Any]:
    """Every key of the config file with its default (sections as nested dicts)."""
    from dataclasses import asdict

    return asdict(DaemonConfig())


_CONFIG_DEFAULTS: Final = _config_keys()
_toml_scalars = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=10)
)
_toml_values = st.recursive(
    _toml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def config_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A config of known keys (some with values of the wrong type or range) and a stray key."""
    doc: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from(sorted(_CONFIG_DEFAULTS)))
        default = _CONFIG_DEFAULTS[key]
        if isinstance(default, dict) and default and draw(st.booleans()):
            sub = draw(st.sampled_from(sorted(default)))
            doc.setdefault(key, {})
            if isinstance(doc[key], dict):
                doc[key][sub] = draw(_toml_values)
        else:
            doc[key] = draw(_toml_values)
    if draw(st.integers(0, 9)) == 0:
        doc[draw(st.text(max_size=6))] = draw(_toml_values)
    return doc


@fuzz(3 * _FAST)
@given(
    st.one_of(
        config_docs().map(lambda d: _toml(d).encode("utf-8", "surrogatepass")),
        config_docs().map(lambda d: _toml(d).encode("utf-8", "surrogatepass")).flatmap(byte_mutated),
        st.binary(max_size=200),
        st.integers(1, 5000).map(lambda n: b"a = " + b"[" * n),
    )
)
def test_load_config_raises_only_config_errors(workdir: Path, raw: bytes) -> None:
    path = workdir / "edge.toml"
    path.write_bytes(raw)
    try:
        cfg = load_config(path)
    except ConfigError:
        return
    assert isinstance(cfg, DaemonConfig)


@fuzz(2 * _FAST)
@given(
    st.dictionaries(
        st.one_of(
            st.sampled_from(sorted(_CONFIG_DEFAULTS)),
            st.sampled_from(
                sorted(f"{k}.{s}" for k, v in _CONFIG_DEFAULTS.items() if isinstance(v, dict)
                       for s in v)
            ),
            st.text(max_size=10),
        ),
        st.one_of(st.none(), _toml_values),
        max_size=5,
    )
)
def test_apply_overrides_raises_only_config_errors(overrides: dict[str, Any]) -> None:
    with contextlib.suppress(ConfigError):
        apply_overrides(DaemonConfig(), overrides)


# -- recordings -----------------------------------------------------------------------------
def _npz_bytes(arrays: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


_NPZ_HEADER: Final = {
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
_npz_arrays = hnp.arrays(
    st.sampled_from([np.float32, np.float16, np.int8, np.int64, np.bool_, np.uint8]),
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
)


@fuzz(2 * _SLOW)
@given(
    header=st.one_of(mutated(_NPZ_HEADER), json_values),
    arrays=st.dictionaries(
        st.sampled_from(["sig_bvp", "sig_acc", "labels", "sig_x"]), _npz_arrays, max_size=4
    ),
    header_kind=st.sampled_from(["json", "json", "number", "vector"]),
)
def test_load_recording_npz_raises_only_recording_errors(
    workdir: Path, header: Any, arrays: dict[str, np.ndarray], header_kind: str
) -> None:
    text = json.dumps(header)
    hdr = {"json": np.array(text), "number": np.array(3.0), "vector": np.array([text, text])}
    path = workdir / "rec.npz"
    path.write_bytes(_npz_bytes({"header": hdr[header_kind], **arrays}))
    with contextlib.suppress(RecordingError):
        load_recording(path)


@fuzz(2 * _SLOW)
@given(data=st.data())
def test_load_recording_npz_with_mutated_bytes(workdir: Path, data: st.DataObject) -> None:
    good = _npz_bytes({
        "header": np.array(json.dumps(_NPZ_HEADER)),
        "sig_bvp": np.zeros((8, 1), np.float32),
        "sig_acc": np.zeros((4, 3), np.float32),
        "labels": np.ones((4, 1), np.int8),
    })
    path = workdir / "mut.npz"
    path.write_bytes(data.draw(byte_mutated(good, n_max=6)))
    with contextlib.suppress(RecordingError):
        load_recording(path)


def _tiny_wesad(dtype: Any = np.float32) -> dict[str, Any]:
    """The smallest dict that load_wesad_subject accepts: 1 s of every WESAD stream."""
    chest = {k: np.zeros((700, c), dtype) for k, c in
             (("ACC", 3), ("ECG", 1), ("EMG", 1), ("EDA", 1), ("Temp", 1), ("Resp", 1))}
    wrist = {"ACC": np.zeros((32, 3), dtype), "BVP": np.zeros((64, 1), dtype),
             "EDA": np.zeros((4, 1), dtype), "TEMP": np.zeros((4, 1), dtype)}
    return {"subject": "S2", "signal": {"chest": chest, "wrist": wrist},
            "label": np.ones(700, np.int32)}


_pickle_leaves = st.one_of(
    st.none(), st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=6),
    st.binary(max_size=6), _npz_arrays,
)
_pickle_values = st.recursive(
    _pickle_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=6), st.binary(max_size=4)), inner, max_size=3),
    ),
    max_leaves=10,
)


@st.composite
def wesad_like(draw: st.DrawFn) -> dict[str, Any]:
    """The WESAD layout with some entries replaced by arbitrary values or arrays."""
    d = _tiny_wesad(draw(st.sampled_from([np.float32, np.float64, np.int16])))
    groups = [d, d["signal"], d["signal"]["chest"], d["signal"]["wrist"]]
    for _ in range(draw(st.integers(1, 3))):
        g = draw(st.sampled_from(groups))
        if not g:
            continue
        key = draw(st.sampled_from(sorted(g)))
        if draw(st.booleans()):
            g[key] = draw(_pickle_values)
        else:
            del g[key]
    return d


@fuzz(2 * _SLOW)
@given(
    obj=st.one_of(wesad_like(), _pickle_values),
    protocol=st.integers(0, 5),
)
def test_load_recording_pkl_raises_only_recording_errors(
    workdir: Path, obj: Any, protocol: int
) -> None:
    path = workdir / "S0.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    with contextlib.suppress(RecordingError):
        load_recording(path)


@pytest.fixture(scope="module")
def wesad_pickle() -> bytes:
    return pickle.dumps(_tiny_wesad(), protocol=2)


@fuzz(2 * _SLOW)
@given(data=st.data())
def test_load_recording_pkl_with_mutated_bytes(
    workdir: Path, wesad_pickle: bytes, data: st.DataObject
) -> None:
    path = workdir / "S1.pkl"
    path.write_bytes(data.draw(byte_mutated(wesad_pickle, n_max=6)))
    with contextlib.suppress(RecordingError):
        load_recording(path)


# ===========================================================================================
# Regressions: minimal inputs found by these tests and by the atheris harnesses
# ===========================================================================================
def _oversize_packet_frame() -> bytes:
    """A CRC-valid SAMPLES frame whose packet is 2054 bytes: over MAX_PACKET_LEN, under
    MAX_FRAME_LEN (zeros cost no COBS overhead), so only a packet-length check catches it."""
    raw = np.zeros((MAX_PACKET_LEN - 11, 1), np.uint8)  # 13-byte header + data + CRC = 2054
    return _frame_with_valid_crc(encode_message(Samples(1, 0, 0, raw)))


@pytest.mark.parametrize("idle_fill", [0, 20])  # 20 delimiters: the vectorised decode path
def test_regression_frame_decoder_rejects_packets_over_the_limit(idle_fill: int) -> None:
    frame = _oversize_packet_frame()
    with pytest.raises(ProtocolError) as e:
        decode_frame(frame)
    assert e.value.reason == "oversize"
    dec = FrameDecoder()
    assert dec.feed(frame + b"\x00" * idle_fill) == []
    assert dec.stats["oversize"] == 1 and dec.stats["frames"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"window_s": math.inf},  # round(inf) raised OverflowError
        {"version": math.inf},  # int(inf) raised OverflowError
        {"input_length": "eighty"},  # was checked outside the try: ValueError
        {"input_length": [80]},
        {"normalization": {"center": {"bvp": [10**400]}}},  # float(huge int): OverflowError
    ],
)
def test_regression_contract_from_dict_overflow_and_input_length(change: dict[str, Any]) -> None:
    with pytest.raises(ContractError):
        InputContract.from_dict({**_CONTRACT_DICT, **change})


def test_regression_contract_from_dict_huge_rate() -> None:
    d = json.loads(json.dumps(_CONTRACT_DICT))
    d["modalities"][0]["rate_hz"] = 10**400
    with pytest.raises(ContractError):
        InputContract.from_dict(d)


@pytest.mark.parametrize(
    "d",
    [
        {**_CALIBRATION_DICT, "center": {"bvp": 10**400, "acc": [0.1, 0.2, 0.9]}},
        {**_CALIBRATION_DICT, "schema": math.inf},
    ],
)
def test_regression_calibration_from_dict_overflow(d: dict[str, Any]) -> None:
    with pytest.raises(CalibrationError):
        Calibration.from_dict(d)


def test_regression_calibration_store_deeply_nested_file(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    store.path_for("r1").write_bytes(b"[" * 100_000)  # json's C scanner: RecursionError
    assert store.load("r1", _small_contract()) is None


def _write_manifest(root: Path, manifest: Any) -> None:
    (root / MANIFEST_NAME).write_text(json.dumps(manifest))


def _with_entry(manifest: dict[str, Any], key: str, **change: Any) -> dict[str, Any]:
    files = json.loads(json.dumps(manifest["files"]))
    files[key].update(change)
    return {**manifest, "files": files}


@pytest.mark.parametrize(
    "case",
    ["deep", "long_int", "output_not_object", "size_inf", "long_path", "empty_shape",
     "accuracy_list", "window_inf"],
)
def test_regression_manifest_malformations_are_bundle_errors(tmp_path: Path, case: str) -> None:
    root = tmp_path / "b"
    manifest = _write_bundle(root)
    raw: bytes | None = None
    if case == "deep":
        raw = b"[" * 100_000  # RecursionError from json
    elif case == "long_int":
        raw = b'{"schema_version": 1' + b"0" * 5000 + b"}"  # int digit limit: plain ValueError
    elif case == "output_not_object":
        manifest = _with_entry(manifest, "onnx_int8", output=True)  # .get on a bool
    elif case == "size_inf":
        manifest = _with_entry(manifest, "onnx_fp32", size=math.inf)  # int(inf)
    elif case == "long_path":
        manifest = _with_entry(manifest, "onnx_fp32", path="1" * 400)  # ENAMETOOLONG from is_file
    elif case == "empty_shape":
        manifest = _with_entry(manifest, "onnx_fp32", input={"name": "x", "shape": [], "dtype": "float32"})
    elif case == "accuracy_list":
        manifest = _with_entry(manifest, "onnx_fp32", accuracy=[1])
    else:
        manifest = {**manifest, "contract": {**manifest["contract"], "window_s": math.inf}}
    if raw is None:
        _write_manifest(root, manifest)
    else:
        (root / MANIFEST_NAME).write_bytes(raw)
    with pytest.raises(BundleError) as e:
        load_bundle(root)
    assert e.value.reason in ("manifest", "schema", "contract", "missing_file")


def test_regression_recommended_of_unhashable_value_is_none(tmp_path: Path) -> None:
    root = tmp_path / "b"
    _write_manifest(root, {**_write_bundle(root), "recommended": ["tflite_int8"]})
    with load_bundle(root) as b:
        assert b.recommended is None


def test_regression_signature_file_deeply_nested(tmp_path: Path) -> None:
    root = tmp_path / "b"
    _write_bundle(root)
    (root / "manifest.sig").write_bytes(b"{\"a\": " * 50_000)
    key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=[key])
    assert e.value.reason == "signature"


def test_regression_archive_larger_than_the_limit_is_refused_before_extraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a compressed archive inflates to far more than its own size: refuse by declared size
    root = tmp_path / "b"
    _write_bundle(root)
    (root / "plots").mkdir()
    (root / "plots" / "big.png").write_bytes(b"\0" * (3 << 20))
    archive = tmp_path / "b.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="b")
    assert archive.stat().st_size < (1 << 20)
    load_bundle(archive).close()  # under the real limit it loads
    monkeypatch.setattr(bundle_mod, "_MAX_ARCHIVE_BYTES", 2 << 20)
    with _private_tempdir(tmp_path / "tmp") as tmp, pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive"
    assert list(tmp.iterdir()) == []


def test_regression_archive_with_too_many_members_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = [(f"b/empty{i}", tarfile.REGTYPE, b"", "") for i in range(50)]
    archive = tmp_path / "many.tar"
    archive.write_bytes(_tar_bytes(members))
    monkeypatch.setattr(bundle_mod, "_MAX_ARCHIVE_MEMBERS", 20)
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive" and "members" in str(e.value)


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe = 1\n", b"a = " + b"[" * 10_000, b"a = " + b"{b = " * 10_000],
    ids=["not_utf8", "deep_array", "deep_inline_table"],
)
def test_regression_config_file_not_utf8_or_deeply_nested(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "edge.toml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.key == "config"


def test_regression_overrides_of_a_section_and_its_key() -> None:
    with pytest.raises(ConfigError) as e:
        apply_overrides(DaemonConfig(), {"health": False, "health.interval_s": False})
    assert e.value.key.startswith("health")


def _zip_npz(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    from numpy.lib import format as npformat

    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


@pytest.mark.parametrize(
    "case", ["header_null", "header_number", "meta_list", "huge_rate", "deep_header", "huge_shape"]
)
def test_regression_npz_malformations_are_recording_errors(tmp_path: Path, case: str) -> None:
    header: Any = json.loads(json.dumps(_NPZ_HEADER))
    arrays = {"sig_bvp": _npy(np.zeros((8, 1), np.float32)),
              "sig_acc": _npy(np.zeros((4, 3), np.float32)),
              "labels": _npy(np.ones((4, 1), np.int8))}
    header_npy: bytes | None = None
    if case == "header_null":
        header = None  # header.get on None
    elif case == "header_number":
        header_npy = _npy(np.array(3.0))
    elif case == "meta_list":
        header["meta"] = [1, 2]  # dict([1, 2]) ran outside the try
    elif case == "huge_rate":
        header["signals"]["bvp"]["rate_hz"] = 10**400
    elif case == "deep_header":
        header_npy = _npy(np.array("[" * 100_000))
    else:
        arrays["sig_bvp"] = _npy_header_only((2**40, 1))  # MemoryError allocating 4 TiB
    if header_npy is None:
        header_npy = _npy(np.array(json.dumps(header)))
    path = _zip_npz(tmp_path / "r.npz", {"header.npy": header_npy,
                                         **{f"{k}.npy": v for k, v in arrays.items()}})
    with pytest.raises(RecordingError):
        load_recording(path)


@pytest.mark.parametrize("cut", [10, 200, -30])
def test_regression_broken_zip_is_a_recording_error_and_closes_the_file(
    tmp_path: Path, cut: int
) -> None:
    import gc
    import warnings

    good = _npz_bytes({"header": np.array(json.dumps(_NPZ_HEADER)),
                       "sig_bvp": np.zeros((8, 1), np.float32)})
    path = tmp_path / "r.npz"
    path.write_bytes(good[:cut] if cut > 0 else good[:cut] + b"\x01" * 30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(RecordingError):
            load_recording(path)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def _wesad_with(**top: Any) -> bytes:
    d = _tiny_wesad()
    d.update(top)
    return pickle.dumps(d, protocol=2)


# Hand-written protocol-2 pickles: what a hostile "WESAD file" can do with the admitted globals.
_PKL_BYTEARRAY_HUGE: Final = (
    b"\x80\x02c__builtin__\nbytearray\n\x8a\x08" + (2**62).to_bytes(8, "little") + b"\x85R."
)
_PKL_NDARRAY_HUGE: Final = (
    b"\x80\x02cnumpy\nndarray\n\x8a\x06" + (2**42).to_bytes(6, "little") + b"\x85\x85R."
)
_PKL_RECONSTRUCT_HUGE: Final = (
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n\x8a\x06"
    + (2**42).to_bytes(6, "little") + b"\x85C\x01b\x87R."
)


@pytest.mark.parametrize(
    "raw",
    [_PKL_BYTEARRAY_HUGE, _PKL_NDARRAY_HUGE, _PKL_RECONSTRUCT_HUGE],
    ids=["bytearray(2**62)", "ndarray((2**42,))", "_reconstruct(ndarray, (2**42,))"],
)
def test_regression_pickle_cannot_make_memory_out_of_nothing(tmp_path: Path, raw: bytes) -> None:
    # 2**42 elements fail at once with MemoryError; what matters is that they are refused
    # before any allocation (the same pickle with 10**9 elements would take gigabytes).
    path = tmp_path / "S9.pkl"
    path.write_bytes(raw)
    with pytest.raises(RecordingError) as e:
        load_recording(path)
    # refused (UnpicklingError; TypeError: ndarray is not callable from a pickle), not tried
    assert isinstance(e.value.__cause__, pickle.UnpicklingError | TypeError), e.value


def test_regression_pickle_with_deeply_nested_key(tmp_path: Path) -> None:
    # str() of a 5000-deep tuple (listing the dict's keys in the error) hit RecursionError
    path = tmp_path / "S9.pkl"
    path.write_bytes(b"\x80\x02}" + b")" + b"\x85" * 5000 + b"K\x01s.")
    with pytest.raises(RecordingError):
        load_recording(path)


def test_regression_pickle_nested_past_the_c_stack_does_not_crash(tmp_path: Path) -> None:
    # 200k nested tuples as a dict key: hashing it overflowed the C stack (SIGSEGV) inside
    # the unpickler. Run in a child process so a regression fails this test, not the run.
    import subprocess
    import sys

    path = tmp_path / "S9.pkl"
    path.write_bytes(b"\x80\x02}" + b")" + b"\x85" * 200_000 + b"K\x01s.")
    code = (
        "import sys\nfrom core.errors import RecordingError\nfrom core.recording import load_recording\n"
        "try:\n    load_recording(sys.argv[1])\nexcept RecordingError as e:\n    print('refused:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("refused:")


def test_regression_real_wesad_pickles_still_load(tmp_path: Path) -> None:
    # the pickle limits above must not refuse what numpy itself writes, in any protocol
    for protocol in range(6):
        path = tmp_path / f"S{protocol}.pkl"
        path.write_bytes(pickle.dumps(_tiny_wesad(np.float64), protocol=protocol))
        rec = load_recording(path)
        assert rec.signals["acc"].values.shape == (32, 3)
        assert rec.label_codes().shape == (700,)


@pytest.mark.parametrize("flag", [0x01, 0x20, 0x40], ids=["encrypted", "patched", "strong_crypto"])
def test_regression_npz_with_unsupported_zip_features(tmp_path: Path, flag: int) -> None:
    # zipfile raises RuntimeError (encrypted) or NotImplementedError for these flag bits
    good = _npz_bytes({"header": np.array(json.dumps(_NPZ_HEADER)),
                       "sig_bvp": np.zeros((8, 1), np.float32)})
    raw = bytearray(good)
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = raw.find(sig)
        while i >= 0:
            raw[i + offset] |= flag
            i = raw.find(sig, i + 1)
    path = tmp_path / "r.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordingError):
        load_recording(path)
