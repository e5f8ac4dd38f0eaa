"""The run's windows in memory: every modality of a data set packed once into ``X (N, L)``.

:func:`load_data` reads a WESAD directory (subjects windowed in parallel worker processes
when ``cfg.workers > 1``), an arrays ``.npz`` (:mod:`train.data`) or UEA/UCR ``.ts`` files
(:mod:`train.ts_data`) and packs every modality under the full contract; each model slices
out its own modalities
(:func:`packed_columns`), and a model's config stores where they sit
(:func:`layout_fields`, checked by :func:`check_layout`). :func:`job_inputs` gives one job
its ``X``: global normalization (arrays) is fitted on that job's training windows only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.contract import InputContract
from train import data as tdata
from train.arrays_data import load_arrays
from train.config import RunConfig
from train.errors import TrainError
from train.progress import ProgressFn, no_progress

__all__ = [
    "LoadedData",
    "check_layout",
    "job_inputs",
    "layout_fields",
    "load_data",
    "packed_columns",
]


@dataclass
class LoadedData:
    """Everything training needs, in memory: windows packed under the full contract."""

    X: np.ndarray  # (N, L) float32, every modality of `contract`
    y: np.ndarray  # (N,) int64 class index
    groups: np.ndarray  # (N,) str subject id ("all" when the data has none)
    start: np.ndarray  # (N,) float64 window start in its recording (or index order)
    split: np.ndarray | None  # (N,) "train"/"test" when the data carries a fixed split
    contract: InputContract  # of X's columns; its window_s is the windows' real length
    class_names: tuple[str, ...]
    kind: str  # "wesad" | "arrays" | "ts"
    path: Path
    info: dict[str, Any] = field(default_factory=dict)
    has_groups: bool = True  # False: arrays without 'groups' (one pseudo-subject "all")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def load_data(
    kind: str, path: Path, cfg: RunConfig, *, progress: ProgressFn = no_progress
) -> LoadedData:
    """Read the windows with ``train.data`` and pack every modality once."""
    if kind == "wesad":
        ds = tdata.load_wesad(
            path,
            cfg.data.task,
            window_s=cfg.data.window_s,
            hop_s=cfg.data.hop_s,
            workers=cfg.workers,
            threads=cfg.threads,
            progress=progress,
            rr_source=cfg.data.rr_source if cfg.data.kind == "hr" else None,
        )
    elif kind == "arrays":
        ds = load_arrays(path)
    elif kind == "ts":
        from train.ts_data import load_ts

        ds = load_ts(path)
    else:
        raise TrainError(f"unknown dataset kind {kind!r}; expected wesad, arrays or ts")
    names = list(ds.modality_names)
    groups = np.asarray(ds.groups).astype(str)
    return LoadedData(
        X=ds.pack(names),
        y=np.asarray(ds.y, np.int64),
        groups=groups,
        start=np.asarray(ds.start, np.float64),
        split=None if ds.split is None else np.asarray(ds.split).astype(str),
        contract=ds.contract_for(names),
        class_names=tuple(ds.class_names),
        kind=kind,
        path=Path(path),
        info=dict(ds.info),
        # arrays without 'groups' get the single id "all": no subjects to leave out
        has_groups=len(np.unique(groups)) > 1,
    )


def job_inputs(
    X: np.ndarray,
    contract: InputContract,
    y: np.ndarray,
    groups: np.ndarray,
    start: np.ndarray,
    train_idx: np.ndarray,
) -> tuple[np.ndarray, InputContract]:
    """``X`` and contract for one job. Global normalization (arrays) is fitted on the
    job's training windows only, through ``train.data.fit_global_normalization`` (the same
    transform the hub applies); subject-baseline normalization happened at windowing time."""
    if contract.normalization.kind != "global":
        return X, contract
    ds = tdata.WindowedDataset(
        modalities={k: np.asarray(v) for k, v in contract.unpack(X).items()},
        contract=contract,
        y=y,
        groups=groups,
        start=start,
    )
    mask = np.zeros(len(y), bool)
    mask[train_idx] = True
    normed = tdata.fit_global_normalization(ds, mask)
    names = list(contract.modality_names)
    return normed.pack(names), normed.contract_for(names)


# -- where each modality sits in the packed vector ---------------------------------------------
class ModelLayout(Protocol):
    """The layout fields of a model config (``train.models.StudentConfig``, ``TeacherConfig``)."""

    modalities: tuple[str, ...]
    offsets: tuple[int, ...]
    channels: tuple[int, ...]
    samples: tuple[int, ...]
    rates_hz: tuple[float, ...]
    input_length: int
    n_classes: int


def layout_fields(contract: InputContract, names: Sequence[str] | None) -> dict[str, Any]:
    """The slice of ``contract``'s packed vector each chosen modality occupies (JSON-able)."""
    by_name = {s.modality.name: s for s in contract.layout()}
    chosen = list(contract.modality_names if names is None else names)
    for n in chosen:
        contract.modality(n)  # raises ContractError naming the unknown modality
    return {
        "modalities": tuple(chosen),
        "offsets": tuple(by_name[n].offset for n in chosen),
        "channels": tuple(by_name[n].modality.n_channels for n in chosen),
        "samples": tuple(by_name[n].samples for n in chosen),
        "rates_hz": tuple(float(by_name[n].modality.rate_hz) for n in chosen),
        "input_length": contract.input_length,
        "n_classes": contract.n_classes,
    }


def check_layout(cfg: ModelLayout) -> None:
    """``cfg``'s modalities fit its input and it has two classes or more (ValueError if not)."""
    n = len(cfg.modalities)
    if n == 0:
        raise ValueError("a model needs at least one modality")
    per_modality = (cfg.offsets, cfg.channels, cfg.samples, cfg.rates_hz)
    if any(len(v) != n for v in per_modality):
        raise ValueError("modalities, offsets, channels, samples and rates_hz differ in length")
    for name, off, c, s in zip(cfg.modalities, cfg.offsets, cfg.channels, cfg.samples, strict=True):
        if off < 0 or c < 1 or s < 1 or off + c * s > cfg.input_length:
            raise ValueError(f"modality {name!r} does not fit in an input of {cfg.input_length}")
    if cfg.n_classes < 2:
        raise ValueError("need at least two classes")


def packed_columns(contract: InputContract, names: Sequence[str]) -> np.ndarray:
    """Column indices that turn ``contract``'s packed ``(B, L)`` into ``contract.subset(names)``'s.

    The training set packs every modality once (wrist + chest); the student and each teacher
    see only theirs: ``X[:, packed_columns(full, wrist_names)]``.
    """
    by_name = {s.modality.name: s for s in contract.layout()}
    return np.concatenate([np.arange(by_name[n].offset, by_name[n].stop) for n in names])
