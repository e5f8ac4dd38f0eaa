"""Labelled windows a user brings as one ``.npz``: ``X`` (N, C, T), ``y`` (N,) int or str
labels, ``channels`` (C,), ``sample_rate_hz``; optional ``groups`` (subjects, for LOSO),
``split`` ("train"/"test", a fixed evaluation split) and ``start`` (seconds, for
forward-chaining). Read as a one-modality (``"signal"``) dataset with a ``global``
normalization fitted later on training rows (:func:`train.data.fit_global_normalization`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core.contract import InputContract, Modality, Normalization
from core.errors import InputTooLargeError, WearableEdgeError
from core.npz import check_npz_size
from train.data import WindowedDataset
from train.errors import DataError

__all__ = ["load_arrays"]


def _require(z: Mapping[str, np.ndarray], key: str, path: str) -> np.ndarray:
    if key not in z:
        raise DataError(path, f"missing array {key!r} (have {sorted(z)})")
    return z[key]


def load_arrays(path: str | Path) -> WindowedDataset:
    """A generic labelled-windows ``.npz`` as a one-modality (``"signal"``) dataset.

    Windows are returned raw; see :func:`fit_global_normalization` (the contract's
    normalization is ``global`` with center/scale to be fitted on training rows).
    """
    p = Path(path)
    sp = str(p)
    if not p.exists():
        raise DataError(sp, "arrays file not found")
    try:
        check_npz_size(p)  # before np.load inflates anything
    except InputTooLargeError as e:
        raise DataError(sp, str(e).removeprefix(f"{sp}: ")) from e
    try:
        with np.load(p, allow_pickle=False) as npz:
            z = {k: npz[k] for k in npz.files}
    except ValueError as e:  # object arrays are refused: allow_pickle=False
        raise DataError(sp, f"cannot read arrays (object arrays are not allowed): {e}") from e
    except (OSError, EOFError) as e:
        raise DataError(sp, f"not a readable .npz: {e}") from e
    X = _require(z, "X", sp)
    y_raw = _require(z, "y", sp)
    channels = _require(z, "channels", sp)
    rate = _require(z, "sample_rate_hz", sp)
    if X.ndim != 3:
        raise DataError(sp, f"X has shape {X.shape}, expected (N, C, T)")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(sp, f"X has non-numeric dtype {X.dtype}")
    n, c, t = X.shape
    if n == 0 or t == 0:
        raise DataError(sp, f"X has shape {X.shape}: no windows or no samples")
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        raise DataError(sp, "X contains NaN or infinite values")
    if y_raw.shape != (n,):
        raise DataError(sp, f"y has shape {y_raw.shape}, expected ({n},) to match X")
    if channels.shape != (c,):
        raise DataError(sp, f"channels has shape {channels.shape}, expected ({c},) to match X")
    if rate.size != 1 or not np.issubdtype(rate.dtype, np.number):
        raise DataError(sp, f"sample_rate_hz must be one number, got {rate!r}")
    rate_hz = float(rate.reshape(()))
    if not (rate_hz > 0 and math.isfinite(rate_hz)):
        raise DataError(sp, f"sample_rate_hz must be positive, got {rate_hz}")

    if np.issubdtype(y_raw.dtype, np.integer) or np.issubdtype(y_raw.dtype, np.str_):
        uniq = np.unique(y_raw)
    elif np.issubdtype(y_raw.dtype, np.floating) and (y_raw == np.round(y_raw)).all():
        y_raw = y_raw.astype(np.int64)
        uniq = np.unique(y_raw)
    else:
        raise DataError(sp, f"y must hold int or str labels, got dtype {y_raw.dtype}")
    if uniq.size < 2:
        raise DataError(sp, f"y has a single class {uniq.tolist()}; need at least two")
    y = np.searchsorted(uniq, y_raw).astype(np.int64)
    class_names = tuple(str(u) for u in uniq.tolist())

    groups = z.get("groups")
    if groups is None:
        groups_arr = np.full(n, "all")  # one group: subject-wise CV is impossible
    else:
        if groups.shape != (n,):
            raise DataError(sp, f"groups has shape {groups.shape}, expected ({n},)")
        groups_arr = groups.astype(str)
    split = z.get("split")
    split_arr = None
    if split is not None:
        if split.shape != (n,):
            raise DataError(sp, f"split has shape {split.shape}, expected ({n},)")
        split_arr = np.char.lower(np.char.strip(split.astype(str)))
        bad = sorted(set(np.unique(split_arr).tolist()) - {"train", "test"})
        if bad:
            raise DataError(sp, f"split values must be 'train' or 'test', found {bad}")
        if not (split_arr == "train").any() or not (split_arr == "test").any():
            raise DataError(sp, "split needs at least one 'train' and one 'test' row")

    window_s = t / rate_hz
    try:
        modality = Modality("signal", "a.u.", rate_hz, tuple(str(ch) for ch in channels.tolist()))
        contract = InputContract(
            modalities=(modality,),
            class_names=class_names,
            window_s=window_s,
            hop_s=window_s,  # windows come pre-cut; the hub would step a whole window
            normalization=Normalization(kind="global"),
        )
    except WearableEdgeError as e:
        raise DataError(sp, f"cannot describe these arrays as an input contract: {e}") from e
    starts = z.get("start")
    start = (starts.astype(np.float64) if starts is not None and starts.shape == (n,)
             else np.arange(n, dtype=np.float64) * window_s)
    info = {
        "source": "arrays",
        "path": sp,
        "normalized": False,
        "invalid": {},
        "mixed_label": 0,
        "per_subject": {str(g): int(k) for g, k in zip(*np.unique(groups_arr, return_counts=True),
                                                     strict=True)},
    }
    return WindowedDataset(
        modalities={"signal": X},
        contract=contract,
        y=y,
        groups=groups_arr,
        start=start,
        split=split_arr,
        class_names=class_names,
        info=info,
    )
