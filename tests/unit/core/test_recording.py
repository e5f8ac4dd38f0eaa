"""core.recording: the WESAD pickle reader (restricted unpickler) and our compact .npz."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import (
    RecordingError,
    WearableEdgeError,
)
from core.recording import (
    Recording,
    Signal,
    load_recording,
    load_wesad_subject,
    save_recording,
)
from tests.fakes.inputs import (
    NPZ_HEADER,
    npz_bytes,
    recording_npz,
    tiny_wesad,
)
from tests.fakes.recordings import malicious_pickle, wesad_dict, write_wesad_pickle
from tests.strategies import (
    FILE_PARSER,
    byte_mutated,
    examples,
    json_values,
    mutated,
    npz_arrays,
    pickle_values,
    wesad_like,
)

SEGS = ((0, 4), (1, 10), (2, 6))  # 20 s: enough for shape and unit checks


def test_reads_wesad_layout_and_converts_units(tmp_path: Path) -> None:
    data = wesad_dict(SEGS, subject="S7")
    path = write_wesad_pickle(tmp_path, data, subject="S7")
    rec = load_wesad_subject(path)

    assert rec.subject == "S7"
    assert rec.meta["path"] == str(path)
    assert set(rec.signals) == {"bvp", "eda", "temp", "acc", "ecg", "resp", "emg", "c_eda",
                                "c_temp", "c_acc"}
    rates = {k: s.rate_hz for k, s in rec.signals.items()}
    assert rates == {"bvp": 64.0, "eda": 4.0, "temp": 4.0, "acc": 32.0, "ecg": 700.0,
                     "resp": 700.0, "emg": 700.0, "c_eda": 700.0, "c_temp": 700.0,
                     "c_acc": 700.0}
    # wrist ACC is stored in 1/64 g; chest ACC is already in g
    np.testing.assert_allclose(rec.signals["acc"].values, data["signal"]["wrist"]["ACC"] / 64.0,
                               rtol=1e-6)
    np.testing.assert_allclose(rec.signals["c_acc"].values, data["signal"]["chest"]["ACC"],
                               rtol=1e-6)
    assert rec.signals["acc"].unit == "g" and rec.signals["eda"].unit == "uS"
    assert rec.signals["acc"].channels == ("x", "y", "z")
    for s in rec.signals.values():
        assert s.values.dtype == np.float32 and s.values.ndim == 2
    assert rec.signals["ecg"].values.shape == (20 * 700, 1)
    assert rec.signals["bvp"].values.shape == (20 * 64, 1)
    codes = rec.label_codes()
    assert codes.shape == (20 * 700,)
    assert codes[0] == 0 and codes[5 * 700] == 1 and codes[-1] == 2
    assert rec.duration_s == pytest.approx(20.0)


def test_streams_give_timestamps_for_preprocess(tmp_path: Path) -> None:
    rec = load_wesad_subject(write_wesad_pickle(tmp_path, wesad_dict(SEGS)))
    streams = rec.streams(["bvp", "eda"], t0=100.0)
    t, v = streams["bvp"]
    assert t.dtype == np.float64 and t[0] == 100.0
    assert t[1] - t[0] == pytest.approx(1 / 64)
    assert v.shape == (t.shape[0], 1)
    with pytest.raises(RecordingError, match="no signal 'ppg'"):
        rec.streams(["ppg"])


def test_wrist_only_and_crop(tmp_path: Path) -> None:
    rec = load_wesad_subject(write_wesad_pickle(tmp_path, wesad_dict(SEGS)))
    w = rec.wrist_only()
    assert set(w.signals) == {"bvp", "eda", "temp", "acc"}
    assert w.labels is not None
    c = rec.crop(4.0, 14.0)
    assert c.signals["bvp"].n_samples == 10 * 64
    assert c.signals["eda"].n_samples == 40
    assert (c.label_codes() == 1).all()  # the baseline segment exactly


def test_python2_module_names_are_accepted(tmp_path: Path) -> None:
    # The real WESAD files were pickled by Python 2 / numpy 1 (numpy.core.multiarray);
    # numpy 2 writes numpy._core.multiarray. Both must load.
    raw = pickle.dumps(wesad_dict(SEGS), protocol=2)
    old = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    p = tmp_path / "S2.pkl"
    p.write_bytes(old)
    assert load_wesad_subject(p).signals["bvp"].n_samples == 20 * 64


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_protocols(tmp_path: Path, protocol: int) -> None:
    p = write_wesad_pickle(tmp_path, wesad_dict(SEGS, dtype=np.float32), protocol=protocol)
    assert load_wesad_subject(p).signals["ecg"].n_samples == 20 * 700


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    p = tmp_path / "S2.pkl"
    p.write_bytes(malicious_pickle(f"touch {marker}", protocol=protocol))
    with pytest.raises(RecordingError, match=r"posix\.system|os\.system|nt\.system") as e:
        load_wesad_subject(p)
    assert e.value.path == str(p)
    assert not marker.exists()


def test_other_dangerous_globals_are_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (eval, ("1+1",))

    p = tmp_path / "S2.pkl"
    p.write_bytes(pickle.dumps({"subject": "S2", "signal": Evil(), "label": None}, protocol=2))
    with pytest.raises(RecordingError, match=r"(__builtin__|builtins)\.eval is not allowed"):
        load_wesad_subject(p)


def _assert_error(path: Path, *needles: str) -> None:
    with pytest.raises(RecordingError) as e:
        load_wesad_subject(path)
    msg = str(e.value)
    assert str(path) in msg and e.value.path == str(path)
    for n in needles:
        assert n in msg, msg
    assert isinstance(e.value, WearableEdgeError)


def test_missing_file(tmp_path: Path) -> None:
    _assert_error(tmp_path / "S9" / "S9.pkl", "file not found")


def test_not_a_pickle(tmp_path: Path) -> None:
    p = tmp_path / "S2.pkl"
    p.write_bytes(b"this is not a pickle at all")
    _assert_error(p, "pickle")
    p.write_bytes(pickle.dumps(wesad_dict(SEGS), protocol=2)[:5000])  # truncated download
    _assert_error(p, "pickle")


def test_missing_key_is_named(tmp_path: Path) -> None:
    data = wesad_dict(SEGS)
    del data["signal"]["wrist"]["BVP"]
    _assert_error(write_wesad_pickle(tmp_path, data), "missing key signal/wrist/BVP")
    data = wesad_dict(SEGS)
    del data["label"]
    _assert_error(write_wesad_pickle(tmp_path, data), "missing key /label")
    data = wesad_dict(SEGS)
    del data["signal"]["chest"]
    _assert_error(write_wesad_pickle(tmp_path, data), "missing key signal/chest")


def test_wrong_shape_is_named(tmp_path: Path) -> None:
    data = wesad_dict(SEGS)
    data["signal"]["wrist"]["ACC"] = data["signal"]["wrist"]["ACC"][:, :2]
    _assert_error(write_wesad_pickle(tmp_path, data), "signal/wrist/ACC", "shape", "(N, 3)")
    data = wesad_dict(SEGS)
    data["signal"]["chest"]["ECG"] = [1.0, 2.0]
    _assert_error(write_wesad_pickle(tmp_path, data), "signal/chest/ECG", "list")


def test_label_length_mismatch(tmp_path: Path) -> None:
    data = wesad_dict(SEGS)
    data["label"] = data["label"][:-700]
    _assert_error(write_wesad_pickle(tmp_path, data), "label length mismatch")


def test_bad_label_codes_and_nan(tmp_path: Path) -> None:
    data = wesad_dict(SEGS)
    data["label"] = data["label"] + 10
    _assert_error(write_wesad_pickle(tmp_path, data), "label codes outside 0..7")
    data = wesad_dict(SEGS)
    data["signal"]["wrist"]["EDA"][3, 0] = np.nan
    _assert_error(write_wesad_pickle(tmp_path, data), "signal/wrist/EDA", "NaN")


def test_wrist_duration_mismatch(tmp_path: Path) -> None:
    data = wesad_dict(((1, 60),))
    data["signal"]["wrist"]["BVP"] = data["signal"]["wrist"]["BVP"][: 64 * 30]  # a 32 Hz file?
    _assert_error(write_wesad_pickle(tmp_path, data), "wrist bvp lasts 30.0 s")


# -- compact .npz ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,rtol", [("float32", 0.0), ("float16", 1e-3)])
def test_npz_roundtrip(tmp_path: Path, dtype: str, rtol: float) -> None:
    rec = load_wesad_subject(write_wesad_pickle(tmp_path, wesad_dict(SEGS)))
    rec.meta["note"] = "demo"
    out = save_recording(rec.wrist_only(), tmp_path / "demo.npz", dtype=dtype)
    back = load_recording(out)
    assert back.subject == rec.subject
    assert back.meta["note"] == "demo" and back.meta["wrist_only"] is True
    assert back.meta["path"] == str(out)
    assert set(back.signals) == {"bvp", "eda", "temp", "acc"}
    for k, s in back.signals.items():
        orig = rec.signals[k]
        assert (s.rate_hz, s.unit, s.channels) == (orig.rate_hz, orig.unit, orig.channels)
        assert s.values.dtype == np.float32
        np.testing.assert_allclose(s.values, orig.values, rtol=rtol, atol=rtol * 0.1)
    assert back.labels is not None
    np.testing.assert_array_equal(back.label_codes(), rec.label_codes())
    with np.load(out) as z:
        assert z["sig_bvp"].dtype == np.dtype(dtype)


def test_npz_without_labels(tmp_path: Path) -> None:
    rec = Recording("P1", {"eda": Signal(4.0, np.ones(40), "uS", ("eda",))})
    back = load_recording(save_recording(rec, tmp_path / "x.npz", compress=False))
    assert back.labels is None and back.signals["eda"].n_samples == 40
    with pytest.raises(RecordingError, match="has no labels"):
        back.label_codes()


def test_npz_errors(tmp_path: Path) -> None:
    p = tmp_path / "foreign.npz"
    np.savez(p, X=np.zeros(3))
    with pytest.raises(RecordingError, match="no 'header'") as e:
        load_recording(p)
    assert e.value.path == str(p)
    q = tmp_path / "objects.npz"
    np.savez(q, header=np.array([{"a": 1}], dtype=object))
    with pytest.raises(RecordingError, match="malformed"):
        load_recording(q)
    with pytest.raises(RecordingError, match="file not found"):
        load_recording(tmp_path / "absent.npz")
    with pytest.raises(RecordingError, match=r"unknown recording type '\.csv'"):
        load_recording(tmp_path / "x.csv")


def test_load_recording_dispatches_pkl(tmp_path: Path) -> None:
    p = write_wesad_pickle(tmp_path, wesad_dict(SEGS))
    assert load_recording(p).meta["format"] == "wesad"


def test_signal_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="channels"):
        Signal(4.0, np.zeros((5, 2)), "uS", ("eda",))
    with pytest.raises(ValueError, match="rate_hz"):
        Signal(0.0, np.zeros(5), "uS", ("eda",))


# -- malformed input ends in a typed error (property tests; regressions: test_regression_*) --
@examples(2 * FILE_PARSER)
@given(
    header=st.one_of(mutated(NPZ_HEADER), json_values),
    arrays=st.dictionaries(
        st.sampled_from(["sig_bvp", "sig_acc", "labels", "sig_x"]), npz_arrays, max_size=4
    ),
    header_kind=st.sampled_from(["json", "json", "number", "vector"]),
)
def test_load_recording_npz_raises_only_recording_errors(
    workdir: Path, header: Any, arrays: dict[str, np.ndarray], header_kind: str
) -> None:
    text = json.dumps(header)
    hdr = {"json": np.array(text), "number": np.array(3.0), "vector": np.array([text, text])}
    path = workdir / "rec.npz"
    path.write_bytes(npz_bytes({"header": hdr[header_kind], **arrays}))
    with contextlib.suppress(RecordingError):
        load_recording(path)


@examples(2 * FILE_PARSER)
@given(data=st.data())
def test_load_recording_npz_with_mutated_bytes(workdir: Path, data: st.DataObject) -> None:
    path = workdir / "mut.npz"
    path.write_bytes(data.draw(byte_mutated(recording_npz(), n_max=6)))
    with contextlib.suppress(RecordingError):
        load_recording(path)


@examples(2 * FILE_PARSER)
@given(
    obj=st.one_of(wesad_like(), pickle_values),
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
    return pickle.dumps(tiny_wesad(), protocol=2)


@examples(2 * FILE_PARSER)
@given(data=st.data())
def test_load_recording_pkl_with_mutated_bytes(
    workdir: Path, wesad_pickle: bytes, data: st.DataObject
) -> None:
    path = workdir / "S1.pkl"
    path.write_bytes(data.draw(byte_mutated(wesad_pickle, n_max=6)))
    with contextlib.suppress(RecordingError):
        load_recording(path)


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
    header: Any = json.loads(json.dumps(NPZ_HEADER))
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

    good = npz_bytes({"header": np.array(json.dumps(NPZ_HEADER)),
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
    d = tiny_wesad()
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
                         text=True, timeout=120, cwd=Path(__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("refused:")


def test_regression_real_wesad_pickles_still_load(tmp_path: Path) -> None:
    # the pickle limits above must not refuse what numpy itself writes, in any protocol
    for protocol in range(6):
        path = tmp_path / f"S{protocol}.pkl"
        path.write_bytes(pickle.dumps(tiny_wesad(np.float64), protocol=protocol))
        rec = load_recording(path)
        assert rec.signals["acc"].values.shape == (32, 3)
        assert rec.label_codes().shape == (700,)


@pytest.mark.parametrize("flag", [0x01, 0x20, 0x40], ids=["encrypted", "patched", "strong_crypto"])
def test_regression_npz_with_unsupported_zip_features(tmp_path: Path, flag: int) -> None:
    # zipfile raises RuntimeError (encrypted) or NotImplementedError for these flag bits
    good = npz_bytes({"header": np.array(json.dumps(NPZ_HEADER)),
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
