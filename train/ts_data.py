"""UEA/UCR ``.ts`` data sets as labelled windows (``edge-train fit --dataset ts``).

Each case of a ``.ts`` file becomes one window of one modality ``"signal"`` (its
dimensions are the channels). The archive's ``<Name>_TRAIN.ts`` / ``<Name>_TEST.ts`` pair
becomes a fixed train/test split. Missing values are bridged per channel
(:func:`core.series.fill_missing`, counted in ``info``); cases of different lengths are
fitted to one length by :func:`core.series.fit_length`; the contract records the mode
(``length_mode``) and the length (its window), so the hub fits a series the same way. The
length is the longest *training* case unless given. The files carry no sampling rate: ``rate_hz`` (default 1)
only scales seconds in the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from core.contract import InputContract, Modality, Normalization
from core.series import LENGTH_MODES, fill_missing, fit_length
from train.data import WindowedDataset
from train.errors import DataError
from train.tsfile import read_ts, ts_pair

__all__ = ["DEFAULT_RATE_HZ", "load_ts"]

DEFAULT_RATE_HZ: Final = 1.0  # .ts files record no rate; one sample per second of "time"


def load_ts(
    path: str | Path,
    *,
    length: int = 0,
    length_mode: str = "resample",
    rate_hz: float = DEFAULT_RATE_HZ,
) -> WindowedDataset:
    """A ``.ts`` file, pair or folder as a one-modality dataset (raw values, global
    normalization to be fitted on training rows, as for arrays)."""
    if length_mode not in LENGTH_MODES:
        raise DataError(str(path), f"length mode {length_mode!r} is not one of {LENGTH_MODES}")
    train_path, test_path = ts_pair(path)
    files = [read_ts(train_path)] + ([read_ts(test_path)] if test_path is not None else [])
    first = files[0]
    for f in files[1:]:
        if f.n_channels != first.n_channels:
            raise DataError(str(f.path), f"{f.n_channels} dimensions, {first.path.name} has "
                                         f"{first.n_channels}")  # fmt: skip
        extra = sorted(set(f.class_labels) - set(first.class_labels))
        if extra:
            raise DataError(str(f.path), f"class labels {extra} are not declared in "
                                         f"{first.path.name}")  # fmt: skip
    target = length or int(first.lengths.max())
    series, labels, split, filled = [], [], [], 0
    for f, part in zip(files, ("train", "test"), strict=False):
        for s, lab in zip(f.series, f.labels, strict=True):
            s, n = fill_missing(s)
            filled += n
            series.append(fit_length(s, target, length_mode))
            labels.append(lab)
            split.append(part)
    X = np.stack(series).astype(np.float32)  # (N, C, T)
    class_names = first.class_labels
    index = {c: i for i, c in enumerate(class_names)}
    y = np.array([index[lab] for lab in labels], np.int64)
    present = np.unique(y[np.array(split) == "train"])
    if len(present) < 2:
        raise DataError(str(train_path), "the training cases hold fewer than two classes")
    window_s = target / rate_hz
    contract = InputContract(
        modalities=(Modality("signal", "a.u.", rate_hz,
                             tuple(f"dim{i}" for i in range(first.n_channels))),),
        class_names=tuple(class_names),
        window_s=window_s,
        hop_s=window_s,
        normalization=Normalization(kind="global"),
        length_mode=length_mode,
    )  # fmt: skip
    n = len(y)
    lengths = np.concatenate([f.lengths for f in files])
    info: dict[str, Any] = {
        "source": "ts",
        "path": str(train_path),
        "test_path": None if test_path is None else str(test_path),
        "problem": first.problem,
        "normalized": False,
        "invalid": {},
        "mixed_label": 0,
        "missing_values_filled": filled,
        "length": target,
        "length_mode": length_mode,
        "lengths_min_max": [int(lengths.min()), int(lengths.max())],
        "fitted_cases": int((lengths != target).sum()),
        "per_subject": {"all": n},
    }
    return WindowedDataset(
        modalities={"signal": X},
        contract=contract,
        y=y,
        groups=np.full(n, "all"),
        start=np.arange(n, dtype=np.float64) * window_s,
        split=np.array(split) if test_path is not None else None,
        class_names=tuple(class_names),
        info=info,
    )
