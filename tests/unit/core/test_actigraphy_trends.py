"""Personal baselines and trend events, on hand-made tables and on a simulated resident."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from core.actigraphy import (
    DEFAULT_RULES,
    MEASURES,
    DailyMeasures,
    TrendRule,
    daily_table,
    detect_trend_events,
    personal_baseline,
    rhythm_measures,
    score_sleep,
)
from core.errors import ActigraphyError
from tests.fakes.actigraphy import resident_epochs

DAY0 = date(2024, 3, 4)
WASO = TrendRule("waso_min", "rising", 15.0, "wake after sleep onset rising")
TST = TrendRule("total_sleep_min", "falling", 30.0, "total sleep time shrinking")


def table(key: str, values: list[float]) -> list[DailyMeasures]:
    return [DailyMeasures(DAY0 + timedelta(days=i), {key: v}) for i, v in enumerate(values)]


def test_the_band_is_median_plus_minus_k_scaled_mad_with_floors() -> None:
    rows = table("waso_min", [20, 30, 40, 30, 35, 25, 30])
    b = personal_baseline(rows, WASO, baseline_days=7, k=2.5)
    assert b is not None and b.median == 30 and b.mad == 5
    assert b.high == pytest.approx(30 + 2.5 * 1.4826 * 5)
    flat = personal_baseline(table("waso_min", [0.0] * 7), WASO)
    assert flat is not None and (flat.low, flat.high) == (-15.0, 15.0)  # the rule's floor
    big = personal_baseline(table("total_sleep_min", [480.0] * 7), TST)
    assert big is not None and big.low == pytest.approx(480 - 48)  # 10 % of the median


def test_too_few_known_baseline_days_give_no_band() -> None:
    rows = table("waso_min", [30, math.nan, math.nan, math.nan, math.nan, 40, 35, *[500] * 5])
    assert personal_baseline(rows, WASO) is None
    assert detect_trend_events(rows, resident="r", rules=[WASO]) == []


def test_an_event_after_k_days_out_then_silence_until_back_in_band() -> None:
    base = [30, 32, 28, 31, 29, 30, 30]
    later = [90, 95, 100, 110, 105, 30, 31, 95, 96, 97]
    rows = table("waso_min", base + later)
    events = detect_trend_events(rows, resident="ada", rules=[WASO], baseline_days=7,
                                 run_days=3)
    assert [(e.first_day, e.day, e.days) for e in events] == [
        (DAY0 + timedelta(days=7), DAY0 + timedelta(days=9), 3),
        (DAY0 + timedelta(days=14), DAY0 + timedelta(days=16), 3),
    ]
    e = events[0]
    assert e.resident == "ada" and e.direction == "rising" and e.value == 100
    assert e.values == (90, 95, 100)
    assert "3 days in a row above the resident's band" in e.message


def test_the_direction_matters_and_unknown_days_break_a_run() -> None:
    base = [480.0] * 7
    rows = table("total_sleep_min", [*base, 600, 610, 620, 300, math.nan, 300, 300, 300])
    events = detect_trend_events(rows, resident="r", rules=[TST], run_days=3)
    assert len(events) == 1  # more sleep is not 'shrinking'; the NaN restarts the count
    assert events[0].first_day == DAY0 + timedelta(days=12)


def test_a_table_out_of_order_is_refused() -> None:
    rows = table("waso_min", [1.0, 2.0])
    with pytest.raises(ActigraphyError, match="increasing day order"):
        detect_trend_events(rows[::-1], resident="r")


def test_a_simulated_resident_whose_nights_fragment_from_day_10() -> None:
    series = resident_epochs(14, fragmented_from=10, less_daylight_from=9, seed=1)
    sleep = score_sleep(series)
    rhythm = rhythm_measures(series)
    rows = daily_table(series, sleep, centre_s=rhythm.L5_midpoint)
    assert [r.day for r in rows] == [DAY0 + timedelta(days=i) for i in range(14)]
    assert set(rows[0].values) == set(MEASURES)
    waso = np.array([r.get("waso_min") for r in rows])
    assert np.nanmedian(waso[:9]) < 30 and np.all(waso[10:13] > 60)
    assert rows[3].get("daylight_min") == 120 and rows[12].get("daylight_min") == 0
    assert 0.5 < rows[6].get("IS") <= 1.0
    assert math.isnan(rows[0].get("IS"))  # one day is not a rhythm
    events = detect_trend_events(rows, resident="resident-1", rules=DEFAULT_RULES,
                                 baseline_days=7, run_days=3)
    kinds = {(e.measure, e.direction) for e in events}
    assert ("waso_min", "rising") in kinds
    assert ("daylight_min", "falling") in kinds
    first_waso = min(e.day for e in events if e.measure == "waso_min")
    # the small hours of day 10 end the night of day 9: nights 9, 10 and 11 are fragmented
    assert first_waso == DAY0 + timedelta(days=11)
    steady = resident_epochs(14, seed=1)
    steady_rows = daily_table(steady, score_sleep(steady), centre_s=rhythm.L5_midpoint)
    assert not [e for e in detect_trend_events(steady_rows, resident="r")
                if e.measure in ("waso_min", "daylight_min")]
