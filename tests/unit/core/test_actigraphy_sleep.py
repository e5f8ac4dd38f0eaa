"""Sleep/wake scoring (Sadeh, Cole–Kripke, Webster) and the per-night summary rule."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from core.actigraphy import EpochSeries, cole_kripke, sadeh, score_sleep, summarize_nights
from core.actigraphy.sleep import night_windows, sleep_algorithm, webster_rescore
from core.errors import ActigraphyError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "actigraphy"
MIDNIGHT = datetime(2024, 3, 4)


def test_sadeh_still_is_sleep_busy_is_wake_and_the_edges_are_unscored() -> None:
    a = np.r_[np.zeros(30), np.full(30, 400.0)]
    s = sadeh(a)
    assert list(s[:5]) == [-1] * 5 and list(s[-5:]) == [-1] * 5
    assert np.all(s[5:20] == 1)
    assert np.all(s[35:55] == 0)


def test_sadeh_follows_the_published_formula_epoch_by_epoch() -> None:
    rng = np.random.default_rng(4)
    a = np.round(rng.exponential(40, 200))
    a[60] = 50.0  # the NAT boundary: 50 counts is inside [50, 100)
    s = sadeh(a)
    for j in range(5, 195):
        win = a[j - 5 : j + 6]
        nat = np.sum((win >= 50) & (win < 100))
        ps = (7.601 - 0.065 * win.mean() - 1.08 * nat - 0.056 * a[j - 5 : j + 1].std(ddof=1)
              - 0.703 * np.log(a[j] + 1))
        assert s[j] == (1 if ps > 0 else 0), j


def test_sadeh_leaves_epochs_near_a_missing_one_unscored() -> None:
    a = np.zeros(40)
    a[20] = np.nan
    s = sadeh(a)
    assert np.all(s[15:26] == -1)
    assert s[14] == 1 and s[26] == 1


def test_sadeh_agrees_with_pyactigraphy_on_a_real_recording() -> None:
    with (FIXTURES / "pyactigraphy_example_02.csv").open() as f:
        rows = list(csv.DictReader(f))
    a = np.array([float(r["activity"]) for r in rows])
    theirs = np.array([int(r["pyactigraphy_sadeh"]) for r in rows])
    ours = sadeh(a)
    scored = ours >= 0
    assert scored.sum() == a.size - 10
    agreement = np.mean(ours[scored] == theirs[scored])
    assert agreement >= 0.95
    assert agreement < 1.0  # the documented departures do show on real data


def test_cole_kripke_60s_formula_and_edges() -> None:
    rng = np.random.default_rng(5)
    a = np.round(rng.exponential(150, 120))
    s = cole_kripke(a, 60, rescore=False)
    assert list(s[:4]) == [-1] * 4 and list(s[-2:]) == [-1] * 2
    w = np.array([106, 54, 58, 76, 230, 74, 67])
    scaled = np.minimum(a / 100, 300)
    for t in range(4, 118):
        d = 0.001 * np.dot(w, scaled[t - 4 : t + 3])
        assert s[t] == (1 if d < 1 else 0), t


def test_cole_kripke_30s_scores_minutes_from_the_larger_half() -> None:
    a = np.zeros(40)  # 20 minutes of 30 s epochs
    a[20] = 2000.0  # minute 10: the first half is large
    s = cole_kripke(a, 30, rescore=False)
    assert s.size == 40 and np.all(s[:8] == -1) and np.all(s[-4:] == -1)
    assert s[20] == s[21] == 0  # the whole minute is wake: 0.0001*121*0.3*2000 >= 1
    assert s[18] == s[19] == 1
    shifted = cole_kripke(a[1:], 30, rescore=False, minute_offset=1)
    assert shifted[0] == -1 and shifted[19] == shifted[20] == 0


def test_cole_kripke_refuses_other_epoch_lengths() -> None:
    with pytest.raises(ActigraphyError, match="30 s or 60 s"):
        cole_kripke(np.zeros(100), 15)


@pytest.mark.parametrize(("minutes", "expected"), [
    # after 4 min of wake the first sleep minute becomes wake
    ("0000" + "1111111111111", "0000" + "0111111111111"),
    # after 10 min, the first 3; after 15 min, the first 4
    ("0" * 10 + "1" * 12, "0" * 10 + "000" + "1" * 9),
    ("0" * 15 + "1" * 12, "0" * 15 + "0000" + "1" * 8),
    # <= 6 min of sleep between >= 10 min of wake on both sides is wake
    ("0" * 10 + "111111" + "0" * 10, "0" * 26),
    # <= 10 min between >= 20 min
    ("0" * 20 + "1" * 10 + "0" * 20, "0" * 50),
    # the rules run in order: 7 min between 10 and 10 lose 3, then the 4 left are <= 6
    ("0" * 10 + "1" * 7 + "0" * 10, "0" * 27),
    # 12 min between 10 and 10 lose 3; the 9 left are a real bout
    ("0" * 10 + "1" * 12 + "0" * 10, "0" * 13 + "1" * 9 + "0" * 10),
])
def test_webster_rescoring_rules(minutes: str, expected: str) -> None:
    got = webster_rescore(np.array([int(c) for c in minutes], dtype=np.int8))
    assert "".join(map(str, got)) == expected


def test_webster_never_reaches_across_unscored_minutes() -> None:
    s = np.array([0] * 10 + [-1] + [1] * 5, dtype=np.int8)
    assert list(webster_rescore(s)) == list(s)


def test_score_sleep_picks_the_algorithm_by_epoch_length() -> None:
    assert sleep_algorithm(60).startswith("Sadeh")
    assert sleep_algorithm(30).startswith("Cole")
    fifteen = EpochSeries(MIDNIGHT, 15, np.zeros(4 * 60))  # summed to minutes for Sadeh
    s = score_sleep(fifteen)
    assert s.size == 240 and np.all(s[:20] == -1) and np.all(s[20:-20] == 1)
    assert np.all(s[-20:] == -1)
    with pytest.raises(ActigraphyError, match="divide a minute"):
        sleep_algorithm(120)


def _nights_series(days: int = 4) -> tuple[EpochSeries, np.ndarray]:
    """Sleep 23:00-07:00 every night with a 30 min awakening at 03:00; 60 s epochs."""
    n = days * 1440
    minute = np.arange(n) % 1440
    asleep = (minute >= 23 * 60) | (minute < 7 * 60)
    awake_bout = (minute >= 3 * 60) & (minute < 3 * 60 + 30)
    sleep = np.where(asleep & ~awake_bout, 1, 0).astype(np.int8)
    sleep[::97] = np.where(asleep[::97], sleep[::97], 1)  # daytime dozes of 1 min: not sleep
    act = np.where(sleep == 1, 0.0, 300.0)
    return EpochSeries(MIDNIGHT, 60, act), sleep


def test_night_summary_of_a_known_night() -> None:
    series, sleep = _nights_series()
    nights = summarize_nights(series, sleep, centre_s=3 * 3600)
    # windows 18:00-12:00; the first night window (3 Mar 18:00) starts before the data
    assert [n.night.isoformat() for n in nights] == ["2024-03-04", "2024-03-05", "2024-03-06"]
    n = nights[0]
    assert n.onset == datetime(2024, 3, 4, 23, 0) and n.wake == datetime(2024, 3, 5, 7, 0)
    assert n.tst_min == 8 * 60 - 30
    assert n.waso_min == 30 and n.awakenings == 1
    assert n.period_min == 480
    assert n.efficiency == pytest.approx(n.tst_min / 480)
    d = n.to_dict()
    assert d["sleep_onset"] == "2024-03-04T23:00" and d["awakenings"] == 1


def test_night_windows_follow_the_centre_and_stay_inside_the_series() -> None:
    series, _ = _nights_series(3)
    w = night_windows(series, 3 * 3600)
    assert [(night.isoformat(), lo, hi) for night, lo, hi in w] == [
        ("2024-03-04", 18 * 60, 36 * 60), ("2024-03-05", 42 * 60, 60 * 60)]
    day_sleeper = night_windows(series, 14 * 3600)  # a resident who rests in the afternoon
    assert day_sleeper[0][0].isoformat() == "2024-03-04" and day_sleeper[0][1] == 5 * 60


def test_a_night_with_too_little_scored_is_skipped_and_one_without_sleep_says_so() -> None:
    series, sleep = _nights_series()
    sleep = sleep.copy()
    sleep[1440 + 0 : 1440 + 300] = -1  # night 2 loses 5 h of its 18 h window: < 90 % scored
    sleep[2 * 1440 - 300 : 3 * 1440] = 0  # night 3 (5 Mar evening) has no sleep at all
    nights = {n.night.isoformat(): n for n in summarize_nights(series, sleep, centre_s=3 * 3600)}
    assert "2024-03-04" not in nights
    empty = nights["2024-03-05"]
    assert empty.onset is None and empty.tst_min == 0 and np.isnan(empty.efficiency)


def test_chained_sleep_bouts_and_the_main_period() -> None:
    series, sleep = _nights_series(3)
    sleep = sleep.copy()
    # an evening nap 19:00-19:40, 3 h before the night: a separate, smaller chain
    sleep[19 * 60 : 19 * 60 + 40] = 1
    n = summarize_nights(series, sleep, centre_s=3 * 3600)[0]
    assert n.onset == datetime(2024, 3, 4, 23, 0)
    # a 90-min wake in the night splits it; the longer part is the main period
    sleep[1440 + 60 : 1440 + 150] = 0  # 01:00-02:30 on 5 Mar
    n = summarize_nights(series, sleep, centre_s=3 * 3600)[0]
    assert n.onset == datetime(2024, 3, 5, 2, 30)
