"""core.signal.quality: each reason a window is invalid, with its detail, in order of severity."""

from __future__ import annotations

import numpy as np
import pytest

from core.signal import (
    InvalidReason,
    Window,
    windows_from_streams,
)
from tests.fakes.streams import small_contract, small_streams


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
