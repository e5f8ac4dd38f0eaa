"""What a hub trains on in a federation: its residents' embeddings and confirmed labels.

Rows are oldest first per wearer (the order a hub confirmed them). The wearer ids are the
hub's own and never leave it: only :mod:`edge.fleet.client`'s model updates do.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from core.errors import InputTooLargeError
from core.npz import check_npz_size, save_npz_whole
from edge.errors import EdgeError

__all__ = ["LocalData", "LocalDataError"]

MAX_LOCAL_BYTES: Final = 512 * 1024**2  # years of one hub's labelled windows are far below this
FIELDS: Final = ("emb", "y", "wearer", "start")


class LocalDataError(EdgeError):
    """A hub's training data file is missing, corrupt or inconsistent; ``path`` names it."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass
class LocalData:
    emb: np.ndarray  # (N, D) float32 student embeddings
    y: np.ndarray  # (N,) int64 confirmed class
    wearer: np.ndarray  # (N,) str the hub's own wearer id
    start: np.ndarray  # (N,) float64 window start (s); rows oldest first per wearer

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def wearers(self) -> list[str]:
        return list(dict.fromkeys(self.wearer.tolist()))

    def of(self, wearer: str) -> LocalData:
        m = self.wearer == wearer
        return LocalData(self.emb[m], self.y[m], self.wearer[m], self.start[m])

    def save(self, path: Path) -> None:
        save_npz_whole(
            path, emb=self.emb, y=self.y, wearer=self.wearer.astype(str), start=self.start
        )

    @classmethod
    def load(cls, path: Path) -> LocalData:
        p = Path(path)
        try:
            check_npz_size(p, max_bytes=MAX_LOCAL_BYTES)
            with np.load(p, allow_pickle=False) as z:
                missing = [k for k in FIELDS if k not in z.files]
                if missing:
                    raise LocalDataError(
                        f"not a hub's training data: no {', '.join(missing)}", path=str(p)
                    )
                emb, y, wearer, start = (z[k] for k in FIELDS)
        except LocalDataError:
            raise
        except InputTooLargeError as e:
            raise LocalDataError(str(e), path=str(p)) from e
        except FileNotFoundError as e:
            raise LocalDataError("no such file", path=str(p)) from e
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise LocalDataError(f"not a readable .npz ({type(e).__name__})", path=str(p)) from e
        n = y.shape[0] if y.ndim == 1 else -1
        if emb.ndim != 2 or n != emb.shape[0] or wearer.shape != (n,) or start.shape != (n,):
            raise LocalDataError("emb (N, D), y, wearer and start (N,) must agree", path=str(p))
        if not np.issubdtype(y.dtype, np.integer) or (n and y.min() < 0):
            raise LocalDataError("labels must be non-negative integers", path=str(p))
        if not np.issubdtype(emb.dtype, np.floating) or not np.isfinite(emb).all():
            raise LocalDataError("embeddings must be finite floats", path=str(p))
        return cls(
            emb.astype(np.float32), y.astype(np.int64), wearer.astype(str), start.astype(np.float64)
        )
