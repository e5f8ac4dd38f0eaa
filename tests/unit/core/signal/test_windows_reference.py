"""core.signal.windows against the documented rules (docs/signal.md, "Gaps", "Resampling"),
computed here directly over the whole stream: which problems a window has (GAP, NON_FINITE,
MISSING_MODALITY, LOW_COVERAGE), its coverage, its values (scipy's FIR on a linear
interpolation of the finite rows, then normalization), and zeros where a modality has no
finite sample. Both the streaming path and the whole-window path (``streaming=False``)
must give them; the source rate is either declared or estimated from the timestamps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.contract import InputContract, Modality, Normalization
from core.signal import InvalidReason, WindowAssembler, windows_from_streams
from core.signal.resample import window_margin_s
from tests.fakes.streams import CLASSES

# a two-channel modality: a row is missing when any of its channels is non-finite
MODS = (
    Modality("bvp", "a.u.", 16.0, ("bvp",)),
    Modality("acc", "g", 8.0, ("x", "y")),
    Modality("eda", "uS", 4.0, ("eda",)),
)
SOURCES = {"bvp": 64.0, "acc": 20.0, "eda": 32.0}  # x4, x2.5, x8 the target rates
CENTER = {"bvp": (1.0,), "acc": (0.5, -0.5), "eda": (2.0,)}
SCALE = {"bvp": (2.0,), "acc": (0.5, 4.0), "eda": (1.5,)}
CLIP = 50.0


def _contract(max_gap_s: float = 0.5) -> InputContract:
    norm = Normalization(kind="global", center=CENTER, scale=SCALE, clip=CLIP)
    return InputContract(
        MODS,
        CLASSES,
        window_s=8.0,
        hop_s=2.0,
        max_gap_s=max_gap_s,
        min_coverage=0.9,
        normalization=norm,
    )


def _stream(
    name: str, src: float, duration: float, seed: int, t0: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_ch = next(m.n_channels for m in MODS if m.name == name)
    t = t0 + np.arange(round((duration - t0) * src)) / src
    tone = np.sin(2 * np.pi * rng.uniform(0.2, 1.2) * t)[:, None]
    return t, 3.0 + tone + 0.3 * rng.normal(size=(t.size, n_ch))


def _fir_values(
    t: np.ndarray, x: np.ndarray, starts: list[float], n_out: int, dst: float, mult: int
) -> np.ndarray:
    """(W, C, T): finite rows interpolated linearly (edges held) onto a grid at mult x dst,
    low-passed by the documented FIR (mult = 1: no filter), read at each window's points."""
    import scipy.signal

    ok = np.isfinite(x).all(axis=1)
    t, x = t[ok], x[ok]
    fs = mult * dst
    lo = min(starts) - 10.0
    grid = lo + np.arange(math.ceil((max(starts) + 30.0 - lo) * fs)) / fs
    idx = np.rint((np.asarray(starts)[:, None] + np.arange(n_out) / dst - lo) * fs).astype(int)
    out = []
    for c in range(x.shape[1]):
        u = np.interp(grid, t, x[:, c])
        if mult > 1:
            taps = scipy.signal.firwin(2 * 16 * mult + 1, 0.45 * dst, window="hamming", fs=fs)
            u = scipy.signal.convolve(u, taps, mode="same")
        out.append(u[idx])
    return np.stack(out, axis=1)


def _normalized(name: str, y: np.ndarray) -> np.ndarray:
    c = np.asarray(CENTER[name])[:, None]
    s = np.asarray(SCALE[name])[:, None]
    return np.clip((y - c) / s, -CLIP, CLIP)


def _longest_stretch(t: np.ndarray, start: float, end: float) -> float:
    """Longest sample-free stretch inside [start, end) (documented gap measure)."""
    if t.size == 0:
        return end - start
    edges = np.concatenate(([start], t[(t > start) & (t < end)], [end]))
    return float(np.diff(edges).max())


def _expected(
    streams: dict[str, tuple[np.ndarray, np.ndarray]],
    c: InputContract,
    rates: dict[str, float],
    start: float,
    end: float,
) -> tuple[set[InvalidReason], dict[str, float]]:
    """The problems and coverage the documented rules give one window."""
    reasons: set[InvalidReason] = set()
    coverage: dict[str, float] = {}
    for m in c.modalities:
        if m.name not in streams:
            reasons.add(InvalidReason.MISSING_MODALITY)
            coverage[m.name] = 0.0
            continue
        t, x = streams[m.name]
        mg = window_margin_s(c, m.name)
        span = (t >= start - mg) & (t < end + mg)
        finite = np.isfinite(x).all(axis=1)
        if not span.any():
            reasons.add(InvalidReason.MISSING_MODALITY)
            coverage[m.name] = 0.0
            continue
        if not (span & finite).any():
            reasons.add(InvalidReason.NON_FINITE)
            coverage[m.name] = 0.0
            continue
        tf = t[span & finite]
        if _longest_stretch(tf, start, end) > c.max_gap_s:
            all_ok = _longest_stretch(t[span], start, end) <= c.max_gap_s
            reasons.add(InvalidReason.NON_FINITE if all_ok else InvalidReason.GAP)
        dt = 1.0 / rates[m.name]
        n_in = int(np.count_nonzero((tf >= start) & (tf < end)))
        cov = min(1.0, n_in * dt / c.window_s)
        coverage[m.name] = cov
        if cov < c.min_coverage:
            n_all = int(np.count_nonzero((t >= start) & (t < end)))
            all_ok = n_all * dt / c.window_s >= c.min_coverage
            reasons.add(InvalidReason.NON_FINITE if all_ok else InvalidReason.LOW_COVERAGE)
    return reasons, coverage


def _run(
    streams: dict[str, tuple[np.ndarray, np.ndarray]],
    c: InputContract,
    streaming: bool,
    rates: dict[str, float] | None,
) -> tuple[list, WindowAssembler]:
    asm = WindowAssembler(c, source_rates=rates, streaming=streaming, max_buffer_s=None)
    ws = []
    for t0 in np.arange(0.0, 40.0, 0.5):  # the hub's way: half-second pushes, popping
        for name, (t, x) in streams.items():
            sel = (t >= t0) & (t < t0 + 0.5)
            asm.push(name, t[sel], x[sel])
        ws.extend(asm.pop_ready())
    ws.extend(asm.flush())
    return ws, asm


def _scenario() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    s = {n: _stream(n, src, 36.0, i) for i, (n, src) in enumerate(SOURCES.items())}
    t, x = _stream("acc", SOURCES["acc"], 36.0, 1, t0=1.0)  # starts late: GAP in window 0
    x[(t >= 10.0) & (t < 10.3), 1] = np.nan  # one channel only, bridged (< max_gap_s)
    s["acc"] = (t, x)
    t, x = s["eda"]
    keep = ((t < 20.0) | (t >= 21.0)) & (t < 31.0)  # a 1 s hole; ends early
    s["eda"] = (t[keep], x[keep])
    t, x = s["bvp"]
    x = x.copy()
    x[(t >= 26.0) & (t < 26.8)] = np.nan  # a NaN run: NON_FINITE, not GAP
    s["bvp"] = (t, x)
    return s


@pytest.mark.parametrize("streaming", [True, False])
def test_problems_coverage_and_values_follow_the_documented_rules(streaming: bool) -> None:
    c = _contract()
    s = _scenario()
    ws, asm = _run(s, c, streaming, SOURCES)
    assert len(ws) >= 14
    seen: set[InvalidReason] = set()
    for w in ws:
        want, cov = _expected(s, c, SOURCES, w.start, w.end)
        seen |= want
        assert set(w.reasons) == want, (w.start, w.detail)
        assert w.valid == (not want)
        for name, v in cov.items():
            assert w.coverage[name] == pytest.approx(v, rel=1e-12, abs=1e-12), (w.start, name)
    assert {InvalidReason.GAP, InvalidReason.NON_FINITE, InvalidReason.LOW_COVERAGE} <= seen
    # values: every valid window, and acc's bridged NaN window, against scipy
    starts = [w.start for w in ws if w.valid]
    assert any(a <= 10.0 and a + c.window_s >= 10.3 for a in starts)  # acc's NaN run bridged
    for m in c.modalities:
        t, x = s[m.name]
        ref = _fir_values(
            t,
            x,
            starts,
            c.samples(m.name),
            m.rate_hz,
            math.ceil(SOURCES[m.name] / m.rate_hz - 0.05),
        )
        got = np.stack([w.data[m.name] for w in ws if w.valid])
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, _normalized(m.name, ref), rtol=0, atol=2e-5, err_msg=m.name)
    # stats.streamed counts modality windows made from carried hops: none when not streaming
    if streaming:
        assert set(asm.stats.streamed) <= set(c.modality_names) and asm.stats.streamed
        assert all(0 < n <= asm.stats.windows_emitted for n in asm.stats.streamed.values())
    else:
        assert asm.stats.streamed == {}


@pytest.mark.parametrize("streaming", [True, False])
def test_a_modality_without_finite_samples_is_zeros_not_normalized_zeros(streaming: bool) -> None:
    c = _contract()
    s = {n: _stream(n, src, 30.0, i) for i, (n, src) in enumerate(SOURCES.items())}
    t, x = s["eda"]
    s["eda"] = (t, np.full_like(x, np.nan))
    ws, _ = _run(s, c, streaming, SOURCES)
    assert ws
    for w in ws:
        assert w.reason is InvalidReason.NON_FINITE
        assert w.coverage["eda"] == 0.0
        assert not w.data["eda"].any() and w.data["eda"].shape == (1, c.samples("eda"))
        n_span = np.count_nonzero(
            (t >= w.start - window_margin_s(c, "eda")) & (t < w.end + window_margin_s(c, "eda"))
        )
        assert f"eda: all {n_span} samples non-finite" in w.detail
    del s["eda"]  # never arrives: MISSING_MODALITY, zeros
    ws = windows_from_streams(s, c, source_rates=SOURCES)
    assert ws
    for w in ws:
        assert w.reason is InvalidReason.MISSING_MODALITY and w.coverage["eda"] == 0.0
        assert not w.data["eda"].any()
        assert "eda: no samples in window" in w.detail


def test_estimated_source_rates() -> None:
    """No declared rate: the median spacing gives it; within 15 % of the target rate it is
    taken to be the target rate (no filter, nominal spacing 1/target)."""
    c = _contract(max_gap_s=2.0)
    bvp = _stream("bvp", 64.0, 36.0, 0)  # x4: the FIR with M = 4
    t, x = _stream("acc", 8.8, 36.0, 1)  # 10 % fast: snapped to 8 Hz, interpolated only
    keep = (t < 12.0) | (t >= 13.5)  # a 1.5 s hole (< max_gap_s): coverage below 1
    acc = (t[keep], x[keep])
    eda = (np.array([2.0, 3.0]), np.array([[3.0], [3.5]]))  # two samples: spacing 1 s
    ws = windows_from_streams({"bvp": bvp, "acc": acc, "eda": eda}, c)
    starts = [w.start for w in ws if w.end <= 34.0]
    assert len(starts) >= 10
    got = {n: np.stack([w.data[n] for w in ws if w.end <= 34.0]) for n in ("bvp", "acc")}
    np.testing.assert_allclose(
        got["bvp"],
        _normalized("bvp", _fir_values(*bvp, starts, c.samples("bvp"), 16.0, 4)),
        rtol=0,
        atol=2e-5,
    )
    np.testing.assert_allclose(
        got["acc"],
        _normalized("acc", _fir_values(*acc, starts, c.samples("acc"), 8.0, 1)),
        rtol=0,
        atol=2e-5,
    )
    for w in ws:
        n_in = np.count_nonzero((acc[0] >= w.start) & (acc[0] < w.end))
        assert w.coverage["acc"] == pytest.approx(min(1.0, n_in * (1 / 8.0) / c.window_s))
    w0 = ws[0]  # eda: two samples 1 s apart in window [0, 8): 1 Hz, coverage 2 x 1 s / 8 s
    assert w0.start == 0.0 and w0.coverage["eda"] == pytest.approx(0.25)
    assert any(w.coverage["acc"] < 0.9 for w in ws)


@pytest.mark.parametrize("streaming", [True, False])
def test_a_gap_of_exactly_max_gap_is_bridged(streaming: bool) -> None:
    # "above max_gap_s the window is invalid": 0.5 s before the first sample is not above
    c = _contract()  # max_gap_s 0.5
    rates = {m.name: m.rate_hz for m in c.modalities}
    s = {n: _stream(n, r, 30.0, i, t0=0.5) for i, (n, r) in enumerate(rates.items())}
    ws, _ = _run(s, c, streaming, rates)
    w0 = ws[0]
    assert w0.start == 0.0 and w0.valid, w0.detail
    s["eda"] = _stream("eda", 4.0, 30.0, 2, t0=0.75)  # 0.75 s: a gap
    ws, _ = _run(s, c, streaming, rates)
    assert ws[0].start == 0.0 and ws[0].reason is InvalidReason.GAP
