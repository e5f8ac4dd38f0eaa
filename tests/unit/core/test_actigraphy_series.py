"""The epoch series: its clock grid, and rebuilding one from stored epochs with gaps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from core.actigraphy import EpochSeries
from core.errors import ActigraphyError

CET = timezone(timedelta(hours=1))


def test_grid_of_a_series_that_starts_off_the_hour() -> None:
    s = EpochSeries(datetime(2024, 3, 4, 23, 59, 30), 30, np.zeros(4))
    assert list(s.seconds_of_day()) == [86370.0, 0.0, 30.0, 60.0]
    assert list(s.day_offsets()) == [0, 1, 1, 1]
    assert list(s.slot_of_day()) == [2879, 0, 1, 2]
    assert s.time_at(2) == datetime(2024, 3, 5, 0, 0, 30)


def test_from_epochs_fills_gaps_with_nan_in_local_time() -> None:
    t0 = datetime(2024, 3, 4, 22, 0, tzinfo=CET).timestamp()
    starts = np.array([t0 + 120, t0, t0 + 60, t0 + 300.4])  # unordered, 2 missing, jitter
    s = EpochSeries.from_epochs(starts, np.array([3.0, 1.0, 2.0, 6.0]), epoch_s=60,
                                light=np.array([30.0, 10.0, 20.0, 60.0]), tz=CET)
    assert s.start == datetime(2024, 3, 4, 22, 0)
    np.testing.assert_array_equal(s.activity, [1, 2, 3, np.nan, np.nan, 6])
    assert s.light is not None and s.light[5] == 60.0


def test_bad_series_are_refused() -> None:
    with pytest.raises(ActigraphyError, match="naive local time"):
        EpochSeries(datetime(2024, 1, 1, tzinfo=CET), 60, np.zeros(3))
    with pytest.raises(ActigraphyError, match="not negative"):
        EpochSeries(datetime(2024, 1, 1), 60, np.array([1.0, -2.0]))
    with pytest.raises(ActigraphyError, match="light has 2 values"):
        EpochSeries(datetime(2024, 1, 1), 60, np.zeros(3), np.zeros(2))
    with pytest.raises(ActigraphyError, match="epoch starts"):
        EpochSeries.from_epochs(np.zeros(2), np.zeros(3), epoch_s=60)
