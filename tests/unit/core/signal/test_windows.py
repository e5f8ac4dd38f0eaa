"""core.signal.windows: window assembly: shapes, chunk and interleaving invariance, bounded
memory, ordering, a device that is off, input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.contract import (
    WESAD_WRIST_MODALITIES,
    InputContract,
    Normalization,
)
from core.errors import ContractError
from core.signal import (
    InvalidReason,
    Stream,
    Window,
    WindowAssembler,
    sliding_window_starts,
    windows_from_streams,
)
from tests.fakes.streams import CLASSES, assert_same, regular, small_contract, small_streams, whole
from tests.strategies import random_chunks, signal_examples


# -- windows: shapes and basic behaviour ----------------------------------------------------
@signal_examples
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


# -- chunk invariance -------------------------------------------------------------------------
@signal_examples
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
    for i, (name, t, x) in enumerate(random_chunks(s, data)):
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


# -- an independent reference: the whole stream filtered at once -------------------------------
# Chunk invariance compares the assembler with itself; this compares it with the documented
# computation (docs/signal.md, "Resampling") done directly over the whole stream with scipy:
# linear interpolation onto one grid at M x the target rate, a Hamming-windowed-sinc FIR of
# 2*16*M + 1 taps (cutoff 0.45 x target), read at the window's points. A window that drops
# its left or right raw margin differs from this in its first or last 16 samples.
_REF_SOURCES = {"bvp": 64.0, "acc": 20.0, "eda": 32.0}  # x4, x2.5, x8 the target rates


def _reference_windows(streams: dict[str, Stream], contract: InputContract, origin: float,
                       starts: list[float]) -> dict[str, np.ndarray]:
    """name -> (W, C, T) values of the windows at ``starts``, straight from scipy."""
    import scipy.signal

    out: dict[str, np.ndarray] = {}
    for m in contract.modalities:
        s, dst = streams[m.name], m.rate_hz
        assert s.rate_hz is not None
        mult = math.ceil(s.rate_hz / dst - 0.05)  # the documented M
        fs = mult * dst
        taps = scipy.signal.firwin(2 * 16 * mult + 1, 0.45 * dst, window="hamming", fs=fs)
        # one grid for the whole stream, aligned with every window's target grid (origin +
        # k * hop, k integer), reaching well past both ends so 'same' padding never shows
        lo = origin - 10.0
        n = math.ceil((s.timestamps[-1] + 20.0 - lo) * fs)
        grid = lo + np.arange(n) / fs
        per_ch = []
        for c in range(m.n_channels):
            u = np.interp(grid, s.timestamps, s.values[:, c])
            y = scipy.signal.convolve(u, taps, mode="same")
            idx = np.rint((np.asarray(starts)[:, None] + np.arange(contract.samples(m.name))
                           / dst - lo) * fs).astype(int)  # (W, T)
            per_ch.append(y[idx])
        out[m.name] = np.stack(per_ch, axis=1)
    return out


@signal_examples
@given(seed=st.integers(0, 10_000), jitter=st.floats(0.0, 0.45), gaps=st.integers(0, 4),
       origin=st.sampled_from([0.0, 1.25]), streaming=st.booleans())
def test_downsampled_windows_equal_a_whole_stream_reference(
    seed: int, jitter: float, gaps: int, origin: float, streaming: bool
) -> None:
    c = small_contract(max_gap_s=0.5)
    rng = np.random.default_rng(seed)
    streams: dict[str, Stream] = {}
    for i, m in enumerate(c.modalities):
        src = _REF_SOURCES[m.name]
        t, x = regular(src, 36.0, m.n_channels, seed + i, jitter=jitter)
        x = x + np.sin(2 * np.pi * rng.uniform(0.5, 0.4 * m.rate_hz) * t)[:, None]
        for _ in range(gaps):  # gaps the window bridges (shorter than max_gap_s)
            a = rng.uniform(0.0, 36.0)
            keep = (t < a) | (t > a + rng.uniform(0.05, 0.4))
            t, x = t[keep], x[keep]
        streams[m.name] = Stream(t, x, rate_hz=src)
    if streaming:  # the hub's path: half-second pushes, popping as it goes
        asm = WindowAssembler(c, origin=origin, source_rates=_REF_SOURCES)
        ws: list[Window] = []
        for t0 in np.arange(-0.5, 36.0, 0.5):  # jitter puts a first sample before 0
            for name, s in streams.items():
                sel = (s.timestamps >= t0) & (s.timestamps < t0 + 0.5)
                asm.push(name, s.timestamps[sel], s.values[sel])
            ws.extend(asm.pop_ready())
        ws.extend(asm.flush())
    else:
        ws = windows_from_streams(streams, c, origin=origin)
    assert len(ws) >= 12
    want = _reference_windows(streams, c, origin, [w.start for w in ws])
    for name, ref in want.items():
        got = np.stack([w.data[name] for w in ws])
        # float32 output of values near 3: 1e-5 is ~40 float32 steps, far below any
        # margin error (those change samples by 1e-2 and more)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5, err_msg=name)
