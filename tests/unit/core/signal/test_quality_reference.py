"""core.signal.quality against references written from its documented rules, one loop at a
time, with none of its shortcuts (the ptp bound before the std, searchsorted, run edges).

- ``max_gap``: every stretch of ``[start, end)`` without a sample, clipped to the window;
  the longest (on a tie: the leading, the trailing, then the first inside), and where it
  begins: the sample it follows (``start`` for a stretch before the first sample).
- ``run_samples``: True samples in runs of at least ``min_run``.
- ``median_spacing``: the upper median of the diffs taken with a fixed stride.
- ``quality_problems``: FLAT when a channel's std is below ``flat_std * max(1, |extreme|)``;
  SATURATED when more than the fraction of samples lie outside the valid range, or sit in
  runs of at least ``min_run`` at the channel's min or max (a channel with enough levels).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.contract import Modality
from core.signal import InvalidReason
from core.signal.quality import (
    MEDIAN_SPACING_SAMPLES,
    QualityThresholds,
    max_gap,
    median_spacing,
    quality_problems,
    run_samples,
)


def ref_max_gap(t: list[float], start: float, end: float) -> tuple[float, float]:
    # on a tie the stretch at a window edge wins (leading, then trailing), then the first inside
    stretches = [(start, t[0]), (t[-1], end), *itertools.pairwise(t)]
    best, at = 0.0, start
    for a, b in stretches:
        lo, hi = max(a, start), min(b, end)
        if hi - lo > best:
            best, at = hi - lo, a  # where the stretch begins: the sample it follows
    return best, at


def ref_run_samples(mask: list[bool], min_run: int) -> int:
    total = run = 0
    for v in [*mask, False]:
        if v:
            run += 1
        else:
            total += run if run >= min_run else 0
            run = 0
    return total


times = st.lists(st.integers(0, 400), min_size=1, max_size=40, unique=True).map(
    lambda xs: [x / 4 for x in sorted(xs)])  # quarter seconds: exact sums, ties possible


@settings(max_examples=300, deadline=None)
@given(times, st.integers(-20, 120), st.integers(1, 120))
def test_max_gap_equals_the_longest_clipped_stretch(t: list[float], a: int, length: int) -> None:
    start, end = a, a + length
    got = max_gap(np.asarray(t), float(start), float(end))
    want = ref_max_gap(t, float(start), float(end))
    assert got == pytest.approx(want), (t, start, end)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=60), st.integers(1, 6))
def test_run_samples_counts_trues_in_long_enough_runs(mask: list[bool], min_run: int) -> None:
    assert run_samples(np.asarray(mask, bool), min_run) == ref_run_samples(mask, min_run)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.001, 10.0), min_size=1, max_size=3 * MEDIAN_SPACING_SAMPLES))
def test_median_spacing_is_the_upper_median_of_strided_diffs(d: list[float]) -> None:
    stride = max(1, len(d) // MEDIAN_SPACING_SAMPLES)
    sub = sorted(d[::stride])
    assert median_spacing(np.asarray(d)) == sub[len(sub) // 2]


def ref_problems(m: Modality, x: np.ndarray, dt: float, q: QualityThresholds) -> list[str]:
    """The reasons (as words) the documented rules give, in the order the function reports."""
    c_n, n = x.shape
    out: list[str] = []
    flat = []
    for c in range(c_n):
        col = x[c]
        thr = q.flat_std * max(1.0, abs(col.max()), abs(col.min()))
        flat.append(float(np.std(col)) < thr)
    if any(flat):
        out.append("flat")
    lo, hi = m.valid_range
    outside = sum(1 for k in range(n) if any(x[c, k] < lo or x[c, k] > hi for c in range(c_n)))
    if outside > q.saturated_fraction * n:
        return [*out, "saturated"]
    min_run = max(q.pinned_min_run_samples, math.ceil(q.pinned_min_run_s / dt))
    for c in range(c_n):
        if flat[c] or len(set(x[c].tolist())) < q.pinned_min_levels:
            continue
        for rail in (x[c].max(), x[c].min()):
            pinned = ref_run_samples([v == rail for v in x[c]], min_run)
            if pinned > q.saturated_fraction * n:
                return [*out, "saturated"]
    return out


@st.composite
def windows(draw: st.DrawFn) -> tuple[np.ndarray, tuple[float, float]]:
    """(C, n) windows of small integers (exact ties: rails and flat channels happen), with
    constant stretches, pinned runs at the extremes and a valid range that may clip."""
    c_n, n = draw(st.integers(1, 3)), draw(st.integers(8, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    levels = draw(st.sampled_from([3, 20, 60]))
    x = rng.integers(0, levels, (c_n, n)).astype(np.float64)
    for c in range(c_n):
        kind = draw(st.sampled_from(["noise", "flat", "rail_hi", "rail_lo", "tiny"]))
        if kind == "flat":
            x[c] = 7.0
        elif kind == "tiny":  # a std just around the flat threshold for |x| ~ 1000
            x[c] = 1000.0 + rng.choice([0.0, draw(st.sampled_from([1e-4, 5e-3]))], n)
        elif kind.startswith("rail"):
            run = draw(st.integers(1, n // 2))
            at = draw(st.integers(0, n - run))
            x[c, at:at + run] = x[c].max() + 1 if kind == "rail_hi" else x[c].min() - 1
    lo = draw(st.sampled_from([-math.inf, 1.0, 5.0]))
    hi = draw(st.sampled_from([math.inf, levels - 2.0, 1500.0]))
    return x, (lo, hi)


@settings(max_examples=400, deadline=None)
@given(windows(), st.sampled_from([0.05, 0.25, 1.0]))
def test_quality_problems_follow_the_documented_rules(
        win: tuple[np.ndarray, tuple[float, float]], dt: float) -> None:
    x, valid = win
    m = Modality("sig", "a.u.", 1 / dt, tuple(f"c{i}" for i in range(x.shape[0])),
                 valid_range=valid)
    q = QualityThresholds()
    got = [r.value for r, _ in quality_problems(m, x, dt, q)]
    assert got == ref_problems(m, x, dt, q), (x.tolist(), valid, dt)


def test_the_messages_carry_the_measured_numbers() -> None:
    m = Modality("eda", "uS", 4.0, ("value",), valid_range=(0.0, 10.0))
    q = QualityThresholds()
    x = np.linspace(1.0, 9.0, 100)[None, :].copy()
    x[0, :10] = 12.0  # 10 % outside the valid range
    ((reason, text),) = quality_problems(m, x, 0.25, q)
    assert reason is InvalidReason.SATURATED and text == "eda: 10.0% of samples outside (0.0, 10.0)"
    y = np.linspace(1.0, 9.0, 100)[None, :].copy()
    y[0, 40:60] = 9.0  # 20 samples pinned at the maximum, levels plenty
    ((reason, text),) = quality_problems(m, y, 0.25, q)
    assert reason is InvalidReason.SATURATED
    assert text == "eda.value: 20.0% of samples pinned at 9 in runs >= 3"
    flat = np.full((1, 50), 3.0)
    flat[0, 7] = 3.0 + 1e-9
    ((reason, text),) = quality_problems(m, flat, 0.25, q)
    assert reason is InvalidReason.FLAT and text == "eda: flat channel(s) ['value'] (range 1e-09)"


# -- edges the properties above rarely draw (found by mutation testing) ----------------------
def _shuffled(n: int, seed: int) -> list[float]:
    return np.random.default_rng(seed).permutation(np.arange(1, n + 1) / 100.0).tolist()


@pytest.mark.parametrize("n", [5, 255, 256, 300, 511, 512, 1000, 4000])
def test_median_spacing_on_long_unsorted_diffs(n: int) -> None:
    # beyond MEDIAN_SPACING_SAMPLES diffs the stride is an integer > 1, and only a full
    # partition at the middle puts the median there
    d = _shuffled(n, n)
    stride = max(1, n // MEDIAN_SPACING_SAMPLES)
    sub = sorted(d[::stride])
    assert median_spacing(np.asarray(d)) == sub[len(sub) // 2]


def _one_channel(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, np.float64)[None, :].copy()


def _edge_windows() -> dict[str, np.ndarray]:
    n = 1000
    out = {}
    big = np.full(n, 1e7)
    big[500] += 300.0  # std 9.5 < 1e-6 * 1e7: flat, though its range is 300
    out["flat_large_values_one_outlier"] = big
    tiny = np.zeros(n)
    tiny[10] = 1e-7  # flat by far, with a range the flat pre-check must still let through
    out["flat_tiny_wiggle"] = tiny
    half = np.full(n, 0.5)
    half[::2] += 3e-6  # std 1.5e-6 above the threshold of 1e-6 (|x| < 1 counts as 1)
    out["not_flat_small_values"] = half
    rail = np.full(n, 40.0)
    rail[:30] = np.arange(30.0)  # 97 % pinned at the maximum, 31 levels
    out["pinned_most_at_max"] = rail
    low = -rail
    out["pinned_most_at_min"] = low
    steady = np.ones(n)
    steady[:40] = 1.0 - np.arange(1, 41) * 1e-9  # flat, 96 % at its maximum, 41 levels
    out["flat_mostly_at_max"] = steady
    out["flat_mostly_at_min"] = 2.0 - steady
    edge = np.tile(np.arange(20.0), 5)  # n = 100: 5 % is 5 samples
    edge[40:45] = 25.0  # a run of exactly 5 at the maximum ...
    edge[80] = 25.0  # ... and one lone sample there: 6 at the rail, 5 pinned: not over 5 %
    out["pinned_exactly_the_limit"] = edge
    over = edge.copy()
    over[45] = 25.0  # a run of 6: over 5 %
    out["pinned_one_over_the_limit"] = over
    return out


@pytest.mark.parametrize("name", sorted(_edge_windows()))
def test_quality_problems_at_the_edges_of_the_rules(name: str) -> None:
    x = _one_channel(_edge_windows()[name])
    m = Modality("sig", "a.u.", 4.0, ("c0",), valid_range=(-math.inf, math.inf))
    q = QualityThresholds()
    got = [r.value for r, _ in quality_problems(m, x, 0.25, q)]
    want = ref_problems(m, x, 0.25, q)
    assert got == want, name
    assert want == {  # the reference says what each window is meant to show
        "flat_large_values_one_outlier": ["flat"], "flat_tiny_wiggle": ["flat"],
        "not_flat_small_values": [], "pinned_most_at_max": ["saturated"],
        "pinned_most_at_min": ["saturated"], "flat_mostly_at_max": ["flat"],
        "flat_mostly_at_min": ["flat"], "pinned_exactly_the_limit": [],
        "pinned_one_over_the_limit": ["saturated"],
    }[name]  # fmt: skip


def test_flat_means_a_std_strictly_below_the_threshold() -> None:
    q = QualityThresholds()
    x = _one_channel(np.tile([0.0, 2 * q.flat_std], 50))
    assert float(np.std(x[0])) == q.flat_std  # exactly at the threshold: not flat
    m = Modality("sig", "a.u.", 4.0, ("c0",))
    assert quality_problems(m, x, 0.25, q) == []
    y = _one_channel(np.tile([0.0, 1.999 * q.flat_std], 50))
    assert [r for r, _ in quality_problems(m, y, 0.25, q)] == [InvalidReason.FLAT]


def test_pinned_runs_without_a_known_spacing_use_the_sample_floor() -> None:
    # an undeclared rate with too few samples to measure gives a NaN spacing: the run
    # length falls back to pinned_min_run_samples instead of failing
    m = Modality("eda", "uS", 4.0, ("value",), valid_range=(0.0, 10.0))
    y = np.linspace(1.0, 9.0, 100)[None, :].copy()
    y[0, 40:60] = 9.0
    for dt in (math.nan, math.inf):
        ((reason, text),) = quality_problems(m, y, dt, QualityThresholds())
        assert reason is InvalidReason.SATURATED and text.endswith("in runs >= 3")
