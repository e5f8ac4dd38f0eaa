"""Tests of core.signal: resampling, gaps, validity reasons, calibration, chunk invariance."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contract import (
    WESAD_WRIST_MODALITIES,
    InputContract,
    Modality,
    Normalization,
)
from core.errors import CalibrationError, ContractError
from core.signal import (
    Calibration,
    CalibrationAccumulator,
    InvalidReason,
    Stream,
    Window,
    WindowAssembler,
    compute_calibration,
    find_gaps,
    fir_taps,
    normalize,
    resample_to_grid,
    scale_floor,
    sliding_window_starts,
    window_margin_s,
    windows_from_streams,
)

CLASSES = ("baseline", "stress", "amusement")
# modest by default so the file runs in seconds; PREPROCESS_EXAMPLES=300 for a deep soak
FAST = settings(max_examples=int(os.environ.get("PREPROCESS_EXAMPLES", "15")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# a small contract with three rates so property tests stay fast
SMALL_MODS = (
    Modality("bvp", "a.u.", 16.0, ("bvp",)),
    Modality("acc", "g", 8.0, ("x", "y", "z"), valid_range=(-8.0, 8.0)),
    Modality("eda", "uS", 4.0, ("eda",), valid_range=(0.0, 100.0)),
)


def small_contract(kind: str = "none", **kw: float) -> InputContract:
    args: dict[str, float] = {"window_s": 8.0, "hop_s": 2.0, "max_gap_s": 0.5,
                              "min_coverage": 0.9}
    args.update(kw)
    return InputContract(SMALL_MODS, CLASSES, normalization=Normalization(kind=kind,
                         calibration_s=20.0), **args)


def regular(rate: float, duration: float, n_ch: int, seed: int = 0, t0: float = 0.0,
            jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy multi-sine stream; jitter is a fraction of the sample period (< 0.5)."""
    rng = np.random.default_rng(seed)
    n = round(duration * rate)
    t = t0 + np.arange(n) / rate
    if jitter:
        t = t + rng.uniform(-jitter, jitter, n) / rate
    base = np.sin(2 * np.pi * 0.3 * t)[:, None] + 0.2 * rng.normal(size=(n, n_ch))
    return t, 2.0 + base


def small_streams(seed: int, duration: float, src_scale: float = 1.0, jitter: float = 0.0,
                  nan_frac: float = 0.0, gaps: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = {}
    for i, m in enumerate(SMALL_MODS):
        t, x = regular(m.rate_hz * (src_scale if i == 0 else 1.0), duration, m.n_channels,
                       seed + i, jitter=jitter)
        if nan_frac:
            x[rng.random(t.size) < nan_frac] = np.nan
        for _ in range(gaps):
            a = rng.uniform(0, duration)
            keep = (t < a) | (t > a + rng.uniform(0.1, 2.0))
            t, x = t[keep], x[keep]
        out[m.name] = (t, x)
    return out


def assert_same(a: list[Window], b: list[Window]) -> None:
    assert [w.index for w in a] == [w.index for w in b]
    for wa, wb in zip(a, b, strict=True):
        assert (wa.start, wa.end, wa.valid, wa.reason, wa.detail, wa.reasons) == (
            wb.start, wb.end, wb.valid, wb.reason, wb.detail, wb.reasons)
        assert wa.coverage == wb.coverage
        for k in wa.data:
            assert np.array_equal(wa.data[k], wb.data[k]), (wa.index, k)


def whole(contract: InputContract, streams: dict[str, tuple[np.ndarray, np.ndarray]],
          **kw: object) -> list[Window]:
    asm = WindowAssembler(contract, **kw)  # type: ignore[arg-type]
    for name, (t, x) in streams.items():
        asm.push(name, t, x)
    return asm.flush()


# -- pure helpers ---------------------------------------------------------------------------
def test_sliding_window_starts() -> None:
    s = sliding_window_starts(10.0, 100.0, 60.0, 5.0)
    assert s[0] == 10.0 and s[-1] == 40.0 and s.size == 7
    assert sliding_window_starts(0.0, 59.0, 60.0, 5.0).size == 0
    with pytest.raises(ValueError):
        sliding_window_starts(0.0, 10.0, 60.0, 0.0)


def test_find_gaps() -> None:
    t = np.array([0.0, 0.25, 0.5, 2.0, 2.25, 5.0])
    g = find_gaps(t, 1.0)
    assert np.array_equal(g, [[0.5, 2.0], [2.25, 5.0]])
    assert find_gaps(t[:1], 1.0).shape == (0, 2)


def test_normalize_clips_and_is_float32() -> None:
    x = np.array([[0.0, 1.0, 100.0], [5.0, 5.0, -100.0]])
    y = normalize(x, [1.0, 5.0], [0.5, 2.0], clip=10.0)
    assert y.dtype == np.float32
    assert np.array_equal(y, np.array([[-2.0, 0.0, 10.0], [0.0, 0.0, -10.0]], np.float32))


@FAST
@given(src=st.sampled_from([64.0, 128.0, 700.0, 256.0]), dst=st.sampled_from([4.0, 16.0, 32.0]),
       frac=st.floats(0.02, 0.3), phase=st.floats(0, 2 * np.pi))
def test_resampling_keeps_low_frequencies(src: float, dst: float, frac: float,
                                          phase: float) -> None:
    f = frac * dst  # well inside the passband (< 0.4 * dst)
    t = np.arange(int(40 * src)) / src
    x = np.sin(2 * np.pi * f * t + phase)
    grid = 10.0 + np.arange(int(20 * dst)) / dst
    y = resample_to_grid(t, x, grid, src, dst)
    assert y.shape == grid.shape
    assert np.abs(y - np.sin(2 * np.pi * f * grid + phase)).max() < 0.01


@FAST
@given(src=st.sampled_from([64.0, 128.0, 700.0]), dst=st.sampled_from([4.0, 16.0, 32.0]),
       frac=st.floats(0.55, 1.9))
def test_resampling_attenuates_tone_above_new_nyquist(src: float, dst: float,
                                                      frac: float) -> None:
    f = frac * dst  # above the new Nyquist (0.5 * dst): would alias without the FIR
    if f >= 0.45 * src:
        f = 0.45 * src  # keep the tone representable at the source rate
    t = np.arange(int(40 * src)) / src
    x = np.sin(2 * np.pi * f * t)
    grid = 10.0 + np.arange(int(20 * dst)) / dst
    y = resample_to_grid(t, x, grid, src, dst)
    assert np.abs(y).max() < 0.01  # >= 40 dB down


def test_resampling_without_filter_aliases() -> None:
    # the control: plain decimation of the same tone keeps most of its amplitude (aliased)
    src, dst, f = 700.0, 16.0, 11.0
    t = np.arange(int(40 * src)) / src
    grid = 10.0 + np.arange(int(20 * dst)) / dst
    assert np.abs(np.interp(grid, t, np.sin(2 * np.pi * f * t))).max() > 0.5


def test_fir_taps() -> None:
    assert fir_taps(64.0, 64.0) is None and fir_taps(66.0, 64.0) is None  # within tolerance
    fir = fir_taps(700.0, 4.0)
    assert fir is not None
    m, taps = fir
    assert m == 175 and taps.size == 2 * 16 * 175 + 1
    assert math.isclose(taps.sum(), 1.0) and np.allclose(taps, taps[::-1])  # unit DC, linear phase


def test_identity_rate_passes_through_exactly() -> None:
    t = np.arange(640) / 64.0
    x = np.random.default_rng(1).normal(size=(640, 2))
    y = resample_to_grid(t, x, t[64:576], 64.0, 64.0)
    assert np.array_equal(y, x[64:576])


@FAST
@given(jitter=st.floats(0.0, 0.45), seed=st.integers(0, 1000), src=st.sampled_from([64.0, 700.0]))
def test_resampling_uses_actual_timestamps(jitter: float, seed: int, src: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(30 * src)
    t = np.arange(n) / src + rng.uniform(-jitter, jitter, n) / src
    x = np.sin(2 * np.pi * 0.5 * t)
    grid = 5.0 + np.arange(20 * 32) / 32.0
    y = resample_to_grid(t, x, grid, None, 32.0)
    assert np.abs(y - np.sin(2 * np.pi * 0.5 * grid)).max() < 0.01


def test_resample_rejects_bad_grid() -> None:
    with pytest.raises(ValueError):
        resample_to_grid(np.arange(10.0), np.arange(10.0), np.array([0.0, 0.3, 0.5]), 1.0, 4.0)


# -- windows: shapes and basic behaviour ----------------------------------------------------
@FAST
@given(seed=st.integers(0, 10_000), duration=st.floats(9.0, 40.0),
       src_scale=st.sampled_from([1.0, 3.0, 4.4]), jitter=st.floats(0.0, 0.4))
def test_window_shapes_dtype_and_finite(seed: int, duration: float, src_scale: float,
                                        jitter: float) -> None:
    c = small_contract()
    ws = windows_from_streams(small_streams(seed, duration, src_scale, jitter), c)
    assert ws, "at least one window fits"
    assert [w.index for w in ws] == list(range(len(ws)))
    for w in ws:
        # at the end of the stream, flush also emits windows reaching up to max_gap_s past it
        assert w.valid or w.end > duration - 1e-6, w.detail
        assert w.end - w.start == c.window_s
        for m in c.modalities:
            a = w.data[m.name]
            assert a.shape == (m.n_channels, c.samples(m.name))
            assert a.dtype == np.float32
            assert np.isfinite(a).all()
        assert c.pack(w.data).shape == (c.input_length,)
    # every window fitting in the data is there, and none beyond
    starts = sliding_window_starts(0.0, duration, c.window_s, c.hop_s)
    assert np.array_equal([w.start for w in ws if w.end <= duration + 1e-6], starts)
    assert all(w.end <= duration + c.max_gap_s for w in ws)


def test_wrist_identity_windows_equal_raw() -> None:
    c = InputContract(WESAD_WRIST_MODALITIES, CLASSES, normalization=Normalization(kind="none"))
    rng = np.random.default_rng(3)
    streams = {}
    for m in c.modalities:
        t = np.arange(int(90 * m.rate_hz)) / m.rate_hz
        x = rng.normal(size=(t.size, m.n_channels)).astype(np.float32) + (
            33.0 if m.name == "temp" else 5.0)
        streams[m.name] = (t, x)
    ws = windows_from_streams(streams, c)
    assert len(ws) == 7  # starts 0, 5, ..., 30
    for w in ws:
        assert w.valid, w.detail
        for m in c.modalities:
            i = round(w.start * m.rate_hz)
            raw = streams[m.name][1][i : i + c.samples(m.name)].T
            assert np.array_equal(w.data[m.name], raw)


def test_short_gap_is_interpolated_linearly() -> None:
    c = small_contract()
    streams = small_streams(0, 30.0)
    t = np.arange(30 * 16) / 16.0
    x = (0.5 * t + 1.0)[:, None]  # a ramp: linear interpolation recovers it exactly
    keep = (t < 10.0) | (t > 10.4)  # 0.4375 s gap < max_gap_s
    streams["bvp"] = (t[keep], x[keep])
    ws = windows_from_streams(streams, c)
    w = next(w for w in ws if w.start <= 10.0 < w.end)
    assert w.valid, w.detail
    grid = w.start + np.arange(c.samples("bvp")) / 16.0
    np.testing.assert_allclose(w.data["bvp"][0], 0.5 * grid + 1.0, rtol=1e-6)


# -- each invalid reason ------------------------------------------------------------------
def _window_at(ws: list[Window], t: float) -> Window:
    return next(w for w in ws if w.start <= t < w.end)


def test_long_gap_invalidates_with_detail() -> None:
    c = small_contract()
    s = small_streams(1, 30.0)
    t, x = s["acc"]
    keep = (t < 12.0) | (t >= 14.0)
    s["acc"] = (t[keep], x[keep])
    ws = windows_from_streams(s, c)
    w = _window_at(ws, 13.0)
    assert not w.valid and w.reason is InvalidReason.GAP
    assert "acc" in w.detail and "2.1" in w.detail  # 12 - 1/8 .. 14: 2.125 s
    # a window is invalid when more than max_gap_s of it lies inside the gap
    assert all(not x.valid for x in ws if x.start < 14.0 - 0.5 and x.end > 12.0 + 0.5)
    assert all(x.valid for x in ws if x.end <= 12.5 or x.start >= 13.5), [
        (x.start, x.detail) for x in ws if not x.valid]
    assert all(np.isfinite(x.data["acc"]).all() for x in ws)


def test_gap_straddling_window_start() -> None:
    c = small_contract()
    s = small_streams(2, 30.0)
    t, x = s["eda"]
    keep = (t < 9.6) | (t >= 10.8)  # 9.5 .. 11.0: 1.0 s of the gap inside window 10..18
    s["eda"] = (t[keep], x[keep])
    ws = windows_from_streams(s, c)
    w = next(w for w in ws if w.start == 10.0)
    assert w.reason is InvalidReason.GAP and "1.000 s" in w.detail
    assert next(w for w in ws if w.start == 12.0).valid


def test_low_coverage() -> None:
    c = small_contract()
    s = small_streams(3, 30.0)
    t, x = s["bvp"]
    keep = np.arange(t.size) % 5 != 0  # lose 20 % in short gaps (each 0.125 s)
    s["bvp"] = (t[keep], x[keep])
    ws = windows_from_streams(s, c, source_rates={"bvp": 16.0})
    assert ws and all(w.reason is InvalidReason.LOW_COVERAGE for w in ws)
    assert "bvp" in ws[0].detail and ws[0].coverage["bvp"] == pytest.approx(0.8, abs=0.02)


def test_missing_modality() -> None:
    c = small_contract()
    s = small_streams(4, 20.0)
    del s["eda"]
    ws = windows_from_streams(s, c)
    assert ws and all(w.reason is InvalidReason.MISSING_MODALITY for w in ws)
    assert all(np.array_equal(w.data["eda"], np.zeros((1, 32), np.float32)) for w in ws)
    assert "eda" in ws[0].detail


def test_non_finite_values_make_a_non_finite_gap() -> None:
    c = small_contract()
    s = small_streams(5, 30.0)
    t, x = s["bvp"]
    x = x.copy()
    x[(t >= 12.0) & (t < 13.5)] = np.nan
    x[(t >= 20.0) & (t < 20.2)] = np.inf  # short: bridged like a gap
    s["bvp"] = (t, x)
    ws = windows_from_streams(s, c)
    w = _window_at(ws, 12.5)
    assert w.reason is InvalidReason.NON_FINITE and "bvp" in w.detail
    w2 = next(w for w in ws if w.start <= 20.0 and w.end > 20.2 and w.start > 13.5)
    assert w2.valid, w2.detail
    assert all(np.isfinite(w.data["bvp"]).all() for w in ws)


def test_all_non_finite() -> None:
    c = small_contract()
    s = small_streams(6, 20.0)
    t, x = s["eda"]
    s["eda"] = (t, np.full_like(x, np.nan))
    ws = windows_from_streams(s, c)
    assert all(w.reason is InvalidReason.NON_FINITE for w in ws)
    assert all(np.isfinite(w.data["eda"]).all() for w in ws)


def test_flat_channel() -> None:
    c = small_contract()
    s = small_streams(7, 20.0)
    t, x = s["acc"]
    x = x.copy()
    x[:, 1] = 0.98
    s["acc"] = (t, x)
    ws = windows_from_streams(s, c)
    assert all(w.reason is InvalidReason.FLAT for w in ws)
    assert "acc" in ws[0].detail and "y" in ws[0].detail


def test_saturated_out_of_range() -> None:
    c = small_contract()
    s = small_streams(8, 20.0)
    t, x = s["eda"]
    x = x.copy()
    x[::8] = 150.0  # 12.5 % above the 100 uS range
    s["eda"] = (t, x)
    ws = windows_from_streams(s, c)
    assert all(w.reason is InvalidReason.SATURATED for w in ws)


def test_saturated_pinned_at_rail() -> None:
    c = small_contract()
    s = small_streams(9, 20.0)
    t, x = s["acc"]
    x = np.clip(3.0 * np.sin(2 * np.pi * 0.5 * t)[:, None] + 0.01 * x, -2.0, 2.0)  # clipped
    s["acc"] = (t, x)
    ws = windows_from_streams(s, c)
    assert all(w.reason is InvalidReason.SATURATED for w in ws)
    assert "pinned" in ws[0].detail


def test_quantized_slow_signal_is_not_saturated() -> None:
    # skin temperature rising 0.1 degC per minute at 0.02 degC steps holds its max for seconds
    c = small_contract()
    s = small_streams(10, 20.0)
    t, _ = s["eda"]
    s["eda"] = (t, (np.round((3.0 + 0.1 * t / 6.0) / 0.02) * 0.02)[:, None])
    ws = windows_from_streams(s, c)
    assert ws and all(w.valid for w in ws), [w.detail for w in ws]


def test_uncalibrated_window_keeps_raw_data() -> None:
    c = small_contract("subject_baseline")
    s = small_streams(11, 20.0)
    ws = windows_from_streams(s, c)
    assert all(not w.valid and w.reason is InvalidReason.UNCALIBRATED for w in ws)
    assert w_raw_equal(ws[0], s)


def w_raw_equal(w: Window, s: dict[str, tuple[np.ndarray, np.ndarray]]) -> bool:
    x = s["eda"][1]
    i = round(w.start * 4)
    return bool(np.array_equal(w.data["eda"][0], x[i : i + 32, 0].astype(np.float32)))


def test_reasons_are_ordered_by_severity() -> None:
    c = small_contract("subject_baseline")
    s = small_streams(12, 20.0)
    del s["eda"]
    t, x = s["acc"]
    s["acc"] = (t, np.full_like(x, 0.5))
    w = windows_from_streams(s, c)[0]
    assert w.reasons == (InvalidReason.MISSING_MODALITY, InvalidReason.FLAT,
                         InvalidReason.UNCALIBRATED)
    assert w.reason is InvalidReason.MISSING_MODALITY


# -- normalization --------------------------------------------------------------------------
def test_calibrated_and_global_normalization() -> None:
    c = small_contract("subject_baseline")
    s = small_streams(13, 40.0)
    cal = compute_calibration(s, c)
    ws = windows_from_streams(s, c, calibration=cal)
    assert ws and all(w.valid for w in ws)
    raw = windows_from_streams(s, small_contract("none"))
    for w, r in zip(ws, raw, strict=True):
        for name in w.data:
            exp = normalize(r.data[name].astype(np.float64), cal.center[name], cal.scale[name], 10)
            np.testing.assert_allclose(w.data[name], exp, atol=1e-5)
    g = Normalization(kind="global", center={"bvp": (2.0,), "acc": (0.0, 0.0, 0.0), "eda": (1.0,)},
                      scale={"bvp": (0.5,), "acc": (1.0, 1.0, 1.0), "eda": (2.0,)}, clip=3.0)
    cg = InputContract(SMALL_MODS, CLASSES, window_s=8.0, hop_s=2.0, max_gap_s=0.5,
                       normalization=g)
    wg = windows_from_streams(s, cg)
    np.testing.assert_allclose(wg[0].data["bvp"],
                               np.clip((raw[0].data["bvp"] - 2.0) / 0.5, -3, 3), atol=1e-5)
    bad = InputContract(SMALL_MODS, CLASSES, normalization=Normalization(kind="global"))
    with pytest.raises(ContractError):
        WindowAssembler(bad)


def test_fixed_scale_wins_over_the_measured_one() -> None:
    """A modality with a contract-fixed scale (the accelerometer) is centred on the person's
    baseline but divided by that scale; the others keep their measured spread."""
    s = small_streams(13, 40.0)
    c = small_contract("subject_baseline")
    fixed = InputContract(SMALL_MODS, CLASSES, window_s=8.0, hop_s=2.0, max_gap_s=0.5,
                          normalization=Normalization(calibration_s=20.0,
                                                      scale={"acc": (0.2, 0.5, 1.0)}))
    cal = compute_calibration(s, fixed)
    assert not np.allclose(cal.scale["acc"], (0.2, 0.5, 1.0))  # the calibration stays measured
    ws = windows_from_streams(s, fixed, calibration=cal)
    measured = windows_from_streams(s, c, calibration=compute_calibration(s, c))
    raw = windows_from_streams(s, small_contract("none"))
    assert ws and len(ws) == len(raw) == len(measured)
    for w, m, r in zip(ws, measured, raw, strict=True):
        exp = normalize(r.data["acc"].astype(np.float64), cal.center["acc"], [0.2, 0.5, 1.0], 10)
        np.testing.assert_allclose(w.data["acc"], exp, atol=1e-5)
        np.testing.assert_array_equal(w.data["bvp"], m.data["bvp"])
        assert not np.allclose(w.data["acc"], m.data["acc"])


def test_calibration_must_match_contract() -> None:
    c = small_contract("subject_baseline")
    cal = Calibration(center={"bvp": [0.0]}, scale={"bvp": [1.0]})
    with pytest.raises(CalibrationError):
        WindowAssembler(c, calibration=cal)


# -- calibration ----------------------------------------------------------------------------
def test_compute_calibration_values_and_floor() -> None:
    c = small_contract("subject_baseline")
    s = small_streams(14, 30.0)
    t, x = s["acc"]
    x = x.copy()
    x[:, 2] = 1.0  # flat: the floor keeps the scale sane
    s["acc"] = (t, x)
    cal = compute_calibration(s, c, source="unit test")
    t, x = s["bvp"]
    first = x[t < t[0] + 20.0]
    q25, med, q75 = np.percentile(first, [25, 50, 75], axis=0)
    assert np.array_equal(cal.center["bvp"], med)
    assert np.array_equal(cal.scale["bvp"], (q75 - q25) / 1.349)
    assert cal.scale["acc"][2] == scale_floor("g")
    assert cal.source == "unit test"


def test_calibration_needs_enough_data() -> None:
    c = small_contract("subject_baseline")
    with pytest.raises(CalibrationError, match=r"10\.0 s of data, need 20 s"):
        compute_calibration(small_streams(15, 10.0), c)
    s = small_streams(15, 30.0)
    del s["acc"]
    with pytest.raises(CalibrationError, match="acc"):
        compute_calibration(s, c)
    s = small_streams(15, 30.0, nan_frac=0.5)
    with pytest.raises(CalibrationError, match="finite"):
        compute_calibration(s, c)


def test_calibration_exact_period_length_is_enough() -> None:
    c = small_contract("subject_baseline")
    s = {m.name: regular(m.rate_hz, 20.0, m.n_channels, i) for i, m in enumerate(SMALL_MODS)}
    compute_calibration(s, c)  # exactly calibration_s of data


@FAST
@given(seed=st.integers(0, 1000), data=st.data())
def test_calibration_accumulator_equals_batch(seed: int, data: st.DataObject) -> None:
    c = small_contract("subject_baseline")
    s = small_streams(seed, 35.0, jitter=0.3, nan_frac=0.02)
    acc = CalibrationAccumulator(c, source="x")
    chunks = _random_chunks(s, data)
    for i, (name, t, x) in enumerate(chunks):
        acc.push(name, t, x)
        if i == len(chunks) // 2:
            assert not acc.ready or acc.progress() == 1.0
    acc.push("eda", np.zeros(0), np.zeros((0, 1)))  # an empty chunk is a no-op
    assert acc.ready and acc.progress() == 1.0
    a, b = acc.result(), compute_calibration(s, c, source="x")
    for k in b.center:
        assert np.array_equal(a.center[k], b.center[k])
        assert np.array_equal(a.scale[k], b.scale[k])


def test_calibration_dict_round_trip() -> None:
    c = small_contract("subject_baseline")
    cal = compute_calibration(small_streams(16, 30.0), c, source="enrollment")
    d = json.loads(json.dumps(cal.to_dict()))
    back = Calibration.from_dict(d)
    assert back.source == "enrollment"
    for k in cal.center:
        assert np.array_equal(back.center[k], cal.center[k])
        assert np.array_equal(back.scale[k], cal.scale[k])
    for bad in ({}, {"center": {"a": [1.0]}, "scale": {"a": [0.0]}},
                {"center": {"a": [1.0]}, "scale": {"b": [1.0]}},
                {"schema": 99, "center": {}, "scale": {}}, {"center": 3, "scale": {}}):
        with pytest.raises(CalibrationError):
            Calibration.from_dict(bad)


# -- chunk invariance -------------------------------------------------------------------------
def _random_chunks(s: dict[str, tuple[np.ndarray, np.ndarray]], data: st.DataObject
                   ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Each stream cut at random sizes, modalities interleaved at random (order kept)."""
    seqs: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for name, (t, x) in s.items():
        sizes = data.draw(st.lists(st.integers(1, 97), min_size=1, max_size=40), label=name)
        cuts, i, k = [], 0, 0
        while i < t.size:
            n = sizes[k % len(sizes)]
            cuts.append((name, t[i : i + n], x[i : i + n]))
            i, k = i + n, k + 1
        seqs[name] = cuts
    order = data.draw(st.permutations([n for n, q in seqs.items() for _ in q]), label="order")
    pos = dict.fromkeys(seqs, 0)
    out = []
    for n in order:
        out.append(seqs[n][pos[n]])
        pos[n] += 1
    return out


@FAST
@given(seed=st.integers(0, 10_000), src_scale=st.sampled_from([1.0, 2.5, 4.0]),
       jitter=st.floats(0.0, 0.45), nan_frac=st.sampled_from([0.0, 0.01, 0.2]),
       gaps=st.integers(0, 3), origin=st.sampled_from([0.0, -1.5, 3.25]), data=st.data())
def test_chunk_and_interleaving_invariance(seed: int, src_scale: float, jitter: float,
                                           nan_frac: float, gaps: int, origin: float,
                                           data: st.DataObject) -> None:
    c = small_contract()
    s = small_streams(seed, 40.0, src_scale, jitter, nan_frac, gaps)
    ref = whole(c, s, origin=origin)
    asm = WindowAssembler(c, origin=origin)
    got: list[Window] = []
    pops = data.draw(st.lists(st.booleans(), min_size=1, max_size=50), label="pops")
    for i, (name, t, x) in enumerate(_random_chunks(s, data)):
        asm.push(name, t, x)
        if pops[i % len(pops)]:
            got.extend(asm.pop_ready())
    got.extend(asm.flush())
    assert ref, "test data produces windows"
    assert_same(got, ref)
    assert_same(windows_from_streams(s, c, origin=origin), ref)


def test_streaming_emits_each_window_once_in_order() -> None:
    c = small_contract()
    s = small_streams(17, 60.0)
    asm = WindowAssembler(c)
    got: list[Window] = []
    for t0 in np.arange(0.0, 60.0, 0.5):
        for name, (t, x) in s.items():
            sel = (t >= t0) & (t < t0 + 0.5)
            asm.push(name, t[sel], x[sel])
        new = asm.pop_ready()
        for w in new:  # emitted no earlier than end + margin of every modality
            assert t0 + 0.5 >= w.end + max(asm.margin_s(n) for n in c.modality_names) - 0.5
        got.extend(new)
    got.extend(asm.flush())
    assert [w.index for w in got] == list(range(len(got)))
    assert_same(got, whole(c, s))


# -- memory, ordering, device off ------------------------------------------------------------
def test_buffer_is_bounded_when_a_modality_stalls() -> None:
    c = small_contract()
    asm = WindowAssembler(c, max_buffer_s=30.0)
    t, x = regular(16.0, 600.0, 1)
    pushed = 0
    for i in range(0, t.size, 40):
        asm.push("bvp", t[i : i + 40], x[i : i + 40])
        pushed += t[i : i + 40].size
        ta, xa = regular(8.0, 1.0, 3, t0=float(t[i]))
        asm.push("acc", ta, xa)
        assert asm.buffered_samples()["bvp"] <= 16 * 30 * 1.1 + 41
        assert asm.pop_ready() == []  # eda never arrives: nothing is final
    held = asm.buffered_samples()["bvp"]
    assert asm.stats.discarded_stalled["bvp"] == pushed - held  # every drop counted
    ws = asm.flush()
    assert ws and all(w.reason is InvalidReason.MISSING_MODALITY for w in ws)


def test_consumed_samples_are_released() -> None:
    c = small_contract()
    asm = WindowAssembler(c)
    s = small_streams(18, 300.0)
    for t0 in np.arange(0.0, 300.0, 1.0):
        for name, (t, x) in s.items():
            sel = (t >= t0) & (t < t0 + 1.0)
            asm.push(name, t[sel], x[sel])
        asm.pop_ready()
    margin = max(asm.margin_s(n) for n in c.modality_names)
    bound = (c.window_s + 2 * margin + c.hop_s + 1.0) * 16
    assert asm.buffered_samples()["bvp"] <= bound
    assert not asm.stats.discarded_stalled


def test_out_of_order_and_bad_timestamps_are_counted() -> None:
    c = small_contract()
    s = small_streams(19, 20.0)
    ref = whole(c, s)
    asm = WindowAssembler(c)
    for name, (t, x) in s.items():
        half = t.size // 2
        asm.push(name, t[:half], x[:half])
        asm.push(name, t[half - 5 : half], x[half - 5 : half])  # replayed: out of order
        tt = t[half:].copy()
        tt[3] = np.nan
        asm.push(name, tt, x[half:])
    got = asm.flush()
    assert asm.stats.dropped_out_of_order == {"bvp": 5, "acc": 5, "eda": 5}
    assert asm.stats.dropped_non_finite_time == {"bvp": 1, "acc": 1, "eda": 1}
    assert len(got) == len(ref)


def test_device_off_windows_are_skipped_and_counted() -> None:
    c = small_contract()
    a = small_streams(20, 30.0)
    b = {k: (t + 10_000.0, x) for k, (t, x) in small_streams(21, 30.0).items()}
    s = {k: (np.concatenate([a[k][0], b[k][0]]), np.concatenate([a[k][1], b[k][1]])) for k in a}
    ws = windows_from_streams(s, c)
    assert asm_like_count(ws, 10_000.0) == 12  # 10000..10022 in steps of 2
    # windows around the gap are invalid, the rest valid; nothing in between
    assert all(w.valid for w in ws if w.end <= 30.0 - 0.5 or w.start >= 10_000.0)
    assert not [w for w in ws if 40.0 < w.start < 9_980.0]
    assert not [w for w in ws if 9_980.0 < w.start < 10_000.0 and w.valid]
    asm = WindowAssembler(c)
    for k, (t, x) in s.items():
        asm.push(k, t, x)
    assert_same(asm.flush(), ws)
    assert asm.stats.windows_skipped_empty > 4000
    assert not asm.stats.discarded_stalled  # an hour off is not data piling up


def asm_like_count(ws: list[Window], t0: float) -> int:
    return sum(1 for w in ws if w.start >= t0)


def test_push_validates_input() -> None:
    asm = WindowAssembler(small_contract())
    with pytest.raises(ContractError):
        asm.push("ecg", [0.0], [[1.0]])
    with pytest.raises(ContractError):
        asm.push("acc", [0.0, 1.0], [[1.0, 2.0], [1.0, 2.0]])
    asm.push("eda", np.arange(3.0), np.arange(3.0))  # (N,) accepted for one channel
    asm.push("eda", np.zeros(0), np.zeros((0, 1)))
    assert asm.buffered_samples()["eda"] == 3


def test_margin_and_stream_objects() -> None:
    c = small_contract()
    assert window_margin_s(c, "eda") == pytest.approx(16 / 4.0 + 0.5)
    s = small_streams(22, 20.0, src_scale=4.0)
    objs = {k: Stream(t, x, rate_hz=64.0 if k == "bvp" else None) for k, (t, x) in s.items()}
    assert_same(windows_from_streams(objs, c), windows_from_streams(s, c))
    assert math.isclose(windows_from_streams(objs, c)[0].coverage["bvp"], 1.0)
