"""The run's windows in memory: every modality of a data set packed once into ``X (N, L)``.

:func:`load_data` reads a WESAD directory (subjects windowed in parallel worker processes
when ``cfg.workers > 1``) or an arrays ``.npz`` through :mod:`train.data` and packs every
modality under the full contract; each model slices out its own modalities
(``train.models.packed_columns``). :func:`job_inputs` gives one job its ``X``: global
normalization (arrays) is fitted on that job's training windows only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.contract import InputContract
from train import data as tdata
from train.config import RunConfig
from train.errors import TrainError
from train.progress import ProgressFn, no_progress

__all__ = ["LoadedData", "job_inputs", "load_data"]


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
    kind: str  # "wesad" | "arrays"
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
        )
    elif kind == "arrays":
        ds = tdata.load_arrays(path)
    else:
        raise TrainError(f"unknown dataset kind {kind!r}; expected wesad or arrays")
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
