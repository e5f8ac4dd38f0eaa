"""Read UEA/UCR ``.ts`` files (the time-series classification archive's format).

A ``.ts`` file is a header of ``@key value`` lines (``@problemName``, ``@timeStamps``,
``@missing``, ``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``,
``@classLabel true <labels...>``), then ``@data`` and one case per line: the dimensions
separated by ``:``, each a comma-separated list of values (``?`` or ``NaN`` for a missing
one), the class label last. Comment lines start with ``#``.

:func:`read_ts` parses one file into :class:`TsFile` (one ``(C, T_i)`` float32 array per
case, lengths may differ). :func:`ts_pair` finds the archive's ``<Name>_TRAIN.ts`` /
``<Name>_TEST.ts`` pair from either file or the folder holding them. Every malformed input
raises :class:`train.errors.DataError` naming the file and line. Timestamped files
(``@timeStamps true``) are refused: their samples are not on a regular grid.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from train.errors import DataError

__all__ = ["TsFile", "read_ts", "ts_pair"]

MISSING_TOKENS: Final = frozenset({"?", "nan"})
TRAIN_SUFFIX: Final = "_TRAIN.ts"
TEST_SUFFIX: Final = "_TEST.ts"


@dataclass
class TsFile:
    """One parsed ``.ts`` file."""

    path: Path
    problem: str
    series: list[np.ndarray]  # per case (C, T_i) float32, NaN where missing
    labels: list[str]  # per case
    class_labels: tuple[str, ...]  # declared in @classLabel, in header order
    header: dict[str, str] = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return int(self.series[0].shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([s.shape[1] for s in self.series], np.int64)

    @property
    def n_missing(self) -> int:
        return int(sum(int(np.isnan(s).sum()) for s in self.series))


def _bool(value: str, key: str, path: Path, line: int) -> bool:
    v = value.strip().lower()
    if v in ("true", "false"):
        return v == "true"
    raise DataError(str(path), f"line {line}: @{key} must be true or false, got {value!r}")


def _values(text: str, path: Path, line: int, dim: int) -> np.ndarray:
    items = text.split(",")
    out = np.empty(len(items), np.float32)
    for i, item in enumerate(items):
        tok = item.strip()
        if tok.lower() in MISSING_TOKENS:
            out[i] = np.nan
            continue
        try:
            v = float(tok)
        except ValueError:
            raise DataError(
                str(path), f"line {line}: dimension {dim} value {i + 1} is not a number: {tok!r}"
            ) from None
        if math.isinf(v):
            raise DataError(str(path), f"line {line}: dimension {dim} value {i + 1} is infinite")
        out[i] = v
    return out


def read_ts(path: str | Path) -> TsFile:
    """Parse one ``.ts`` file (see the module doc); raises DataError on any malformed part."""
    p = Path(path)
    sp = str(p)
    if not p.is_file():
        raise DataError(sp, ".ts file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(sp, f"not a text file (UTF-8): {e.reason} at byte {e.start}") from e
    header: dict[str, str] = {}
    class_labels: tuple[str, ...] | None = None
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    n_dims: int | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(sp, f"line {lineno}: expected an @key header line or @data, "
                                    f"got {line[:40]!r}")  # fmt: skip
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                if header.get("timestamps", "false").lower() == "true":
                    raise DataError(sp, "timestamped series (@timeStamps true) are not "
                                        "supported; resample them to a regular grid first")  # fmt: skip
                if class_labels is None:
                    raise DataError(sp, "no @classLabel line: edge-train needs class labels "
                                        "(@classLabel true <label> ...)")  # fmt: skip
                continue
            header[key] = value.strip()
            if key == "classlabel":
                parts = value.split()
                if not parts or not _bool(parts[0], "classLabel", p, lineno):
                    raise DataError(sp, f"line {lineno}: @classLabel false: edge-train needs "
                                        "labelled series")  # fmt: skip
                class_labels = tuple(parts[1:])
                if len(class_labels) < 2:
                    raise DataError(sp, f"line {lineno}: @classLabel lists {len(class_labels)} "
                                        "label(s); need at least two")  # fmt: skip
            elif key in ("timestamps", "missing", "univariate", "equallength"):
                _bool(value, key, p, lineno)
            elif key in ("dimensions", "serieslength") and (
                not re.fullmatch(r"\d+", value.strip()) or int(value) < 1
            ):
                raise DataError(sp, f"line {lineno}: @{key} must be a positive integer, "
                                        f"got {value.strip()!r}")  # fmt: skip
            continue
        assert class_labels is not None
        fields = line.split(":")
        if len(fields) < 2:
            raise DataError(sp, f"line {lineno}: expected <values>:...:<label>, found no ':'")
        label = fields[-1].strip()
        if label not in class_labels:
            raise DataError(sp, f"line {lineno}: class label {label!r} is not declared in "
                                f"@classLabel {list(class_labels)}")  # fmt: skip
        dims = [_values(f, p, lineno, i) for i, f in enumerate(fields[:-1])]
        if n_dims is None:
            n_dims = len(dims)
        elif len(dims) != n_dims:
            raise DataError(sp, f"line {lineno}: {len(dims)} dimensions, earlier cases have "
                                f"{n_dims}")  # fmt: skip
        lengths = {len(d) for d in dims}
        if len(lengths) != 1:
            raise DataError(sp, f"line {lineno}: the dimensions of one case differ in length "
                                f"{sorted(lengths)}")  # fmt: skip
        if np.isnan(np.stack(dims)).all():
            raise DataError(sp, f"line {lineno}: every value of this case is missing")
        series.append(np.stack(dims))
        labels.append(label)
    if not in_data:
        raise DataError(sp, "no @data line: not a .ts file")
    if not series:
        raise DataError(sp, "no cases after @data")
    if "dimensions" in header and int(header["dimensions"]) != n_dims:
        raise DataError(sp, f"@dimensions says {header['dimensions']}, the cases have {n_dims}")
    if header.get("equallength", "").lower() == "true":
        lens = {s.shape[1] for s in series}
        if len(lens) > 1:
            raise DataError(sp, f"@equalLength true but the cases have lengths {sorted(lens)[:5]}")
        if "serieslength" in header and int(header["serieslength"]) not in lens:
            raise DataError(sp, f"@seriesLength says {header['serieslength']}, the cases have "
                                f"{lens.pop()}")  # fmt: skip
    assert class_labels is not None
    return TsFile(p, header.get("problemname", p.stem), series, labels, class_labels, header)


def ts_pair(path: str | Path) -> tuple[Path, Path | None]:
    """``(train_or_only_file, test_file_or_None)`` for a ``.ts`` path or a folder.

    ``X_TRAIN.ts`` or ``X_TEST.ts`` -> both files of the pair (the other must exist); a
    folder ``X`` -> ``X/X_TRAIN.ts`` and its pair, else the folder's one ``*_TRAIN.ts``; any other ``.ts`` file -> itself
    alone (no split)."""
    p = Path(path)
    if p.is_dir():
        own = p / f"{p.name}{TRAIN_SUFFIX}"  # the archive's layout: <Name>/<Name>_TRAIN.ts
        trains = [own] if own.is_file() else sorted(p.glob(f"*{TRAIN_SUFFIX}"))
        if len(trains) != 1:
            found: Any = [t.name for t in trains] or "none"
            raise DataError(str(p), f"expected one *{TRAIN_SUFFIX} file in the folder, found "
                                    f"{found}; pass the file itself")  # fmt: skip
        p = trains[0]
    if not p.is_file():
        raise DataError(str(p), ".ts file not found")
    name = p.name
    for mine, other in ((TRAIN_SUFFIX, TEST_SUFFIX), (TEST_SUFFIX, TRAIN_SUFFIX)):
        if name.upper().endswith(mine.upper()):
            partner = p.with_name(name[: -len(mine)] + other)
            if not partner.is_file():
                raise DataError(str(p), f"its pair {partner.name} is not beside it; pass a "
                                        "folder holding both or rename the file")  # fmt: skip
            return (p, partner) if mine == TRAIN_SUFFIX else (partner, p)
    return p, None
