"""Rhythm measures: known answers on synthetic days, and pyActigraphy's values on a real file."""

from __future__ import annotations

import csv
import itertools
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from core.actigraphy import EpochSeries, hhmm, rhythm_measures
from core.actigraphy.rhythm import (
    daily_profile,
    hourly_values,
    interdaily_stability,
    intradaily_variability,
    least_active,
    most_active,
    relative_amplitude,
)
from core.errors import ActigraphyError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "actigraphy"
MIDNIGHT = datetime(2024, 3, 4)


def square_days(days: int, epoch_s: int = 60, *, start: datetime = MIDNIGHT,
                active: tuple[float, float] = (8.0, 20.0), level: float = 100.0) -> EpochSeries:
    """``level`` counts from ``active[0]`` to ``active[1]`` o'clock every day, else zero."""
    n = days * 86400 // epoch_s
    t0 = start.hour * 3600 + start.minute * 60 + start.second
    hour = ((t0 + np.arange(n) * epoch_s) % 86400) / 3600.0
    act = np.where((hour >= active[0]) & (hour < active[1]), level, 0.0)
    return EpochSeries(start, epoch_s, act)


def load_fixture() -> tuple[EpochSeries, np.ndarray, dict]:
    with (FIXTURES / "pyactigraphy_example_02.csv").open() as f:
        rows = list(csv.DictReader(f))
    meta = json.loads((FIXTURES / "pyactigraphy_example_02.json").read_text())
    series = EpochSeries(datetime.fromisoformat(rows[0]["time"]), meta["epoch_s"],
                         np.array([float(r["activity"]) for r in rows]))
    sadeh = np.array([int(r["pyactigraphy_sadeh"]) for r in rows])
    return series, sadeh, meta


def test_the_same_square_wave_every_day_is_perfectly_stable() -> None:
    m = rhythm_measures(square_days(7))
    assert pytest.approx(1.0) == m.IS
    # 168 hourly values of 0/100 with two steps of 100 a day
    x = np.tile(np.r_[np.zeros(8), np.full(12, 100.0), np.zeros(4)], 7)
    d2 = np.sum(np.diff(x) ** 2)
    expected_iv = x.size * d2 / ((x.size - 1) * np.sum((x - x.mean()) ** 2))
    assert pytest.approx(expected_iv) == m.IV
    assert pytest.approx(168 * 14e4 / (167 * 168 * 2500)) == m.IV
    assert m.L5 == 0.0 and m.M10 == 100.0 and m.RA == 1.0
    assert hhmm(m.L5_start) == "00:00"  # the first of the all-zero windows
    assert hhmm(m.M10_start) == "08:00"
    assert m.hours == 168


def test_noise_has_no_daily_pattern_and_high_fragmentation() -> None:
    rng = np.random.default_rng(0)
    m = rhythm_measures(EpochSeries(MIDNIGHT, 60, rng.exponential(50, 14 * 1440)))
    assert m.IS < 0.1  # only the sampling error of 14-day hour means: about 1/14
    assert 1.8 < m.IV < 2.2


def test_l5_wraps_midnight_and_m10_is_the_active_day() -> None:
    # rest 22:00-06:00, deepest 23:30-04:30: L5 must start at 23:30 and cross midnight
    n = 5 * 1440
    hour = (np.arange(n) % 1440) / 60.0
    act = np.full(n, 200.0)
    act[(hour >= 22) | (hour < 6)] = 20.0
    act[(hour >= 23.5) | (hour < 4.5)] = 1.0
    m = rhythm_measures(EpochSeries(MIDNIGHT, 60, act))
    assert hhmm(m.L5_start) == "23:30"
    assert pytest.approx(1.0) == m.L5
    assert pytest.approx(200.0) == m.M10
    assert pytest.approx(199 / 201) == m.RA


def test_start_times_keep_the_epoch_grid_phase() -> None:
    start = datetime(2024, 3, 4, 13, 58, 30)  # 60 s epochs at hh:mm:30
    m = rhythm_measures(square_days(5, start=start, active=(9.5, 21.0)))
    assert m.M10_start == pytest.approx(9.5 * 3600 + 30)
    assert m.IS > 0.99


def test_hour_bins_from_the_clock_or_from_the_start() -> None:
    at_midnight = square_days(4)
    a = rhythm_measures(at_midnight)
    b = rhythm_measures(at_midnight, hour_origin="start")
    assert (a.IS, a.IV) == (b.IS, b.IV)
    offset = square_days(4, start=MIDNIGHT + timedelta(minutes=30))
    clock, _ = hourly_values(offset)
    fromstart, _ = hourly_values(offset, origin="start")
    assert np.isnan(clock[0]) and np.isfinite(fromstart[0])  # 00:30-01:00 is not a clock hour
    with pytest.raises(ActigraphyError, match="hour bins"):
        hourly_values(offset, origin="noon")


def test_missing_hours_are_left_out_not_zero_filled() -> None:
    s = square_days(6)
    act = s.activity.copy()
    act[2 * 1440 + 600 : 2 * 1440 + 900] = np.nan  # five hours of day 3 missing
    m = rhythm_measures(EpochSeries(s.start, 60, act))
    assert pytest.approx(1.0) == m.IS
    assert m.hours == 6 * 24 - 5
    values, _ = hourly_values(EpochSeries(s.start, 60, act))
    assert np.isfinite(intradaily_variability(values))


def test_degenerate_inputs_give_nan_not_an_exception() -> None:
    assert np.isnan(interdaily_stability(np.full(48, 3.0), np.arange(48) % 24))
    assert np.isnan(intradaily_variability(np.array([np.nan, 1.0, np.nan, 2.0])))


def test_fewer_than_two_days_is_refused() -> None:
    with pytest.raises(ActigraphyError, match="at least 2 days"):
        rhythm_measures(square_days(1))


def test_epoch_lengths_that_do_not_divide_an_hour_are_refused() -> None:
    with pytest.raises(ActigraphyError, match="divide an hour"):
        EpochSeries(MIDNIGHT, 7, np.zeros(10))


def test_against_pyactigraphy_on_a_real_recording() -> None:
    series, _, meta = load_fixture()
    ref = meta["pyactigraphy"]
    ours = rhythm_measures(series)
    for key in ("RA", "L5", "M10"):  # the same computation: equal to rounding
        assert getattr(ours, key) == pytest.approx(ref[key], rel=1e-9), key
    for key in ("IS", "IV"):  # within the 8 % target
        assert getattr(ours, key) == pytest.approx(ref[key], rel=0.08), key
    assert ours.L5_start == ref["L5_start_s"]
    assert ours.M10_start == ref["M10_start_s"]
    # pyActigraphy's IS is ours with sample variances: the factor explains the gap
    n, p = ours.hours, 24
    assert ref["IS"] > ours.IS
    assert ours.IS * (n - 1) / n * p / (p - 1) == pytest.approx(ref["IS"], rel=0.02)


def test_against_pyactigraphy_live_when_it_is_installed() -> None:
    pytest.importorskip("pyActigraphy")
    from benchmarks.rhythms import compare_recording, extract

    ref = extract(["example_01.AWD"])["recordings"][0]
    row = compare_recording(ref)
    assert row["passed"], row


# -- an independent reference: the published formulas as plain loops ---------------------------
def _reference(series: EpochSeries, origin: str) -> dict[str, float]:
    """van Someren's measures straight from their definitions (module docstring), one epoch,
    hour and slot at a time: no bincount, no cumulative sums, no shared helpers."""
    e, n = series.epoch_s, series.n
    per_hour = 3600 // e
    times = [series.start + timedelta(seconds=i * e) for i in range(n)]
    act = series.activity
    if origin == "clock":
        keys = [(t.date(), t.hour) for t in times]
        first = datetime.combine(keys[0][0], datetime.min.time()) + timedelta(hours=keys[0][1])
        last = datetime.combine(keys[-1][0], datetime.min.time()) + timedelta(hours=keys[-1][1])
        hours = [first + timedelta(hours=k) for k in range(int((last - first).total_seconds()
                                                               // 3600) + 1)]
        bins = {(h.date(), h.hour): [] for h in hours}
        for k, a in zip(keys, act, strict=True):
            bins[k].append(a)
        groups = [h.hour for h in hours]
    else:
        n_bins = (n - 1) // per_hour + 1
        bins = {k: list(act[k * per_hour:(k + 1) * per_hour]) for k in range(n_bins)}
        groups = [k % 24 for k in range(n_bins)]
    values = [float(np.mean(v)) if len(v) == per_hour and all(np.isfinite(v)) else math.nan
              for v in bins.values()]
    x = [v for v in values if not math.isnan(v)]
    mean = sum(x) / len(x)
    total = sum((v - mean) ** 2 for v in x)
    by_hour: dict[int, list[float]] = {}
    for v, g in zip(values, groups, strict=True):
        if not math.isnan(v):
            by_hour.setdefault(g, []).append(v)
    is_ = sum(len(v) * (sum(v) / len(v) - mean) ** 2 for v in by_hour.values()) / total
    pairs = [(a, b) for a, b in itertools.pairwise(values)
             if not (math.isnan(a) or math.isnan(b))]
    iv = len(x) * sum((b - a) ** 2 for a, b in pairs) / (len(pairs) * total)
    # the average day at epoch resolution: slot k starts k * e + phase seconds after midnight
    slots = 86400 // e
    phase = (times[0].hour * 3600 + times[0].minute * 60 + times[0].second) % e
    per_slot: list[list[float]] = [[] for _ in range(slots)]
    for t, a in zip(times, act, strict=True):
        if np.isfinite(a):
            sod = t.hour * 3600 + t.minute * 60 + t.second
            per_slot[int((sod - phase) // e)].append(a)
    profile = [sum(v) / len(v) if v else math.nan for v in per_slot]

    def extreme(hours: int, lowest: bool) -> tuple[float, float]:
        width = hours * 3600 // e
        best, at = math.nan, math.nan
        for k in range(slots):
            window = [profile[(k + j) % slots] for j in range(width)]
            seen = [w for w in window if not math.isnan(w)]
            if len(seen) < 0.5 * width:
                continue
            m = sum(seen) / len(seen)
            if math.isnan(best) or (m < best if lowest else m > best):
                best, at = m, (k * e + phase) % 86400
        return best, at

    l5, l5_start = extreme(5, True)
    m10, m10_start = extreme(10, False)
    return {"IS": is_, "IV": iv, "L5": l5, "M10": m10, "L5_start": l5_start,
            "M10_start": m10_start, "RA": (m10 - l5) / (m10 + l5), "hours": len(x)}


@pytest.mark.parametrize("origin", ["clock", "start"])
@pytest.mark.parametrize(("seed", "start", "epoch_s"), [
    (1, datetime(2024, 3, 4, 13, 17), 300), (2, datetime(2024, 3, 4, 0, 0, 30), 60),
    (3, datetime(2024, 3, 9, 22, 2), 120),
])
def test_measures_equal_the_published_formulas_as_loops(
    origin: str, seed: int, start: datetime, epoch_s: int
) -> None:
    rng = np.random.default_rng(seed)
    n = int(3.4 * 86400 / epoch_s)
    sod = ((start.hour * 3600 + start.minute * 60 + start.second) + np.arange(n) * epoch_s) % 86400
    act = rng.gamma(2.0, 20.0, n) * (1.5 + np.sin(2 * np.pi * (sod / 86400 - 0.3)))
    act[rng.random(n) < 0.01] = np.nan  # lost epochs
    gap = rng.integers(0, n - 400)
    act[gap:gap + 150] = np.nan  # a wear gap of hours
    series = EpochSeries(start, epoch_s, act)
    got = rhythm_measures(series, hour_origin=origin).to_dict()
    want = _reference(series, origin)
    for k in ("IS", "IV", "L5", "M10", "RA"):
        assert got[k] == pytest.approx(want[k], rel=1e-9), k
    assert got["hours"] == want["hours"] and got["days"] == series.days
    assert (got["L5_start"], got["M10_start"]) == (hhmm(want["L5_start"]),
                                                   hhmm(want["M10_start"]))
    # to_dict is the measures with the start times as HH:MM, nothing else
    assert set(got) == {"IS", "IV", "RA", "L5", "M10", "L5_start", "M10_start", "hours", "days"}


def test_undefined_measures_are_nan_and_the_day_limit_is_inclusive() -> None:
    assert math.isnan(interdaily_stability(np.array([1.0, np.nan]), np.array([0, 1])))
    assert math.isnan(intradaily_variability(np.array([1.0, np.nan, 2.0])))  # no valid pair
    assert math.isnan(intradaily_variability(np.array([4.0, 4.0])))  # no variance
    assert interdaily_stability(np.array([1.0, 2.0]), np.array([0, 1])) == pytest.approx(1.0)
    assert intradaily_variability(np.array([1.0, 2.0])) == pytest.approx(4.0)  # 2·1/(1·0.5)
    assert math.isnan(relative_amplitude(0.0, 0.0))
    assert relative_amplitude(1.0, 0.0) == 1.0
    assert math.isnan(least_active(np.full(48, np.nan), 1800)[0])
    assert math.isnan(most_active(np.full(48, np.nan), 1800)[1])
    assert rhythm_measures(square_days(2)).days == 2.0  # exactly the minimum is enough
    assert hhmm(86399.0) == "00:00" and hhmm(3600 * 23 + 59 * 60) == "23:59"


def test_hourly_values_and_the_daily_profile_by_hand() -> None:
    nan = math.nan
    # 30-min epochs from 22:30: 22:30, 23:00, 23:30, 00:00, 00:30 (lost)
    s = EpochSeries(datetime(2024, 3, 4, 22, 30), 1800, np.array([1.0, 2.0, 3.0, 4.0, nan]))
    values, group = hourly_values(s)  # clock hours 22 (half), 23, 0 (half lost)
    assert group.tolist() == [22, 23, 0]
    np.testing.assert_array_equal(values, [nan, 2.5, nan])
    values, group = hourly_values(s, origin="start")  # whole hours from 22:30
    assert group.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(values, [1.5, 3.5, nan])
    want = np.full(48, nan)
    want[[45, 46, 47, 0]] = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(daily_profile(s), want)
    # slots after the last epoch of the day are there, empty
    early = daily_profile(EpochSeries(MIDNIGHT, 1800, np.array([1.0, 2.0, 5.0, 7.0])))
    assert early.shape == (48,) and early[3] == 7.0 and np.isnan(early[4:]).all()


def _brute_extreme(profile: np.ndarray, width: int, lowest: bool) -> tuple[float, int]:
    best, at = math.nan, -1
    for k in range(profile.size):
        window = [profile[(k + j) % profile.size] for j in range(width)]
        seen = [w for w in window if not math.isnan(w)]
        if len(seen) < 0.5 * width:  # at least half the window: exactly half counts
            continue
        m = sum(seen) / len(seen)
        if at < 0 or (m < best if lowest else m > best):
            best, at = m, k
    return best, at


@pytest.mark.parametrize("seed", range(4))
def test_l5_and_m10_of_a_profile_with_holes_equal_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    profile = rng.uniform(1.0, 50.0, 48)  # 30-min slots: L5 is 10 wide, M10 20
    profile[rng.random(48) < 0.3] = np.nan
    profile[5:10] = np.nan  # 5 of 10: windows exactly half covered
    for fn, hours, lowest in ((least_active, 5, True), (most_active, 10, False)):
        value, start = fn(profile, 1800, 600.0)
        want, k = _brute_extreme(profile, hours * 2, lowest)
        assert value == pytest.approx(want, rel=1e-12)
        assert start == (k * 1800 + 600.0) % 86400
    # no phase given: the grid's own
    assert least_active(profile, 1800)[1] % 1800 == 0 == most_active(profile, 1800)[1] % 1800


def test_the_extreme_window_may_start_at_the_first_slot() -> None:
    profile = np.full(48, 50.0)
    profile[:10] = [1.0, 2.0, np.nan, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0]
    assert least_active(profile, 1800) == (pytest.approx(13 / 9), 0.0)


def test_an_empty_series_has_no_hours() -> None:
    values, group = hourly_values(EpochSeries(MIDNIGHT, 60, np.zeros(0)))
    assert values.shape == (0,) and group.shape == (0,)
