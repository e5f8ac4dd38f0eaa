"""core.signal.beats and the beats path of the window assembler: RR intervals -> windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.contract import HR_MODALITIES, BeatRules, InputContract, Normalization
from core.hrv import hrv_time_domain
from core.rr import clean_rr
from core.signal import (
    InvalidReason,
    WindowAssembler,
    compute_calibration,
    window_margin_s,
    windows_from_streams,
)
from core.signal.beats import ContactSteps, beat_window
from firmware_bridge.sim.rr import RRPerson, simulate_rr

CLASSES = ("baseline", "stress", "amusement")


def hr_contract(**kw: object) -> InputContract:
    return InputContract(HR_MODALITIES, CLASSES, **kw)  # type: ignore[arg-type]


def beats(minutes: float = 10.0, *, seed: int = 0, **kw: float) -> tuple[np.ndarray, np.ndarray]:
    codes = np.ones(round(minutes * 60 * 10), np.int8)
    sim = simulate_rr(codes, 10.0, seed=seed, **kw)  # type: ignore[arg-type]
    return sim.t_s, sim.rr_s


def test_margin_is_the_cleaning_context_and_the_tachogram_fills_the_window() -> None:
    c = hr_contract(beats=BeatRules(context_s=12.0))
    assert window_margin_s(c, "rr") == 12.0
    t, rr = beats(3.0)
    ws = windows_from_streams({"rr": (t, rr)}, c)  # no calibration: uncalibrated, but cut
    good = [w for w in ws if w.reason is InvalidReason.UNCALIBRATED]
    assert good and all(w.data["rr"].shape == (1, 240) for w in ws)
    # the tachogram is the interval's value (seconds) between beats: within the beats' range
    w = good[3]
    inside = rr[(t >= w.start) & (t < w.end)]
    assert inside.min() - 0.01 <= w.data["rr"].min() and w.data["rr"].max() <= inside.max() + 0.01


def test_derived_heart_rate_and_rmssd_are_those_of_the_cleaned_window() -> None:
    c = hr_contract(normalization=Normalization(kind="none"))
    t, rr = beats(4.0, ectopic_per_min=1.0)
    ws = windows_from_streams({"rr": (t, rr)}, c)
    w = next(w for w in ws[5:] if w.valid)
    assert set(w.derived) == {"hr_bpm", "rmssd_ms"}
    mg = window_margin_s(c, "rr")
    near = (t >= w.start - mg) & (t < w.end + mg)
    cleaned = clean_rr(rr[near], t[near]).between(w.start, w.end)
    td = hrv_time_domain(cleaned.rr_s)
    assert w.derived["hr_bpm"] == pytest.approx(60000.0 / td["MeanNN"])
    assert w.derived["rmssd_ms"] == pytest.approx(td["RMSSD"])
    assert 60 < w.derived["hr_bpm"] < 80  # the simulated wearer rests at 68 bpm


def test_a_window_with_too_many_corrections_is_invalid_artifacts() -> None:
    c = hr_contract(normalization=Normalization(kind="none"))
    t, rr = beats(4.0)
    rr, t = rr.copy(), t.copy()
    # six ectopic beats inside [120, 180): a short-long pair each, the total kept
    for j in np.flatnonzero((t > 122) & (t < 178))[::12][:6]:
        shift = 0.3 * rr[j]
        rr[j] -= shift
        rr[j + 1] += shift
        t[j] -= shift
    ws = {w.start: w for w in windows_from_streams({"rr": (t, rr)}, c)}
    w = ws[120.0]
    assert not w.valid and w.reason is InvalidReason.ARTIFACTS
    assert "ectopic" in w.detail and w.detail.startswith("rr: ")
    assert ws[0.0].valid  # far from them: clean


def test_gaps_contact_and_zero_intervals_have_their_reasons() -> None:
    c = hr_contract(normalization=Normalization(kind="none"))
    t, rr = beats(4.0)
    hole = (t > 70) & (t < 76)  # 6 s without beats: a lost stretch, not missed beats
    asm = WindowAssembler(c, max_buffer_s=None)  # four minutes pushed at once: no stall cap
    asm.push("rr", t[~hole], rr[~hole])
    asm.push_contact(0.0, True)
    asm.push_contact(150.0, False)  # off the skin from 150 s to 175 s
    asm.push_contact(175.0, True)
    ws = {w.start: w for w in asm.flush()}
    assert ws[40.0].reason is InvalidReason.GAP and "without beats" in ws[40.0].detail
    assert ws[120.0].reason is InvalidReason.NO_CONTACT  # 25 of 60 s without contact
    assert ws[0.0].valid and ws[180.0].valid
    # an interval of 0 s (a glitch on the wire) cannot be cleaned: implausible, counted
    r = beat_window(HR_MODALITIES[0], np.array([1.0, 1.8, 2.6, 3.4, 4.2]),
                    np.array([0.8, 0.8, 0.0, 0.8, 0.8]), 0.0, 5.0, 20, BeatRules())
    assert r.problems[0][0] is InvalidReason.IMPLAUSIBLE and "1 intervals" in r.problems[0][1]


def test_no_contact_is_the_most_severe_reason() -> None:
    c = hr_contract(normalization=Normalization(kind="none"))
    t, rr = beats(3.0)
    keep = ~((t > 60) & (t < 70))
    asm = WindowAssembler(c, max_buffer_s=None)
    asm.push_contact(0.0, False)
    asm.push("rr", t[keep], rr[keep])
    w = {w.start: w for w in asm.flush()}[30.0]
    assert w.reasons[:2] == (InvalidReason.NO_CONTACT, InvalidReason.GAP)


def test_streaming_any_chunking_equals_the_offline_path() -> None:
    c = hr_contract()
    t, rr = beats(9.0, seed=3, ectopic_per_min=0.5, missed_per_min=0.2)
    cal = compute_calibration({"rr": (t, rr)}, c)
    offline = windows_from_streams({"rr": (t, rr)}, c, calibration=cal)
    asm = WindowAssembler(c, calibration=cal)
    rng = np.random.default_rng(0)
    got = []
    i = 0
    while i < t.size:  # notifications of 1-3 beats, as a strap sends them
        k = int(rng.integers(1, 4))
        asm.push("rr", t[i:i + k], rr[i:i + k])
        got += asm.pop_ready()
        i += k
    got += asm.flush()
    assert [w.start for w in got] == [w.start for w in offline]
    for a, b in zip(got, offline, strict=True):
        assert a.reasons == b.reasons and a.derived == b.derived
        np.testing.assert_array_equal(a.data["rr"], b.data["rr"])
    assert sum(w.valid for w in got) > 80


def test_calibration_of_rr_is_the_median_and_spread_of_the_first_minutes() -> None:
    c = hr_contract()
    t, rr = beats(8.0, person=RRPerson(resting_hr_bpm=60.0))  # type: ignore[arg-type]
    cal = compute_calibration({"rr": (t, rr)}, c)
    first = rr[t < t[0] + 300.0]
    assert cal.center["rr"][0] == pytest.approx(np.median(first))
    assert 0.9 < cal.center["rr"][0] < 1.1 and 0.01 < cal.scale["rr"][0] < 0.2


def test_contact_steps_hold_until_the_next_report_and_stay_bounded() -> None:
    s = ContactSteps()
    assert s.samples(0.0, 10.0) is None  # a device that says nothing about contact
    s.push(5.0, True)
    s.push(5.0, False)  # not later than the last report: ignored
    s.push(6.0, True)  # same state: nothing to add
    s.push(8.0, False)
    got = s.samples(0.0, 10.0)
    assert got is not None and got.tolist() == [True, True, True, False, False]  # 5..9 s
    s.drop_before(9.0)
    assert len(s) == 1 and s.samples(9.0, 12.0).tolist() == [False] * 3  # type: ignore[union-attr]
    s.push(math.nan, True)
    assert len(s) == 1
