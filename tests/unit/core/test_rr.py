"""core.rr: RR cleaning (Lipponen & Tarvainen, Malik), window verdicts, the evenly sampled tachogram."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ContractError, WearableEdgeError
from core.rr import (
    ArtifactCounts,
    RRInvalidReason,
    RRQuality,
    clean_rr,
    cubic_spline,
    rr_verdict,
    tachogram,
)
from firmware_bridge.sim.rr import simulate_rr


def smooth_rr(n: int = 300, mean: float = 0.85) -> np.ndarray:
    """A clean series with no noise: breathing (0.25 Hz, ±40 ms) and a 0.1 Hz wave (±25 ms)."""
    t = np.arange(n) * mean
    return mean + 0.040 * np.sin(2 * np.pi * 0.25 * t) + 0.025 * np.sin(2 * np.pi * 0.1 * t + 1.0)


AT = (40, 95, 150, 210, 260)  # injection sites, far apart and away from the ends


# -- clean series ---------------------------------------------------------------------------
def test_a_clean_series_is_untouched() -> None:
    rr = smooth_rr()
    out = clean_rr(rr)
    assert out.counts == ArtifactCounts()
    np.testing.assert_array_equal(out.rr_s, rr)
    np.testing.assert_array_equal(out.t_s, np.cumsum(rr))
    assert not out.corrected.any() and out.event_kind == ()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_clean_simulated_strap_recording_is_almost_untouched(seed: int) -> None:
    # 20 min of a realistic wearer (noise, condition changes): the method may call a rare
    # natural extreme long/short, but nothing else, and well under 1 % of intervals
    labels = np.repeat(np.array([1, 2, 1, 4], np.int8), [420 * 700, 300 * 700, 180 * 700, 300 * 700])
    sim = simulate_rr(labels, seed=seed)
    out = clean_rr(sim.rr_s, sim.t_s)
    assert out.counts.ectopic == out.counts.missed == out.counts.extra == 0
    assert out.corrected_fraction < 0.01


# -- each kind, counted exactly -------------------------------------------------------------
def test_injected_ectopic_beats_are_counted_exactly_and_moved_back() -> None:
    base = smooth_rr()
    rr = base.copy()
    for j in AT:  # premature beat: 30 % early, the compensatory pause keeps the total
        shift = 0.3 * rr[j]
        rr[j] -= shift
        rr[j + 1] += shift
    out = clean_rr(rr)
    assert out.counts == ArtifactCounts(ectopic=len(AT))
    assert out.rr_s.size == rr.size
    for j in AT:  # the misplaced beat sits at its neighbours' midpoint
        assert out.rr_s[j] == pytest.approx((base[j] + base[j + 1]) / 2)
        assert out.rr_s[j + 1] == pytest.approx((base[j] + base[j + 1]) / 2)
        assert out.corrected[j] and out.corrected[j + 1]
    assert out.n_corrected == 2 * len(AT)
    # every other beat keeps its time, and so does the end of the series
    untouched = np.setdiff1d(np.arange(rr.size), AT)
    np.testing.assert_allclose(out.t_s[untouched], np.cumsum(rr)[untouched])
    np.testing.assert_allclose(out.event_t_s, np.cumsum(rr)[list(AT)])


def test_injected_missed_beats_are_counted_exactly_and_reinserted() -> None:
    base = smooth_rr()
    keep = np.ones(base.size, bool)
    rr = base.copy()
    for j in AT:  # the detector missed the beat ending interval j: j and j + 1 merge
        rr[j + 1] += rr[j]
        keep[j] = False
    rr = rr[keep]
    out = clean_rr(rr)
    assert out.counts == ArtifactCounts(missed=len(AT))
    assert out.rr_s.size == base.size
    real = np.setdiff1d(np.arange(base.size), AT)  # every beat but the inserted keeps its time
    np.testing.assert_allclose(out.t_s[real], np.cumsum(base)[real])
    for j in AT:  # the lost beat is put halfway
        assert out.rr_s[j] == out.rr_s[j + 1] == pytest.approx((base[j] + base[j + 1]) / 2)
    others = np.setdiff1d(np.arange(base.size), np.concatenate([AT, np.add(AT, 1)]))
    np.testing.assert_array_equal(out.rr_s[others], base[others])
    assert out.n_corrected == 2 * len(AT)


def test_two_missed_beats_in_one_interval_count_twice() -> None:
    base = smooth_rr()
    rr = np.concatenate([base[:100], [base[100:103].sum()], base[103:]])
    out = clean_rr(rr)
    assert out.counts == ArtifactCounts(missed=2)
    assert out.rr_s.size == base.size
    np.testing.assert_allclose(out.rr_s[100:103], base[100:103].sum() / 3)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_ectopic_and_missed_beats_of_a_realistic_strap_are_counted_exactly(seed: int) -> None:
    labels = np.repeat(np.array([1, 2, 4], np.int8), [600 * 700, 300 * 700, 300 * 700])
    sim = simulate_rr(labels, seed=seed, ectopic_per_min=1.0, missed_per_min=0.5)
    assert sim.ectopic.size > 10 and sim.missed.size > 5  # the test is about something
    out = clean_rr(sim.rr_s, sim.t_s)
    assert out.counts.ectopic == sim.ectopic.size
    assert out.counts.missed == sim.missed.size
    assert out.counts.extra == 0
    # and they are found where they were put
    found = {k: out.event_t_s[np.array(out.event_kind) == k] for k in ("ectopic", "missed")}
    np.testing.assert_allclose(found["ectopic"], sim.t_s[sim.ectopic])
    np.testing.assert_allclose(found["missed"], sim.t_s[sim.missed])


def test_extra_beats_are_removed() -> None:
    base = smooth_rr()
    parts = []
    for j, r in enumerate(base):  # a spurious beat splits interval j unevenly, either way round
        a = {40: 0.3, 95: 0.5, 150: 0.7, 210: 0.45, 260: 0.6}.get(j)
        parts += [r] if a is None else [a * r, (1 - a) * r]
    out = clean_rr(np.array(parts))
    assert out.counts == ArtifactCounts(extra=len(AT))
    np.testing.assert_allclose(out.rr_s, base)
    assert out.n_corrected == len(AT)


def test_long_and_short_intervals_are_interpolated_in_place() -> None:
    base = smooth_rr()
    rr = base.copy()
    rr[95] *= 1.4  # too long for one beat, too short for two
    rr[210] *= 0.65  # too short, with no compensatory pause
    out = clean_rr(rr)
    assert out.counts == ArtifactCounts(long_short=2)
    np.testing.assert_array_equal(out.t_s, np.cumsum(rr))  # interpolation moves no beat
    for j in (95, 210):  # linear interpolation between the neighbours
        assert out.rr_s[j] == pytest.approx((rr[j - 1] + rr[j + 1]) / 2)
    np.testing.assert_array_equal(np.flatnonzero(out.corrected), [95, 210])


# -- Malik ------------------------------------------------------------------------------------
def test_the_malik_rule_rejects_jumps_over_20_percent_and_interpolates() -> None:
    rr = np.full(40, 0.80)
    rr[10] = 0.97  # +21 %: rejected
    rr[20] = 0.95  # +19 %: kept
    rr[30] = 1.60  # a missed beat: rejected, and the next interval is judged against 0.80
    out = clean_rr(rr, method="malik")
    assert out.counts == ArtifactCounts(rejected=2)
    np.testing.assert_array_equal(np.flatnonzero(out.corrected), [10, 30])
    assert out.rr_s[10] == pytest.approx(0.80) and out.rr_s[30] == pytest.approx(0.80)
    assert out.rr_s[20] == 0.95 and out.rr_s.size == rr.size


def test_the_malik_rule_on_ectopic_beats_rejects_both_intervals() -> None:
    rr = smooth_rr()
    rr[100] -= 0.3 * rr[100]
    rr[101] += 0.3 * rr[100] / 0.7
    out = clean_rr(rr, method="malik")
    assert out.counts == ArtifactCounts(rejected=2)


def test_bad_input_raises_one_clear_error() -> None:
    for bad in ([0.8, float("nan"), 0.8], [0.8, 0.0, 0.8], [[0.8, 0.8]]):
        with pytest.raises(ContractError, match="rr"):
            clean_rr(bad)
    with pytest.raises(ContractError, match="method"):
        clean_rr(smooth_rr(), method="kubios")  # type: ignore[arg-type]
    with pytest.raises(WearableEdgeError, match="increasing"):
        clean_rr([0.8, 0.8, 0.8], t_s=[1.0, 1.0, 2.0])


def test_too_short_a_series_is_returned_unchanged() -> None:
    out = clean_rr([0.8, 1.6, 0.8])
    assert out.counts.total == 0 and out.rr_s.tolist() == [0.8, 1.6, 0.8]


# -- windows --------------------------------------------------------------------------------
def test_between_keeps_the_window_and_its_own_counts() -> None:
    rr = smooth_rr()
    for j in AT:
        shift = 0.3 * rr[j]
        rr[j] -= shift
        rr[j + 1] += shift
    out = clean_rr(rr)
    t = np.cumsum(rr)
    w = out.between(t[90], t[160])  # holds the events at 95 and 150
    assert w.counts == ArtifactCounts(ectopic=2)
    assert w.rr_s.size == 70 and w.t_s[0] == pytest.approx(t[90])


def test_a_clean_window_is_valid() -> None:
    out = clean_rr(smooth_rr())
    v = rr_verdict(out, 10.0, 70.0, contact=np.ones(60, bool))
    assert v.valid and v.reason is None and v.reasons == ()
    assert v.coverage == pytest.approx(1.0) and v.corrected_fraction == 0.0


def test_lost_contact_makes_a_window_invalid() -> None:
    out = clean_rr(smooth_rr())
    contact = np.ones(60, bool)
    contact[20:30] = False  # the strap slipped for ten of sixty reports
    v = rr_verdict(out, 10.0, 70.0, contact=contact)
    assert not v.valid and v.reason is RRInvalidReason.NO_CONTACT
    assert v.reason == "no_contact" and "83%" in v.detail


def test_a_gap_in_the_beats_makes_a_window_invalid() -> None:
    rr = smooth_rr()
    t = np.cumsum(rr)
    keep = (t < 30.0) | (t > 38.0)  # eight seconds of beats never arrived
    out = clean_rr(rr[keep], t[keep])
    v = rr_verdict(out, 10.0, 70.0)
    assert not v.valid and v.reason is RRInvalidReason.GAP
    assert v.reasons == (RRInvalidReason.GAP, RRInvalidReason.LOW_COVERAGE)
    assert v.coverage == pytest.approx(52 / 60, abs=0.02)


def test_too_many_corrections_make_a_window_invalid() -> None:
    rr = smooth_rr()
    t = np.cumsum(rr)
    inside = np.flatnonzero((t >= 10) & (t < 70))
    for j in inside[[5, 20, 35, 50]]:  # four ectopic beats in 60 s: 8 of ~70 intervals corrected
        shift = 0.3 * rr[j]
        rr[j] -= shift
        rr[j + 1] += shift
    out = clean_rr(rr)
    v = rr_verdict(out, 10.0, 70.0)
    assert out.counts.ectopic == 4
    assert not v.valid and v.reasons == (RRInvalidReason.ARTIFACTS,)
    assert v.counts == ArtifactCounts(ectopic=4) and "'ectopic': 4" in v.detail
    assert rr_verdict(out, 10.0, 70.0, quality=RRQuality(max_corrected_fraction=0.2)).valid


def test_an_empty_window_and_implausible_intervals() -> None:
    out = clean_rr(smooth_rr())
    v = rr_verdict(out, 1000.0, 1060.0)
    assert v.reasons == (RRInvalidReason.MISSING_MODALITY,)
    slow = clean_rr(np.full(60, 2.5))  # 24 bpm: no cleaning can make that a heartbeat
    assert rr_verdict(slow, 0.0, 120.0).reason is RRInvalidReason.IMPLAUSIBLE
    with pytest.raises(ContractError):
        RRQuality(max_corrected_fraction=1.5)


# -- tachogram ------------------------------------------------------------------------------
def test_the_tachogram_recovers_a_sinusoidal_modulation() -> None:
    # RR modulated at 0.2 Hz by ±50 ms, sampled at the beats, resampled evenly at 4 Hz
    mean, f0, amp = 0.8, 0.2, 0.050
    t = [0.0]
    while t[-1] < 300:  # beat times: each interval is the modulation at its ending beat
        nxt = t[-1] + mean
        for _ in range(20):
            nxt = t[-1] + mean + amp * np.sin(2 * np.pi * f0 * nxt)
        t.append(nxt)
    beats = np.array(t[1:])
    rr = np.diff(np.concatenate([[0.0], beats]))
    x = tachogram(rr, beats, start=10.0, n=1000)  # 250 s: 0.2 Hz falls on a bin
    assert x.shape == (1000,)
    spec = np.abs(np.fft.rfft(x - x.mean())) / x.size * 2
    freqs = np.fft.rfftfreq(x.size, 0.25)
    assert freqs[np.argmax(spec)] == pytest.approx(f0)
    assert spec.max() == pytest.approx(amp, rel=0.05)
    truth = mean + amp * np.sin(2 * np.pi * f0 * (10.0 + np.arange(1000) / 4))
    np.testing.assert_allclose(x, truth, atol=0.002)


def test_the_tachogram_grid_and_its_edges() -> None:
    rr = np.array([1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(tachogram(rr), np.ones(13))  # beats at 1..4 s: 13 points at 4 Hz
    x = tachogram([0.8, 1.0], [5.0, 6.0], start=4.0, n=12)  # held beyond the first/last beat
    assert x[0] == 0.8 and x[-1] == 1.0 and x[6] == pytest.approx(0.9)


def test_the_spline_is_the_natural_cubic_spline() -> None:
    interpolate = pytest.importorskip("scipy.interpolate")
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.uniform(0.5, 1.2, 50))
    y = rng.normal(0.8, 0.05, 50)
    xn = np.linspace(x[0], x[-1], 777)
    expected = interpolate.CubicSpline(x, y, bc_type="natural")(xn)
    np.testing.assert_allclose(cubic_spline(x, y, xn), expected, atol=1e-12)
    with pytest.raises(ContractError):
        cubic_spline([0.0, 0.0], [1.0, 2.0], [0.5])


# -- any input --------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    rr=st.lists(st.floats(0.3, 2.0), min_size=0, max_size=150),
    jitter=st.lists(st.floats(-0.02, 0.02), min_size=150, max_size=150),
    method=st.sampled_from(["lipponen", "malik"]),
)
def test_cleaning_any_series_keeps_the_clock(rr: list[float], jitter: list[float], method: str) -> None:
    # beat times as a device stamps them: near, not exactly, the sum of the intervals
    t = np.cumsum(rr) + np.asarray(jitter[: len(rr)]) * 0.1 if rr else np.zeros(0)
    if len(rr) > 1 and np.any(np.diff(t) <= 0):
        return
    out = clean_rr(rr, t if rr else None, method=method)  # type: ignore[arg-type]
    assert np.all(out.rr_s > 0) and np.all(np.diff(out.t_s) > 0)
    assert out.rr_s.shape == out.t_s.shape == out.corrected.shape
    if rr:
        assert out.t_s[-1] == t[-1]  # the last beat never moves
        assert out.rr_s.size == len(rr) + out.counts.missed - out.counts.extra
    assert out.counts.total == len(out.event_kind) == out.event_t_s.size
    assert out.n_corrected >= out.counts.total  # every counted beat corrected an interval
