"""Epoch CSV files: read ``time,activity[,light]`` into an epoch series, write ``time,sleep``.

The reader is strict: a rhythm computed over a silent gap or a clock jump is wrong without
saying so, so each problem is refused with one line naming the file and line and what to do.
The epoch length is the most common spacing of the times; a spacing that is a whole multiple
of it is a gap, any other is a mixed epoch length. Times are ISO 8601; with UTC offsets, the
spacing is checked on absolute time and the time of day is the first row's wall clock.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np

from core.actigraphy.series import DAY_S, HOUR_S, EpochSeries
from core.errors import RecordingError

__all__ = ["EpochFile", "read_epochs", "write_sleep"]

MIN_DAYS: Final = 2.0
REQUIRED: Final = ("time", "activity")
OPTIONAL: Final = ("light",)


@dataclass(frozen=True)
class EpochFile:
    """A read epoch file: the series, and each row's time as written (for the output file)."""

    path: Path
    series: EpochSeries
    times: tuple[str, ...]


def read_epochs(path: Path | str, *, min_days: float = MIN_DAYS) -> EpochFile:
    """Read and check an epoch CSV; raises :class:`RecordingError` naming the first problem."""
    path = Path(path)
    where = str(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise RecordingError(f"cannot read: {e.strerror or e}", path=where) from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise RecordingError(f"not a CSV text file ({e})", path=where) from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if not header or header == [""]:
        raise RecordingError("empty file; expected a header line time,activity[,light]",
                             path=where)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise RecordingError(
            f"no {' or '.join(repr(c) for c in missing)} column (header: {','.join(header)}); "
            "expected time,activity[,light]", path=where)
    col = {name: header.index(name) for name in (*REQUIRED, *OPTIONAL) if name in header}
    times: list[datetime] = []
    written: list[str] = []
    activity: list[float] = []
    light: list[float] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise RecordingError(f"line {line}: {len(row)} fields, the header has {len(header)}",
                                 path=where)
        text = row[col["time"]].strip()
        try:
            t = datetime.fromisoformat(text)
        except ValueError:
            raise RecordingError(
                f"line {line}: time {text!r} is not ISO 8601 (e.g. 2024-03-01T14:30:00)",
                path=where) from None
        if times and (t.tzinfo is None) != (times[0].tzinfo is None):
            raise RecordingError(
                f"line {line}: time {text!r} mixes times with and without a UTC offset",
                path=where)
        times.append(t)
        written.append(text)
        activity.append(_number(row[col["activity"]], "activity", line, where, required=True))
        if "light" in col:
            light.append(_number(row[col["light"]], "light", line, where, required=False))
    if len(times) < 2:
        raise RecordingError(f"{len(times)} epoch(s); rhythm measures need at least "
                             f"{min_days:g} days of epochs", path=where)
    epoch_s = _epoch_length(times, where)
    days = len(times) * epoch_s / DAY_S
    if days < min_days:
        raise RecordingError(
            f"covers {_span(len(times) * epoch_s)} ({len(times)} epochs of {epoch_s} s); "
            f"rhythm measures need at least {min_days:g} days", path=where)
    start = times[0].replace(tzinfo=None)
    series = EpochSeries(start, epoch_s, np.array(activity, dtype=float),
                         np.array(light, dtype=float) if light else None)
    return EpochFile(path, series, tuple(written))


def _number(text: str, name: str, line: int, where: str, *, required: bool) -> float:
    s = text.strip()
    if not s and not required:
        return math.nan
    try:
        v = float(s)
    except ValueError:
        raise RecordingError(f"line {line}: {name} {s!r} is not a number", path=where) from None
    if not math.isfinite(v) or v < 0:
        raise RecordingError(f"line {line}: {name} {s!r} must be a finite number >= 0",
                             path=where)
    return v


def _epoch_length(times: Sequence[datetime], where: str) -> int:
    diffs = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    for i, d in enumerate(diffs):
        if d <= 0:
            raise RecordingError(
                f"line {i + 3}: time {times[i + 1].isoformat()} is not after the previous "
                f"line's {times[i].isoformat()}: times must increase", path=where)
    epoch = Counter(diffs).most_common(1)[0][0]
    if epoch != int(epoch) or HOUR_S % int(epoch):
        raise RecordingError(
            f"epoch length {epoch:g} s does not divide an hour; use epochs of e.g. 15, 30 "
            "or 60 s", path=where)
    for i, d in enumerate(diffs):
        if d == epoch:
            continue
        ratio = d / epoch
        if ratio == int(ratio):
            raise RecordingError(
                f"line {i + 3}: gap of {_span(d - epoch)} after {times[i].isoformat()} "
                f"(epochs of {int(epoch)} s); fill the missing epochs or split the file",
                path=where)
        raise RecordingError(
            f"line {i + 3}: {d:g} s after the previous epoch, but the file's epochs are "
            f"{int(epoch)} s: mixed epoch lengths; resample to one epoch length", path=where)
    return int(epoch)


def _span(seconds: float) -> str:
    s = round(seconds)
    d, rest = divmod(s, DAY_S)
    h, rest = divmod(rest, HOUR_S)
    m, sec = divmod(rest, 60)
    parts = [f"{d} d" if d else "", f"{h} h" if h else "", f"{m} min" if m else "",
             f"{sec} s" if sec and not d else ""]
    return " ".join(p for p in parts if p) or "0 s"


def write_sleep(path: Path | str, times: Sequence[str], sleep: np.ndarray) -> None:
    """``time,sleep`` per epoch: 1 sleep, 0 wake, -1 not scored (edges, non-wear)."""
    if len(times) != len(sleep):
        raise RecordingError(f"{len(sleep)} scores for {len(times)} epochs", path=str(path))
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["time", "sleep"])
        w.writerows(zip(times, (int(v) for v in sleep), strict=True))
