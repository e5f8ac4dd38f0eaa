"""The epoch series every actigraphy measure reads: activity (and light) on a regular clock grid.

Times are local wall-clock times (naive ``datetime``): a rhythm is about the resident's day,
so midnight is the resident's midnight. Epoch ``i`` starts at ``start + i * epoch_s``; a
missing epoch is NaN (the hub's series has gaps when the wearable was off; a file with gaps is
refused earlier, by the reader).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Final

import numpy as np

from core.errors import ActigraphyError

__all__ = ["DAY_S", "HOUR_S", "EpochSeries"]

DAY_S: Final = 86_400
HOUR_S: Final = 3_600


@dataclass(frozen=True)
class EpochSeries:
    """Activity counts per epoch from ``start`` (local time), NaN where missing; optional lux."""

    start: datetime
    epoch_s: int
    activity: np.ndarray
    light: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None:
            raise ActigraphyError("EpochSeries.start must be a naive local time (wall clock)")
        if int(self.epoch_s) != self.epoch_s or self.epoch_s < 1 or HOUR_S % self.epoch_s:
            raise ActigraphyError(
                f"epoch length {self.epoch_s} s does not divide an hour; use e.g. 15, 30 or 60 s"
            )
        act = np.asarray(self.activity, dtype=float)
        if act.ndim != 1:
            raise ActigraphyError(f"activity must be one value per epoch, got shape {act.shape}")
        if np.any(act[np.isfinite(act)] < 0) or np.any(np.isinf(act)):
            raise ActigraphyError("activity counts must be finite and not negative")
        object.__setattr__(self, "activity", act)
        object.__setattr__(self, "epoch_s", int(self.epoch_s))
        if self.light is not None:
            lux = np.asarray(self.light, dtype=float)
            if lux.shape != act.shape:
                raise ActigraphyError(
                    f"light has {lux.size} values for {act.size} activity epochs"
                )
            object.__setattr__(self, "light", lux)

    @property
    def n(self) -> int:
        return int(self.activity.size)

    @property
    def days(self) -> float:
        """Length of the series in days (missing epochs included)."""
        return self.n * self.epoch_s / DAY_S

    @property
    def epochs_per_day(self) -> int:
        return DAY_S // self.epoch_s

    @property
    def phase_s(self) -> float:
        """Offset of the epoch grid from whole multiples of the epoch length after midnight."""
        return _seconds_of_day(self.start) % self.epoch_s

    def time_at(self, i: int) -> datetime:
        return self.start + timedelta(seconds=i * self.epoch_s)

    def seconds_of_day(self) -> np.ndarray:
        """Start of each epoch in seconds after its local midnight, (n,) float."""
        return (_seconds_of_day(self.start) + np.arange(self.n) * self.epoch_s) % DAY_S

    def day_offsets(self) -> np.ndarray:
        """Calendar day of each epoch, counted from the start's date, (n,) int."""
        return ((_seconds_of_day(self.start) + np.arange(self.n) * self.epoch_s) // DAY_S).astype(
            np.int64
        )

    def slot_of_day(self) -> np.ndarray:
        """Index of each epoch in the day's grid of ``epochs_per_day`` slots, (n,) int."""
        first = int((_seconds_of_day(self.start) - self.phase_s) // self.epoch_s)
        return (first + np.arange(self.n)) % self.epochs_per_day

    def first_date(self) -> date:
        return self.start.date()

    @classmethod
    def from_epochs(cls, starts: np.ndarray, activity: np.ndarray, *, epoch_s: int,
                    light: np.ndarray | None = None,
                    tz: tzinfo | None = None) -> EpochSeries:
        """A regular series from stored epochs: ``starts`` in Unix seconds, any order, gaps ok.

        Each epoch lands on the grid of the earliest one (rounded to the nearest slot; a later
        duplicate of a slot wins); slots with no epoch are NaN. Local time is the wall clock
        of the earliest epoch in ``tz`` (the machine's zone when None); the grid does not
        follow a daylight-saving change that happens inside the series.
        """
        t = np.asarray(starts, dtype=float)
        act = np.asarray(activity, dtype=float)
        if t.shape != act.shape or t.ndim != 1 or not t.size:
            raise ActigraphyError(f"{t.size} epoch starts for {act.size} activity values")
        order = np.argsort(t, kind="stable")
        t, act = t[order], act[order]
        slot = np.round((t - t[0]) / epoch_s).astype(np.int64)
        grid = np.full(int(slot[-1]) + 1, np.nan)
        grid[slot] = act
        lux = None
        if light is not None:
            lux = np.full(grid.size, np.nan)
            lux[slot] = np.asarray(light, dtype=float)[order]
        first = datetime.fromtimestamp(t[0], tz=tz) if tz else datetime.fromtimestamp(t[0])
        return cls(first.replace(tzinfo=None), epoch_s, grid, lux)

    def slice(self, lo: int, hi: int) -> EpochSeries:
        """Epochs ``lo:hi`` as a series of their own."""
        lo, hi = max(0, lo), min(self.n, hi)
        return EpochSeries(
            start=self.time_at(lo),
            epoch_s=self.epoch_s,
            activity=self.activity[lo:hi],
            light=None if self.light is None else self.light[lo:hi],
        )


def _seconds_of_day(t: datetime) -> float:
    return t.hour * HOUR_S + t.minute * 60 + t.second + t.microsecond / 1e6
