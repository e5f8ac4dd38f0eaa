"""Labelled windows for training: WESAD (real or synthetic) and the generic arrays format.

Both loaders return a :class:`WindowedDataset`: per-modality ``(N, C, T)`` float32 windows,
labels, subject groups, start times and the :class:`core.contract.InputContract` that
describes them, so a model trained on any subset of modalities carries its contract.

WESAD (``load_wesad``): every ``S*/S*.pkl`` under ``root`` is read with
:func:`core.recording.load_wesad_subject` and windowed by :mod:`core.signal` (the same
code the hub runs): per-subject calibration from the first ``calibration_s`` seconds of the
recording (``compute_calibration``, the hub's enrollment), then ``windows_from_streams``.
Nothing here resamples, filters or normalizes a signal itself. A window's label is the task
class covering >= 90 % of its 700 Hz label samples; other windows are dropped and counted in
``info``. With ``rr_source`` (the heart-rate model) each subject also gets the ``rr`` beats
modality: RR intervals found in its chest ECG or wrist BVP (:mod:`train.hr_data`, cached),
windowed by the same kernel path a strap's intervals take on the hub.

Arrays (:mod:`train.arrays_data`) and UEA/UCR ``.ts`` files (:mod:`train.ts_data`) become one
modality ``"signal"`` with a ``global`` normalization and *no* center/scale yet: the windows
are raw, and the fit pipeline must call
:func:`fit_global_normalization` with the training rows of each fold (never test rows), which
computes per-channel median / robust spread on those rows only, applies them, and writes them
into the contract that the exported model carries.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.contract import (
    HR_MODALITIES,
    WESAD_CHEST_MODALITIES,
    WESAD_WRIST_MODALITIES,
    InputContract,
    Normalization,
    wesad_normalization,
)
from core.errors import RecordingError, WearableEdgeError
from core.recording import CHEST_RATE_HZ, Recording, load_wesad_subject
from train.errors import DataError
from train.progress import ProgressEvent, ProgressFn, no_progress

__all__ = [
    "LABEL_PURITY",
    "TASK_CLASSES",
    "WindowedDataset",
    "fit_global_normalization",
    "load_wesad",
    "wesad_contract",
]

log = logging.getLogger(__name__)

# A window is labelled only when one class covers this fraction of it: 60 s windows at a
# 5 s hop would otherwise smear the response lag at condition boundaries into the labels.
LABEL_PURITY: Final = 0.9

# task -> (class names, {WESAD code: class index}); codes not listed are not in the task.
TASK_CLASSES: Final[dict[str, tuple[tuple[str, ...], dict[int, int]]]] = {
    "3class": (("baseline", "stress", "amusement"), {1: 0, 2: 1, 3: 2}),
    "binary": (("non_stress", "stress"), {1: 0, 3: 0, 2: 1}),
}

ALL_WESAD_MODALITIES: Final = WESAD_WRIST_MODALITIES + WESAD_CHEST_MODALITIES
# what a WESAD file gives with the help of train.hr_data: the beats of its ECG or BVP
DERIVED_WESAD_MODALITIES: Final = HR_MODALITIES

# Extra seconds of signal kept around each labelled stretch when cropping, beyond the
# window itself: more than any resampling margin core.signal may read.
CROP_MARGIN_S: Final = 10.0

# Robust global normalization: a channel whose spread is below this (in its unit) would
# blow up; the floor matches the idea of core.signal's calibration floor.
GLOBAL_SCALE_FLOOR: Final = 1e-6
# Per-channel robust statistics need not see every sample: a strided subset this large
# estimates a median to well under 1 % of the spread.
GLOBAL_STAT_SAMPLES: Final = 2_000_000


# -------------------------------------------------------------------------------------------
# the dataset
# -------------------------------------------------------------------------------------------
@dataclass
class WindowedDataset:
    """Windows of several modalities with labels, subject groups and their contract."""

    modalities: dict[str, np.ndarray]  # name -> (N, C, T) float32, normalized per contract
    contract: InputContract  # covers every modality above, in this order
    y: np.ndarray  # (N,) int64 class index into class_names
    groups: np.ndarray  # (N,) str subject id
    start: np.ndarray  # (N,) float64 seconds within the subject's recording
    split: np.ndarray | None = None  # (N,) str "train"/"test" when the data set fixes one
    class_names: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)  # counts, provenance

    def __post_init__(self) -> None:
        if not self.class_names:
            self.class_names = self.contract.class_names
        n = self.y.shape[0]
        for name, a in self.modalities.items():
            if a.shape[0] != n:
                raise ValueError(f"modality {name} has {a.shape[0]} windows, y has {n}")
        for label, a in (("groups", self.groups), ("start", self.start), ("split", self.split)):
            if a is not None and a.shape[0] != n:
                raise ValueError(f"{label} has {a.shape[0]} rows, y has {n}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(self.modalities)

    @property
    def subjects(self) -> list[str]:
        """Distinct subject ids in first-seen order."""
        return list(dict.fromkeys(self.groups.tolist()))

    def contract_for(self, names: Sequence[str]) -> InputContract:
        """The contract of a model that sees only ``names`` (in that order)."""
        return self.contract.subset(list(names))

    def pack(self, names: Sequence[str] | None = None) -> np.ndarray:
        """``(N, L)`` float32 in the layout of ``contract_for(names)`` (``InputContract.pack``)."""
        names = list(self.modality_names if names is None else names)
        c = self.contract_for(names)  # validates the names
        n = len(self)
        parts = [self.modalities[s.modality.name].reshape(n, -1) for s in c.layout()]
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

    def select(self, mask: np.ndarray | Sequence[int] | Sequence[bool]) -> WindowedDataset:
        """Rows chosen by a boolean mask or an index array (a new dataset, arrays copied)."""
        idx = np.asarray(mask)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self),):
                raise ValueError(f"mask shape {idx.shape} != ({len(self)},)")
            idx = np.flatnonzero(idx)
        return replace(
            self,
            modalities={k: v[idx] for k, v in self.modalities.items()},
            y=self.y[idx],
            groups=self.groups[idx],
            start=self.start[idx],
            split=None if self.split is None else self.split[idx],
            info=dict(self.info),
        )

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=len(self.class_names))
        return {c: int(k) for c, k in zip(self.class_names, counts, strict=True)}


# -------------------------------------------------------------------------------------------
# WESAD
# -------------------------------------------------------------------------------------------
def wesad_contract(
    task: str = "3class",
    *,
    window_s: float = 60.0,
    hop_s: float = 5.0,
    modalities: Sequence[str] | None = None,
    normalization: Normalization | None = None,
) -> InputContract:
    """The contract of WESAD windows: wrist then chest modalities (or ``modalities``, which
    may also name ``rr``, the beats :mod:`train.hr_data` finds)."""
    if task not in TASK_CLASSES:
        raise ValueError(f"task must be one of {tuple(TASK_CLASSES)}, got {task!r}")
    by_name = {m.name: m for m in ALL_WESAD_MODALITIES + DERIVED_WESAD_MODALITIES}
    names = ([m.name for m in ALL_WESAD_MODALITIES] if modalities is None
             else list(modalities))
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown WESAD modalities {unknown}; known: {list(by_name)}")
    return InputContract(
        modalities=tuple(by_name[n] for n in names),
        class_names=TASK_CLASSES[task][0],
        window_s=window_s,
        hop_s=hop_s,
        normalization=normalization or wesad_normalization(names),
    )


def _subject_files(root: Path) -> list[Path]:
    if not root.exists():
        raise DataError(str(root), "WESAD directory not found")
    if not root.is_dir():
        raise DataError(str(root), "expected a directory holding S*/S*.pkl")
    files = []
    for d in root.iterdir():
        if d.is_dir() and re.fullmatch(r"S\d+", d.name):
            f = d / f"{d.name}.pkl"
            if not f.exists():
                raise DataError(str(f), f"subject directory {d.name} has no {d.name}.pkl")
            files.append(f)
    if not files:
        raise DataError(str(root), "no subject files S*/S*.pkl found")
    return sorted(files, key=lambda p: int(p.parent.name[1:]))


def _crop_streams(
    rec: Recording, names: Sequence[str], t0: float, t1: float
) -> dict[str, Any]:
    """``{name: Stream}`` of the samples in ``[t0, t1)`` (recording time)."""
    from core.signal import Stream

    out = {}
    for name in names:
        if name in rec.beats:  # the intervals whose ending beat lies in [t0, t1)
            b = rec.beats[name].crop(t0, t1)
            out[name] = Stream(timestamps=b.t_s, values=b.rr_s[:, None])
            continue
        sig = rec.signals[name]
        i0 = max(0, math.ceil(t0 * sig.rate_hz - 1e-9))
        i1 = min(sig.n_samples, math.ceil(t1 * sig.rate_hz - 1e-9))
        t = np.arange(i0, i1, dtype=np.float64) / sig.rate_hz
        out[name] = Stream(timestamps=t, values=sig.values[i0:i1], rate_hz=sig.rate_hz)
    return out


def _task_spans(cls_of: np.ndarray, window_s: float, total_s: float) -> list[tuple[float, float]]:
    """Merged time spans around every run of task-labelled samples, padded by a window."""
    in_task = cls_of >= 0
    if not in_task.any():
        return []
    edges = np.flatnonzero(np.diff(np.r_[0, in_task.astype(np.int8), 0]))
    pad = window_s + CROP_MARGIN_S
    spans: list[tuple[float, float]] = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        lo = max(0.0, a / CHEST_RATE_HZ - pad)
        hi = min(total_s, b / CHEST_RATE_HZ + pad)
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    return spans


def _window_subject(
    rec: Recording, contract: InputContract, task: str, info: dict[str, Any]
) -> tuple[dict[str, list[np.ndarray]], list[int], list[float]]:
    """Windows of one subject: (data per modality, class indices, start times)."""
    from core.signal import compute_calibration, windows_from_streams

    names = contract.modality_names
    missing = [n for n in names if n not in rec.signals and n not in rec.beats]
    if missing:
        raise DataError(str(rec.meta.get("path", rec.subject)), f"has no signals {missing}")
    class_of_code = TASK_CLASSES[task][1]
    codes = rec.label_codes().astype(np.int64)
    lut = np.full(max(int(codes.max(initial=0)), 7) + 1, -1, np.int64)
    for code, k in class_of_code.items():
        lut[code] = k
    cls_of = lut[codes]  # (N,) class index per 700 Hz sample, -1 when not in the task
    n_cls = len(TASK_CLASSES[task][0])
    # cumulative counts per class make each window's purity an O(1) lookup
    cum = np.zeros((n_cls, codes.shape[0] + 1), np.int64)
    for k in range(n_cls):
        np.cumsum(cls_of == k, out=cum[k, 1:])

    cal_s = contract.normalization.calibration_s
    calibration = None
    if contract.normalization.needs_calibration:
        # data past the period only tells the calibration that the period is complete (a
        # beat series' last beat before cal_s may end its period short of it)
        calibration = compute_calibration(_crop_streams(rec, names, 0.0, cal_s + CROP_MARGIN_S),
                                          contract)

    data: dict[str, list[np.ndarray]] = {n: [] for n in names}
    ys: list[int] = []
    starts: list[float] = []
    seen: set[int] = set()
    hop = contract.hop_s
    total_s = rec.duration_s
    invalid: Counter[str] = info["invalid"]
    for lo, hi in _task_spans(cls_of, contract.window_s, total_s):
        origin = math.floor(lo / hop + 1e-9) * hop  # windows stay on the global hop grid
        streams = _crop_streams(rec, names, origin, hi)
        for w in windows_from_streams(streams, contract, origin=origin, calibration=calibration):
            k = round(w.start / hop)
            if k in seen:
                continue
            a = round(w.start * CHEST_RATE_HZ)
            b = min(round(w.end * CHEST_RATE_HZ), codes.shape[0])
            if b - a < round(contract.window_s * CHEST_RATE_HZ * LABEL_PURITY):
                continue  # runs past the end of the labels: not a window of this recording
            counts = cum[:, b] - cum[:, a]
            best = int(np.argmax(counts))
            seen.add(k)
            if counts.sum() == 0:  # all transition/meditation/questionnaire: not a task window
                info["not_in_task"] += 1
                continue
            if counts[best] < LABEL_PURITY * (b - a):
                info["mixed_label"] += 1
                continue
            if not w.valid:
                invalid[str(getattr(w.reason, "value", w.reason))] += 1
                continue
            for n in names:
                data[n].append(w.data[n])
            ys.append(best)
            starts.append(float(w.start))
    return data, ys, starts


@dataclass
class _SubjectWindows:
    """One subject's share of a WESAD data set (what a worker process sends back)."""

    subject: str
    data: dict[str, np.ndarray]  # name -> (n, C, T) float32
    y: np.ndarray  # (n,) int64
    start: np.ndarray  # (n,) float64
    invalid: dict[str, int]
    mixed_label: int
    not_in_task: int


def _load_subject(f: Path, contract: InputContract, task: str,
                  rr_source: str | None = None) -> _SubjectWindows:
    try:
        rec = load_wesad_subject(f)
    except RecordingError as e:
        raise DataError(e.path, str(e).removeprefix(f"{e.path}: ")) from e
    if contract.has_beats:
        from train.hr_data import with_subject_beats

        rec = with_subject_beats(rec, f, rr_source or "ecg")
    sid = rec.subject or f.parent.name
    info: dict[str, Any] = {"invalid": Counter(), "mixed_label": 0, "not_in_task": 0}
    try:
        data, ys, starts = _window_subject(rec, contract, task, info)
    except WearableEdgeError as e:  # e.g. CalibrationError: too little data at the start
        raise DataError(str(f), f"cannot window subject {sid}: {e}") from e
    shapes = {m.name: (0, m.n_channels, contract.samples(m.name)) for m in contract.modalities}
    return _SubjectWindows(
        subject=sid,
        data={n: np.stack(v) if v else np.zeros(shapes[n], np.float32) for n, v in data.items()},
        y=np.asarray(ys, np.int64),
        start=np.asarray(starts, np.float64),
        invalid=dict(info["invalid"]),
        mixed_label=info["mixed_label"],
        not_in_task=info["not_in_task"],
    )


def load_wesad(
    root: str | Path,
    task: str = "3class",
    *,
    window_s: float = 60.0,
    hop_s: float = 5.0,
    modalities: Sequence[str] | None = None,
    progress: ProgressFn = no_progress,
    normalization: Normalization | None = None,
    workers: int = 1,
    threads: int = 1,
    rr_source: str | None = None,
) -> WindowedDataset:
    """Every ``root/S*/S*.pkl`` (real or synthetic WESAD) as labelled windows.

    ``task`` is ``"3class"`` (baseline / stress / amusement) or ``"binary"`` (stress vs
    baseline + amusement). ``modalities`` defaults to all ten (wrist bvp, eda, temp, acc; chest
    ecg, resp, emg, c_eda, c_temp, c_acc), plus ``rr`` when ``rr_source`` (``"ecg"`` or
    ``"bvp"``: where :mod:`train.hr_data` finds the beats) is given. ``info`` counts invalid windows by reason, windows
    dropped for mixed labels (``mixed_label``), windows with no task label at all
    (``not_in_task``, only those near task segments are examined) and windows per subject.
    ``workers > 1`` windows subjects in that many spawned processes of ``threads`` BLAS
    threads each (same result, same order; a calling script needs the usual
    ``if __name__ == "__main__":`` guard). ``progress`` hears of every subject loaded.
    """
    root = Path(root)
    if task not in TASK_CLASSES:
        raise DataError(str(root), f"unknown task {task!r}; expected one of {tuple(TASK_CLASSES)}")
    if modalities is None and rr_source is not None:
        modalities = [m.name for m in ALL_WESAD_MODALITIES + DERIVED_WESAD_MODALITIES]
    try:
        contract = wesad_contract(task, window_s=window_s, hop_s=hop_s, modalities=modalities,
                                  normalization=normalization)
    except ValueError as e:
        raise DataError(str(root), str(e)) from e
    files = _subject_files(root)
    names = contract.modality_names
    t_start = time.perf_counter()
    parts: list[_SubjectWindows] = []

    def loaded(part: _SubjectWindows) -> None:
        parts.append(part)
        progress(ProgressEvent("subjects", "load WESAD", len(parts), len(files)))

    progress(ProgressEvent("subjects", "load WESAD", 0, len(files)))
    if workers <= 1 or len(files) == 1:
        for f in files:
            loaded(_load_subject(f, contract, task, rr_source))
    else:
        from train.pool import process_pool

        with process_pool(min(workers, len(files)), threads) as pool:
            futures = [pool.submit(_load_subject, f, contract, task, rr_source) for f in files]
            for fut in futures:  # in file order: the result does not depend on workers
                loaded(fut.result())
    invalid: Counter[str] = Counter()
    for part in parts:
        invalid.update(part.invalid)
    info: dict[str, Any] = {
        "source": "wesad",
        "root": str(root),
        "task": task,
        "rr_source": rr_source if contract.has_beats else None,
        "invalid": dict(invalid),
        "mixed_label": sum(p.mixed_label for p in parts),
        "not_in_task": sum(p.not_in_task for p in parts),
        "per_subject": {p.subject: len(p.y) for p in parts},
        "load_seconds": round(time.perf_counter() - t_start, 2),
    }
    ys = np.concatenate([p.y for p in parts])
    if ys.size == 0:
        raise DataError(str(root), f"no valid labelled windows for task {task!r}")
    modal = {n: np.concatenate([p.data[n] for p in parts]).astype(np.float32, copy=False)
             for n in names}
    ds = WindowedDataset(
        modalities=modal,
        contract=contract,
        y=ys,
        groups=np.concatenate([np.full(len(p.y), p.subject) for p in parts]).astype(str),
        start=np.concatenate([p.start for p in parts]),
        split=None,
        info=info,
    )
    info["class_counts"] = ds.class_counts()
    log.info("loaded %d windows from %d subjects in %.1f s", len(ds), len(files),
             info["load_seconds"])
    return ds


def fit_global_normalization(
    ds: WindowedDataset, train_mask: np.ndarray | Sequence[bool]
) -> WindowedDataset:
    """Per-channel median and robust spread (``core.signal.robust_spread``) of ``train_mask`` rows.

    Returns a new dataset with every row (train and test) normalized by those statistics
    and clipped to ±``clip``, and a contract whose ``global`` normalization carries them, so
    the exported model and the hub apply exactly the same transform. Test rows never
    influence the statistics.
    """
    from core.signal import robust_spread

    if ds.contract.normalization.kind != "global":
        raise ValueError(f"dataset normalization is {ds.contract.normalization.kind!r}, not global")
    if ds.info.get("normalized"):
        raise ValueError("dataset is already normalized; fit on the raw dataset")
    mask = np.asarray(train_mask, dtype=bool)
    if mask.shape != (len(ds),) or not mask.any():
        raise ValueError("train_mask must be a (N,) boolean mask with at least one True")
    clip = ds.contract.normalization.clip
    centers: dict[str, tuple[float, ...]] = {}
    scales: dict[str, tuple[float, ...]] = {}
    out: dict[str, np.ndarray] = {}
    for name, x in ds.modalities.items():  # (N, C, T)
        tr = x[mask]
        flat = np.moveaxis(tr, 1, 0).reshape(tr.shape[1], -1)  # (C, n*T)
        step = max(1, flat.shape[1] // GLOBAL_STAT_SAMPLES)
        sub = flat[:, ::step].astype(np.float64)
        center = np.median(sub, axis=1)
        scale = robust_spread(sub, axis=1, floor=GLOBAL_SCALE_FLOOR)  # the hub's own statistic
        flat_sd = sub.std(axis=1)
        # a channel that is mostly constant (IQR 0) but not flat: fall back to its SD
        scale = np.where(scale <= GLOBAL_SCALE_FLOOR, np.maximum(flat_sd, GLOBAL_SCALE_FLOOR),
                         scale)
        centers[name] = tuple(float(v) for v in center)
        scales[name] = tuple(float(v) for v in scale)
        out[name] = _apply_global(x, center, scale, clip)
    norm = replace(ds.contract.normalization, center=centers, scale=scales)
    contract = replace(ds.contract, normalization=norm)
    info = {**ds.info, "normalized": True, "normalization_rows": int(mask.sum())}
    return replace(ds, modalities=out, contract=contract, info=info)


def _apply_global(x: np.ndarray, center: np.ndarray, scale: np.ndarray, clip: float) -> np.ndarray:
    """(N, C, T) -> normalized, through core.signal.normalize (the hub's own transform)."""
    from core.signal import normalize

    out = np.empty(x.shape, np.float32)
    for i in range(x.shape[0]):
        out[i] = normalize(x[i], center, scale, clip)
    return out
