"""Recorded wearable sessions: the WESAD on-disk format and our own compact ``.npz``.

numpy + the standard library only: the hub's ``replay`` device and the simulator read
recordings with this module, and training's WESAD loader (``train/data.py``) is built on it.

API (stable; other modules code against it):

- ``Beats(t_s, rr_s)``: beat-to-beat intervals (s), each stamped with the recording time of
  the beat that ends it (strictly increasing); ``crop``; ``duration_s``. Not a ``Signal``:
  beats come when the heart beats, not at a rate.
- ``Signal(rate_hz, values, unit, channels)``: ``values`` (N, C) float32 in ``unit``
  (after conversion: WESAD wrist ACC /64 -> g); ``timestamps(t0=0.0)`` -> (N,) float64.
  Integer arrays (the label codes) keep their integer dtype; everything else is float32.
  ``crop(start_s, end_s)``; ``n_samples``; ``duration_s``.
- ``Recording(subject, signals: dict[str, Signal], labels: Signal | None, meta: dict)``:
  ``signals`` keyed by modality name as in ``core.contract`` (wrist: bvp, eda, temp, acc;
  chest: ecg, resp, emg, c_eda, c_temp, c_acc); ``labels`` the raw WESAD codes at 700 Hz
  (0 undefined, 1 baseline, 2 stress, 3 amusement, 4 meditation, 5-7 ignore), shape (N, 1);
  ``beats`` (optional) named beat series (``rr``: RR intervals from ECG R peaks, say).
  ``duration_s``; ``streams(names, t0=0.0) -> dict[str, (timestamps, values)]`` for
  ``core.signal`` (a missing name raises ``RecordingError``); ``label_codes()`` -> (N,)
  int codes; ``wrist_only()``; ``crop(start_s, end_s)``. ``meta["path"]`` is the source file.
- ``load_wesad_subject(path) -> Recording``: reads ``S{n}.pkl`` (Python-2 latin-1 pickle)
  through a restricted unpickler that only admits numpy arrays and builtin containers (a
  pickle from the internet cannot run code on the hub). A missing/malformed file raises
  ``RecordingError`` naming the file and what is wrong (missing key, wrong shape, ...).
- ``load_recording(path)``: ``.pkl`` (WESAD) or ``.npz`` (ours); ``save_recording(rec, path,
  *, dtype="float32"|"float16", compress=True)`` writes the compact ``.npz`` (used for the
  demo recording shipped with the demo bundle). float16 halves the file for storage; values
  are always float32 again after loading.

Compact ``.npz`` layout (read with ``allow_pickle=False``: no code can ride along):

    header      0-d str array: JSON {"format": "wearable-edge-recording", "version": 1,
                "subject", "meta", "signals": {name: {"rate_hz", "unit", "channels"}},
                "labels": {"rate_hz", "unit", "channels"} | null}
    sig_<name>  (N, C) float32 or float16
    labels      (N, 1) int8 (when the recording has labels)
    beats_<name>_t, beats_<name>_rr   (M,) float64 each (header "beats": {name: {"unit"}})
"""

from __future__ import annotations

import io
import json
import math
import pickle
import pickletools
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.errors import InputTooLargeError, RecordingError
from core.npz import check_npz_size

__all__ = [
    "CHEST_KEYS",
    "CHEST_RATE_HZ",
    "LABEL_NAMES",
    "WRIST_KEYS",
    "WRIST_MODALITIES",
    "Beats",
    "Recording",
    "Signal",
    "load_recording",
    "load_wesad_subject",
    "save_recording",
]

# RespiBAN samples every chest channel (and WESAD stores the labels) at 700 Hz.
CHEST_RATE_HZ: Final = 700.0
# Empatica E4 stores ACC in units of 1/64 g (its +-2 g range over a signed byte).
E4_ACC_PER_G: Final = 64.0

# WESAD key -> (our modality name, rate Hz, unit after conversion, channel names, divisor).
# The unit strings match core.contract.WESAD_WRIST_MODALITIES / WESAD_CHEST_MODALITIES.
WRIST_KEYS: Final[dict[str, tuple[str, float, str, tuple[str, ...], float]]] = {
    "ACC": ("acc", 32.0, "g", ("x", "y", "z"), E4_ACC_PER_G),
    "BVP": ("bvp", 64.0, "a.u.", ("bvp",), 1.0),
    "EDA": ("eda", 4.0, "uS", ("eda",), 1.0),
    "TEMP": ("temp", 4.0, "degC", ("temp",), 1.0),
}
CHEST_KEYS: Final[dict[str, tuple[str, float, str, tuple[str, ...], float]]] = {
    "ACC": ("c_acc", CHEST_RATE_HZ, "g", ("x", "y", "z"), 1.0),  # RespiBAN ACC is already in g
    "ECG": ("ecg", CHEST_RATE_HZ, "mV", ("ecg",), 1.0),
    "EMG": ("emg", CHEST_RATE_HZ, "mV", ("emg",), 1.0),
    "EDA": ("c_eda", CHEST_RATE_HZ, "uS", ("eda",), 1.0),
    "Temp": ("c_temp", CHEST_RATE_HZ, "degC", ("temp",), 1.0),
    "Resp": ("resp", CHEST_RATE_HZ, "%", ("resp",), 1.0),
}
WRIST_MODALITIES: Final = tuple(v[0] for v in WRIST_KEYS.values())

# WESAD label codes (study protocol); 5-7 are questionnaire periods to ignore.
LABEL_NAMES: Final = {
    0: "undefined",
    1: "baseline",
    2: "stress",
    3: "amusement",
    4: "meditation",
    5: "ignore",
    6: "ignore",
    7: "ignore",
}

# Wrist and chest devices were synchronised by the WESAD authors; allow this much length
# mismatch (seconds, or fraction of the duration) before calling a file malformed, because
# the E4 rounds its stream ends to whole packets.
MAX_DEVICE_MISMATCH_S: Final = 5.0
MAX_DEVICE_MISMATCH_FRAC: Final = 0.01

# A WESAD pickle is a few hundred opcodes (a dozen arrays, each one opcode of data). A file
# with far more is not a recording, and its nesting could overflow the C stack while the
# unpickler hashes a dict key (a crash, not an exception), so it is refused before loading.
MAX_PICKLE_OPCODES: Final = 10_000

NPZ_FORMAT: Final = "wearable-edge-recording"
NPZ_VERSION: Final = 1  # bump when the layout changes; the loader refuses unknown versions


# -------------------------------------------------------------------------------------------
# data model
# -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signal:
    """One uniformly sampled stream: ``values`` (N, C) at ``rate_hz`` in ``unit``."""

    rate_hz: float
    values: np.ndarray  # (N, C) float32 (integer dtypes, e.g. label codes, are kept)
    unit: str
    channels: tuple[str, ...] = ("value",)

    def __post_init__(self) -> None:
        v = np.asarray(self.values)
        if v.ndim == 1:
            v = v[:, None]
        if not np.issubdtype(v.dtype, np.integer):
            v = v.astype(np.float32, copy=False)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "rate_hz", float(self.rate_hz))
        if v.ndim != 2:
            raise ValueError(f"values must be (N, C), got shape {v.shape}")
        if v.shape[1] != len(self.channels):
            raise ValueError(f"{v.shape[1]} value columns but channels {self.channels}")
        if not (self.rate_hz > 0 and math.isfinite(self.rate_hz)):
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")

    @property
    def n_samples(self) -> int:
        return int(self.values.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate_hz

    def timestamps(self, t0: float = 0.0) -> np.ndarray:
        """(N,) float64 seconds of each sample, the first at ``t0``."""
        return t0 + np.arange(self.n_samples, dtype=np.float64) / self.rate_hz

    def crop(self, start_s: float, end_s: float) -> Signal:
        """Samples whose time lies in ``[start_s, end_s)`` (recording time, t0 = 0)."""
        i0 = max(0, math.ceil(start_s * self.rate_hz - 1e-9))
        i1 = min(self.n_samples, math.ceil(end_s * self.rate_hz - 1e-9))
        return replace(self, values=self.values[i0:max(i0, i1)])


@dataclass(frozen=True)
class Beats:
    """Beat-to-beat intervals ``rr_s`` (M,) s, each ending at recording time ``t_s`` (M,)."""

    t_s: np.ndarray
    rr_s: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.t_s, dtype=np.float64).reshape(-1)
        rr = np.asarray(self.rr_s, dtype=np.float64).reshape(-1)
        if t.shape != rr.shape:
            raise ValueError(f"t_s {t.shape} and rr_s {rr.shape} differ in length")
        if not (np.isfinite(t).all() and np.isfinite(rr).all() and (rr > 0).all()):
            raise ValueError("beat times and intervals must be finite, intervals positive")
        if t.size > 1 and not (np.diff(t) > 0).all():
            raise ValueError("beat times must be strictly increasing")
        object.__setattr__(self, "t_s", t)
        object.__setattr__(self, "rr_s", rr)

    @property
    def n_beats(self) -> int:
        return int(self.t_s.size)

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1]) if self.t_s.size else 0.0

    def crop(self, start_s: float, end_s: float) -> Beats:
        """The intervals whose ending beat lies in ``[start_s, end_s)``."""
        keep = (self.t_s >= start_s) & (self.t_s < end_s)
        return Beats(self.t_s[keep], self.rr_s[keep])


@dataclass
class Recording:
    """One person's session: named signals (different rates), optional 700 Hz labels and
    optional beat series."""

    subject: str
    signals: dict[str, Signal]
    labels: Signal | None = None  # (N, 1) integer WESAD codes
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable provenance
    beats: dict[str, Beats] = field(default_factory=dict)  # "rr" -> RR intervals

    @property
    def duration_s(self) -> float:
        durations = [s.duration_s for s in self.signals.values()]
        if self.labels is not None:
            durations.append(self.labels.duration_s)
        durations += [b.duration_s for b in self.beats.values()]
        return max(durations, default=0.0)

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(self.signals)

    def _where(self) -> str:
        return str(self.meta.get("path", f"recording of {self.subject}"))

    def streams(
        self, names: Iterable[str] | None = None, t0: float = 0.0
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{name: (timestamps (N,) float64, values (N, C) float32)}`` for ``core.signal``.

        ``names`` defaults to every signal; a name the recording lacks raises
        :class:`RecordingError` (a model asking for chest ECG from a wrist-only file).
        """
        out = {}
        for name in self.signals if names is None else names:
            sig = self.signals.get(name)
            if sig is None:
                raise RecordingError(
                    f"has no signal {name!r} (available: {sorted(self.signals)})",
                    path=self._where(),
                )
            out[name] = (sig.timestamps(t0), sig.values)
        return out

    def label_codes(self) -> np.ndarray:
        """(N,) integer WESAD codes at ``labels.rate_hz``; raises when unlabelled."""
        if self.labels is None:
            raise RecordingError("has no labels", path=self._where())
        return self.labels.values[:, 0]

    def wrist_only(self, *, keep_labels: bool = True) -> Recording:
        """The signals a wrist wearable has (what the hub's replay device may stream)."""
        return Recording(
            subject=self.subject,
            signals={k: v for k, v in self.signals.items() if k in WRIST_MODALITIES},
            labels=self.labels if keep_labels else None,
            meta={**self.meta, "wrist_only": True},
            beats=dict(self.beats),  # a watch has beats too; they play only when asked for
        )

    def crop(self, start_s: float, end_s: float) -> Recording:
        """Every signal (and the labels) restricted to ``[start_s, end_s)``."""
        return Recording(
            subject=self.subject,
            signals={k: v.crop(start_s, end_s) for k, v in self.signals.items()},
            labels=None if self.labels is None else self.labels.crop(start_s, end_s),
            meta={**self.meta, "cropped_s": [float(start_s), float(end_s)]},
            beats={k: b.crop(start_s, end_s) for k, b in self.beats.items()},
        )


# -------------------------------------------------------------------------------------------
# restricted unpickling
# -------------------------------------------------------------------------------------------
def _latin1_encode(obj: str, encoding: str = "latin1") -> bytes:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1").
    if encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} refused")
    return obj.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    # Take the reconstruction functions from numpy's own reducers so the same code works on
    # numpy 1.x (numpy.core) and 2.x (numpy._core) without importing deprecated aliases.
    reconstruct: Any = np.zeros(1).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    scalar = np.float64(0).__reduce__()[0]
    ndarray_token = object()  # numpy.ndarray as an argument, never callable by the pickle

    def reconstruct_empty(subtype: Any, shape: Any, dtype: Any) -> Any:
        # numpy pickles an array as an *empty* one (shape (0,)) plus its bytes; a pickle asking
        # for a big uninitialised array, or calling ndarray itself, wants memory it does not carry
        if subtype is not ndarray_token or shape != (0,):
            raise pickle.UnpicklingError("an array must carry its data (refused _reconstruct)")
        return reconstruct(np.ndarray, shape, dtype)

    def no_size_arg(tp: type) -> Any:
        def make(*args: Any) -> Any:
            if args and isinstance(args[0], int):  # bytes(10**10): gigabytes from a few bytes
                raise pickle.UnpicklingError(f"{tp.__name__}(size) is refused")
            return tp(*args)

        return make

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): ndarray_token,
        ("numpy", "dtype"): np.dtype,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct_empty
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    for mod in ("builtins", "__builtin__"):  # Python 3 / Python 2 names
        for name, obj in (
            ("dict", dict), ("list", list), ("tuple", tuple), ("set", set),
            ("frozenset", frozenset), ("bytearray", no_size_arg(bytearray)),
            ("bytes", no_size_arg(bytes)),
            ("str", str), ("int", int), ("float", float), ("complex", complex),
            ("bool", bool), ("unicode", str), ("long", int),
        ):
            allowed[(mod, name)] = obj
    allowed[("_codecs", "encode")] = _latin1_encode
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dtypes, scalars and builtin containers; refuses everything else.

    A WESAD pickle holds only dicts of numpy arrays, so anything else (``os.system``,
    ``builtins.eval``, ``subprocess.Popen`` ...) is an attack or a different file.
    """

    _ALLOWED: Final = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a recording pickle"
            ) from None


def _restricted_load(raw: bytes) -> Any:
    for i, _ in enumerate(pickletools.genops(raw)):  # ValueError if not a pickle at all
        if i >= MAX_PICKLE_OPCODES:
            raise pickle.UnpicklingError(f"more than {MAX_PICKLE_OPCODES} opcodes: not a recording")
    return _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()


# -------------------------------------------------------------------------------------------
# WESAD
# -------------------------------------------------------------------------------------------
def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("latin1")
    # str() of a deeply nested container raises RecursionError; names are strings or numbers
    return str(v) if isinstance(v, str | int | float | np.generic) else type(v).__name__


def _get(d: Any, key: str, where: str, path: str) -> Any:
    if not isinstance(d, Mapping):
        raise RecordingError(f"{where} is a {type(d).__name__}, expected a dict", path=path)
    if key in d:
        return d[key]
    bkey = key.encode("latin1")  # keys may be bytes when pickled by Python 2 without latin-1
    if bkey in d:
        return d[bkey]
    raise RecordingError(
        f"missing key {where}/{key} (present: {sorted(_text(k) for k in d)})", path=path
    )


def _as_columns(arr: Any, key: str, n_channels: int, path: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise RecordingError(f"{key} is a {type(arr).__name__}, expected a numpy array", path=path)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise RecordingError(f"{key} has non-numeric dtype {arr.dtype}", path=path)
    a = arr[:, None] if arr.ndim == 1 else arr
    if a.ndim != 2 or a.shape[1] != n_channels:
        raise RecordingError(
            f"{key} has shape {arr.shape}, expected (N, {n_channels})"
            + (" or (N,)" if n_channels == 1 else ""),
            path=path,
        )
    if a.shape[0] == 0:
        raise RecordingError(f"{key} is empty", path=path)
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise RecordingError(f"{key} contains NaN or infinite values", path=path)
    return a


def load_wesad_subject(path: str | Path) -> Recording:
    """Read one WESAD ``S{n}.pkl`` into a :class:`Recording` (units converted, labels kept).

    Raises :class:`RecordingError` naming ``path`` and the problem: missing file, not a
    pickle, a refused global, a missing key such as ``signal/wrist/BVP``, a wrong shape, a
    label length that differs from the chest signals, wrist and chest durations that differ.
    """
    p = Path(path)
    sp = str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise RecordingError("file not found", path=sp) from None
    except OSError as e:
        raise RecordingError(f"cannot read: {e.strerror or e}", path=sp) from e
    try:
        data = _restricted_load(raw)
    except pickle.UnpicklingError as e:
        raise RecordingError(f"refused or corrupt pickle: {e}", path=sp) from e
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, OverflowError, MemoryError, RecursionError) as e:
        raise RecordingError(f"not a readable pickle: {type(e).__name__}: {e}", path=sp) from e

    signal = _get(data, "signal", "", sp)
    wrist = _get(signal, "wrist", "signal", sp)
    chest = _get(signal, "chest", "signal", sp)
    label_raw = _get(data, "label", "", sp)
    subject = _text(_get(data, "subject", "", sp))

    signals: dict[str, Signal] = {}
    for group, keys, where in ((wrist, WRIST_KEYS, "signal/wrist"),
                               (chest, CHEST_KEYS, "signal/chest")):
        for key, (name, rate, unit, channels, divisor) in keys.items():
            a = _as_columns(_get(group, key, where, sp), f"{where}/{key}", len(channels), sp)
            values = a.astype(np.float32)
            if divisor != 1.0:
                values /= np.float32(divisor)
            signals[name] = Signal(rate, values, unit, channels)

    lab = np.asarray(label_raw) if isinstance(label_raw, np.ndarray) else None
    if lab is None:
        raise RecordingError(
            f"label is a {type(label_raw).__name__}, expected a numpy array", path=sp
        )
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim != 1:
        raise RecordingError(f"label has shape {lab.shape}, expected (N,)", path=sp)
    if not np.issubdtype(lab.dtype, np.number):
        raise RecordingError(f"label has non-numeric dtype {lab.dtype}", path=sp)
    if np.issubdtype(lab.dtype, np.floating) and (
        not np.isfinite(lab).all() or (lab != np.round(lab)).any()
    ):
        raise RecordingError("label holds non-integer codes", path=sp)
    codes = lab.astype(np.int64)
    if codes.size and (codes.min() < 0 or codes.max() > 7):
        raise RecordingError(
            f"label codes outside 0..7 (min {codes.min()}, max {codes.max()})", path=sp
        )
    n_chest = {k: signals[v[0]].n_samples for k, v in CHEST_KEYS.items()}
    if len(set(n_chest.values())) != 1:
        raise RecordingError(f"chest signals differ in length: {n_chest}", path=sp)
    n = next(iter(n_chest.values()))
    if codes.shape[0] != n:
        raise RecordingError(
            f"label length mismatch: {codes.shape[0]} labels but {n} chest samples "
            f"(both should be at {CHEST_RATE_HZ:g} Hz)",
            path=sp,
        )
    chest_s = n / CHEST_RATE_HZ
    for name in WRIST_MODALITIES:
        d = signals[name].duration_s
        if abs(d - chest_s) > max(MAX_DEVICE_MISMATCH_S, MAX_DEVICE_MISMATCH_FRAC * chest_s):
            raise RecordingError(
                f"wrist {name} lasts {d:.1f} s but chest signals last {chest_s:.1f} s "
                "(wrong sampling rate or truncated file?)",
                path=sp,
            )
    labels = Signal(CHEST_RATE_HZ, codes.astype(np.int8)[:, None], "code", ("label",))
    return Recording(subject, signals, labels, {"path": sp, "format": "wesad"})


# -------------------------------------------------------------------------------------------
# compact .npz
# -------------------------------------------------------------------------------------------
def _sig_header(s: Signal) -> dict[str, Any]:
    return {"rate_hz": s.rate_hz, "unit": s.unit, "channels": list(s.channels)}


def save_recording(
    rec: Recording, path: str | Path, *, dtype: str = "float32", compress: bool = True
) -> Path:
    """Write ``rec`` as our compact ``.npz``; ``dtype="float16"`` halves it for storage."""
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
    p = Path(path)
    header = {
        "format": NPZ_FORMAT,
        "version": NPZ_VERSION,
        "subject": rec.subject,
        "meta": {k: v for k, v in rec.meta.items() if k != "path"},
        "signals": {k: _sig_header(s) for k, s in rec.signals.items()},
        "labels": None if rec.labels is None else _sig_header(rec.labels),
        "beats": {k: {"unit": "s"} for k in rec.beats},
    }
    arrays: dict[str, np.ndarray] = {"header": np.array(json.dumps(header, default=str))}
    for k, s in rec.signals.items():
        arrays[f"sig_{k}"] = s.values.astype(dtype)
    if rec.labels is not None:
        arrays["labels"] = rec.labels.values.astype(np.int8)
    for k, b in rec.beats.items():  # float64: beat times must stay exact to the ms over hours
        arrays[f"beats_{k}_t"] = b.t_s
        arrays[f"beats_{k}_rr"] = b.rr_s
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("wb") as f:  # a file object keeps numpy from appending a second ".npz"
        if compress:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
        else:
            np.savez(f, **arrays)  # type: ignore[arg-type]
    return p


def _load_npz(p: Path) -> Recording:
    sp = str(p)
    try:
        check_npz_size(p)  # before np.load inflates anything
    except InputTooLargeError as e:
        raise RecordingError(str(e).removeprefix(f"{sp}: "), path=sp) from e
    try:
        # our own file object: np.load leaks the one it opens when the zip is corrupt
        with p.open("rb") as f, np.load(f, allow_pickle=False) as z:
            files = set(z.files)
            if "header" not in files:
                raise RecordingError("not a wearable-edge recording (no 'header')", path=sp)
            header = json.loads(str(z["header"][()]))
            if not isinstance(header, dict):
                raise RecordingError("header is not a JSON object", path=sp)
            if header.get("format") != NPZ_FORMAT:
                raise RecordingError(f"unknown format {header.get('format')!r}", path=sp)
            if header.get("version") != NPZ_VERSION:
                raise RecordingError(
                    f"recording version {header.get('version')} is not supported "
                    f"(this reader knows {NPZ_VERSION})",
                    path=sp,
                )
            signals = {}
            for name, h in header["signals"].items():
                if f"sig_{name}" not in files:
                    raise RecordingError(f"missing array sig_{name}", path=sp)
                signals[name] = Signal(
                    float(h["rate_hz"]), z[f"sig_{name}"].astype(np.float32),
                    str(h["unit"]), tuple(h["channels"]),
                )
            labels = None
            if header.get("labels") is not None:
                if "labels" not in files:
                    raise RecordingError("header declares labels but no 'labels' array", path=sp)
                h = header["labels"]
                labels = Signal(float(h["rate_hz"]), z["labels"], str(h["unit"]),
                                tuple(h["channels"]))
            beats = {}
            for name in header.get("beats") or {}:
                keys = (f"beats_{name}_t", f"beats_{name}_rr")
                if not set(keys) <= files:
                    raise RecordingError(f"header declares beats {name!r} but no arrays {keys}",
                                         path=sp)
                beats[str(name)] = Beats(z[keys[0]], z[keys[1]])
            meta = dict(header.get("meta") or {})
            subject = str(header.get("subject", ""))
    except FileNotFoundError:
        raise RecordingError("file not found", path=sp) from None
    except RecordingError:
        raise
    # ValueError also covers a refused object array (allow_pickle=False) and bad shapes;
    # MemoryError a shape no file could hold; RuntimeError JSON nested past the recursion
    # limit, and zipfile's encrypted or unsupported members (NotImplementedError)
    except (OSError, ValueError, KeyError, TypeError, EOFError, AttributeError, OverflowError,
            MemoryError, RuntimeError, zipfile.BadZipFile) as e:
        raise RecordingError(f"malformed recording: {type(e).__name__}: {e}", path=sp) from e
    meta["path"] = sp
    return Recording(subject, signals, labels, meta, beats)


def load_recording(path: str | Path) -> Recording:
    """``.pkl`` (WESAD subject file) or ``.npz`` (our compact form) -> :class:`Recording`."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".pkl":
        return load_wesad_subject(p)
    if suffix == ".npz":
        return _load_npz(p)
    raise RecordingError(f"unknown recording type {suffix!r} (expected .pkl or .npz)", path=str(p))

