"""Hypothesis settings and strategies shared by the property tests (one set, imported by all).

Inputs are built three ways, because random bytes alone rarely get past a CRC or a JSON
parser: arbitrary bytes; valid inputs with a few bytes (or one JSON value) changed
(:func:`byte_mutated`, :func:`mutated`); and inputs built from the format's own pieces (a
packet with a correct CRC around a random body, a tar of hostile members, a TOML file of known
keys with values of the wrong type). The valid inputs themselves live in tests/fakes/inputs.py,
where the atheris harnesses of tests/fuzz/ take their seeds from too.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, Final

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edge.config import DaemonConfig
from firmware_bridge import protocol as wire
from firmware_bridge.framing import MAX_FRAME_LEN, MAX_PACKET_LEN, encode_frame
from tests.fakes.inputs import frame_with_valid_crc, tiny_wesad

# The parsers' budget: each fuzz test's max_examples is a multiple of one of these.
FAST_PARSER: Final = 60  # parsers that run in microseconds per input
FILE_PARSER: Final = 25  # parsers that touch the file system (bundles, archives, config, recordings)


def examples(n: int) -> settings:
    """Settings for a property test: ``n`` inputs, no per-input deadline."""
    return settings(
        max_examples=n,
        deadline=None,  # a shared 2-core CI box: timing is not what these tests measure
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# The hypothesis profile (tests/conftest.py): "dev" when a developer runs a file, "ci" when
# `make test` runs the suite. The signal-processing properties take seconds per dozen inputs:
# 15 keeps the edit-test loop quick, 60 is what the suite runs so that jitter, gaps and NaNs
# meet each other; PREPROCESS_EXAMPLES=300 for a deep soak.
PROFILE: Final = os.environ.get("HYPOTHESIS_PROFILE", "dev")
_SIGNAL_EXAMPLES: Final = {"dev": 15, "ci": 60}
signal_examples = examples(
    int(os.environ.get("PREPROCESS_EXAMPLES", _SIGNAL_EXAMPLES.get(PROFILE, 15))))


# -- core.signal ------------------------------------------------------------------------------
def random_chunks(s: dict[str, tuple[np.ndarray, np.ndarray]], data: st.DataObject
                  ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Each stream cut at random sizes, modalities interleaved at random (order kept)."""
    seqs: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for name, (t, x) in s.items():
        sizes = data.draw(st.lists(st.integers(1, 97), min_size=1, max_size=40), label=name)
        cuts, i, k = [], 0, 0
        while i < t.size:
            n = sizes[k % len(sizes)]
            cuts.append((name, t[i : i + n], x[i : i + n]))
            i, k = i + n, k + 1
        seqs[name] = cuts
    order = data.draw(st.permutations([n for n, q in seqs.items() for _ in q]), label="order")
    pos = dict.fromkeys(seqs, 0)
    out = []
    for n in order:
        out.append(seqs[n][pos[n]])
        pos[n] += 1
    return out


# -- JSON and bytes -------------------------------------------------------------------------
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


# -- firmware_bridge: packets, frames, GATT --------------------------------------------------
_VERSION = wire.PROTOCOL_VERSION
_u8 = st.integers(0, 0xFF)
_u16 = st.integers(0, 0xFFFF)
_u64 = st.integers(0, 2**64 - 1)
_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
_short_text = st.text(max_size=20).filter(lambda s: len(s.encode()) <= 255)
_kinds = st.sampled_from(["bvp", "eda", "temp", "acc", "hr", "rr", "ecg", "resp", "emg", "c_eda"])


@st.composite
def sensor_infos(draw: st.DrawFn, sensor_id: int | None = None) -> wire.SensorInfo:
    return wire.SensorInfo(
        sensor_id=draw(_u8) if sensor_id is None else sensor_id,
        kind=draw(_kinds),
        unit=draw(_short_text),
        rate_hz=draw(st.floats(0.125, 1e4, width=32)),
        channels=draw(st.integers(1, 255)),
        sample_format=draw(st.sampled_from(list(wire.SampleFormat))),
        scale=draw(_f32.filter(lambda x: x != 0)),
        offset=draw(_f32),
    )


@st.composite
def hellos(draw: st.DrawFn) -> wire.Hello:
    ids = draw(st.lists(_u8, max_size=6, unique=True))
    sensors = tuple(draw(sensor_infos(sensor_id=i)) for i in ids)
    return wire.Hello(draw(_short_text), draw(_short_text), draw(_u8), sensors)


@st.composite
def samples_msgs(draw: st.DrawFn) -> wire.Samples:
    fmt = draw(st.sampled_from(list(wire.SampleFormat)))
    count = draw(st.integers(0, 40))
    channels = draw(st.integers(1, 4))
    data = draw(st.binary(min_size=count * channels * fmt.dtype.itemsize,
                          max_size=count * channels * fmt.dtype.itemsize))  # fmt: skip
    raw = np.frombuffer(data, fmt.dtype).reshape(count, channels)
    return wire.Samples(draw(_u8), draw(_u16), draw(_u64), raw)


events = st.builds(wire.Event, st.sampled_from(list(wire.EventKind)), _u16, _u64,
                   st.integers(-(2**31), 2**31 - 1))
time_syncs = st.builds(wire.TimeSync, _u16, _u64, _u64)
# every message kind, with any field values the wire can carry
messages = st.one_of(hellos(), samples_msgs(), events, time_syncs)


# A packet body that decode_message will actually look at: version 1, a known (or unknown)
# type, then anything.
packets = st.builds(
    lambda v, t, body: bytes((v, t)) + body,
    st.sampled_from([_VERSION, _VERSION, _VERSION, 0, 2, 255]),
    st.sampled_from([1, 2, 3, 4, 1, 2, 0, 5, 255]),
    st.binary(max_size=300),
)


# Pieces of a serial stream: valid frames, corrupted ones, CRC-valid frames around random
# packets, frames at the length limits, garbage with and without delimiters.
stream_parts = st.one_of(
    messages.map(encode_frame),
    messages.map(encode_frame).flatmap(byte_mutated),
    packets.map(frame_with_valid_crc),
    st.integers(MAX_PACKET_LEN - 4, MAX_PACKET_LEN + 8).map(
        lambda n: frame_with_valid_crc(bytes((_VERSION, 2)) + b"\x01" * (n - 4))
    ),
    st.integers(MAX_FRAME_LEN - 2, MAX_FRAME_LEN + 300).map(lambda n: b"\x07" * n),
    st.binary(max_size=60),
    st.just(b"\x00"),
)


# -- bundles, config, recordings ------------------------------------------------------------
# A tar member: (name, kind, payload). Kinds cover what an attacker can put in a tar.
member_names = st.one_of(
    st.sampled_from([
        "manifest.json", "bundle/manifest.json", "model_fp32.onnx", "../evil", "/abs/evil",
        "bundle/../../evil", "a/b/../../../evil", "./manifest.json", "", ".", "..",
        "bundle", "dir/", "x" * 200,
    ]),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20),
)
member_kinds = st.sampled_from(
    [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
     tarfile.CHRTYPE, tarfile.FIFOTYPE]
)


# every key of the daemon's config file with its default (sections as nested dicts)
CONFIG_DEFAULTS: Final = asdict(DaemonConfig())
_toml_scalars = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=10)
)
toml_values = st.recursive(
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
        key = draw(st.sampled_from(sorted(CONFIG_DEFAULTS)))
        default = CONFIG_DEFAULTS[key]
        if isinstance(default, dict) and default and draw(st.booleans()):
            sub = draw(st.sampled_from(sorted(default)))
            doc.setdefault(key, {})
            if isinstance(doc[key], dict):
                doc[key][sub] = draw(toml_values)
        else:
            doc[key] = draw(toml_values)
    if draw(st.integers(0, 9)) == 0:
        doc[draw(st.text(max_size=6))] = draw(toml_values)
    return doc


npz_arrays = hnp.arrays(
    st.sampled_from([np.float32, np.float16, np.int8, np.int64, np.bool_, np.uint8]),
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
)


_pickle_leaves = st.one_of(
    st.none(), st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=6),
    st.binary(max_size=6), npz_arrays,
)
pickle_values = st.recursive(
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
    d = tiny_wesad(draw(st.sampled_from([np.float32, np.float64, np.int16])))
    groups = [d, d["signal"], d["signal"]["chest"], d["signal"]["wrist"]]
    for _ in range(draw(st.integers(1, 3))):
        g = draw(st.sampled_from(groups))
        if not g:
            continue
        key = draw(st.sampled_from(sorted(g)))
        if draw(st.booleans()):
            g[key] = draw(pickle_values)
        else:
            del g[key]
    return d
