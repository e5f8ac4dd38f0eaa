"""core.signal.hops: windows made from hops carried across windows are the whole-window
computation's windows, bit for bit, on streams with jitter, gaps, non-finite values, source
rates that need the anti-aliasing FIR, rails, calibration, a stalled modality and any
chunking; and the carried path is the one that ran."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from core.contract import WESAD_WRIST_MODALITIES, InputContract, Normalization
from core.signal import Calibration, Window, WindowAssembler, windows_from_streams
from core.signal.hops import hop_layout
from tests.fakes.streams import CLASSES, assert_same, small_contract, small_streams
from tests.strategies import random_chunks, signal_examples


def _stream_through(
    asm: WindowAssembler, chunks: list[tuple[str, np.ndarray, np.ndarray]], pops: list[bool]
) -> list[Window]:
    got: list[Window] = []
    for i, (name, t, x) in enumerate(chunks):
        asm.push(name, t, x)
        if pops[i % len(pops)]:
            got.extend(asm.pop_ready())
    got.extend(asm.flush())
    return got


@signal_examples
@given(
    seed=st.integers(0, 10_000),
    src_scale=st.sampled_from([1.0, 2.5, 4.0]),
    jitter=st.floats(0.0, 0.45),
    nan_frac=st.sampled_from([0.0, 0.0, 0.002, 0.05]),
    gaps=st.integers(0, 3),
    origin=st.sampled_from([0.0, -1.5, 3.25, 1e6 + 0.1]),
    declared=st.booleans(),
    data=st.data(),
)
def test_streamed_windows_equal_whole_windows(
    seed: int,
    src_scale: float,
    jitter: float,
    nan_frac: float,
    gaps: int,
    origin: float,
    declared: bool,
    data: st.DataObject,
) -> None:
    c = small_contract()
    s = small_streams(seed, 40.0, src_scale, jitter, nan_frac, gaps)
    if origin > 1e5:  # hub clocks: seconds since the epoch-like large values
        s = {n: (t + origin, x) for n, (t, x) in s.items()}
    rates = {"bvp": 16.0 * src_scale, "acc": 8.0, "eda": 4.0} if declared else None
    chunks = random_chunks(s, data)
    pops = data.draw(st.lists(st.booleans(), min_size=1, max_size=30), label="pops")
    whole_asm = WindowAssembler(c, origin=origin, source_rates=rates, streaming=False)
    ref = _stream_through(whole_asm, chunks, pops)
    asm = WindowAssembler(c, origin=origin, source_rates=rates)
    got = _stream_through(asm, chunks, pops)
    assert len(ref) >= 14
    assert_same(got, ref)
    assert not whole_asm.stats.streamed
    if nan_frac == 0.0 and gaps == 0:  # nothing forces the whole path: hops carried it
        assert sum(asm.stats.streamed.values()) >= 3 * (len(got) - 8)


def _wrist_streams(seed: int, minutes: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A wrist recording with the hub's faults: jitter, a BLE gap, a dropout of NaNs, an EDA
    rail, a flat temperature stretch, an accelerometer beyond its range."""
    rng = np.random.default_rng(seed)
    out = {}
    for m in WESAD_WRIST_MODALITIES:
        n = round(minutes * 60 * m.rate_hz)
        t = np.arange(n) / m.rate_hz + rng.uniform(-0.3, 0.3, n) / m.rate_hz
        level = {"temp": 33.0, "eda": 2.0}.get(m.name, 0.5)
        x = (
            level
            + 0.3 * np.sin(2 * np.pi * 0.9 * t)[:, None]
            + 0.05 * rng.normal(size=(n, m.n_channels))
        )
        x[(t > 100) & (t < 101.2)] = np.nan
        if m.name == "eda":
            x[(t > 200) & (t < 230), 0] = 2.2  # pinned
            x[:, 0] = np.minimum(x[:, 0], 2.25)
        if m.name == "temp":
            x[(t > 300) & (t < 380)] = 33.0  # flat
        if m.name == "acc":
            x[(t > 400) & (t < 410), 1] = 9.0  # beyond +-8 g
        keep = (t < 150) | (t > 153.5)  # a BLE gap
        out[m.name] = (t[keep], x[keep])
    return out


def test_wrist_hub_stream_with_faults_and_calibration_is_the_same_bit_for_bit() -> None:
    c = InputContract(WESAD_WRIST_MODALITIES, CLASSES)  # subject_baseline normalization
    s = _wrist_streams(4, 12.0)
    cal = Calibration(
        center={m.name: np.full(m.n_channels, 0.4) for m in c.modalities},
        scale={m.name: np.full(m.n_channels, 0.2) for m in c.modalities},
    )
    # BLE-sized chunks, modalities interleaved in time order, popping after each
    sizes = {"bvp": 16, "acc": 8, "eda": 1, "temp": 1}
    chunks = sorted(
        (
            (float(t[i]), n, t[i : i + sizes[n]], x[i : i + sizes[n]])
            for n, (t, x) in s.items()
            for i in range(0, t.size, sizes[n])
        ),
        key=lambda ch: ch[0],
    )
    runs = []
    for streaming in (False, True):
        asm = WindowAssembler(c, calibration=cal, streaming=streaming)
        runs.append((_stream_through(asm, [ch[1:] for ch in chunks], [True]), asm.stats))
    (ref, ref_stats), (got, stats) = runs
    assert_same(got, ref)
    assert stats.windows_invalid == ref_stats.windows_invalid
    reasons = {r for w in ref for r in w.reasons}
    assert {"gap", "non_finite", "saturated", "flat"} <= {r.value for r in reasons}
    assert stats.streamed["bvp"] >= len(got) - 40
    assert_same(windows_from_streams(s, c, calibration=cal), ref)


def test_a_stalled_modality_drops_the_carried_hops() -> None:
    c = small_contract()
    s = small_streams(5, 200.0)
    runs = []
    for streaming in (False, True):
        asm = WindowAssembler(c, max_buffer_s=20.0, streaming=streaming)
        out: list[Window] = []
        for t0 in np.arange(0.0, 200.0, 1.0):
            for name, (t, x) in s.items():
                lo = t0
                if name == "eda":  # eda stalls for a minute, then its backlog arrives
                    if 60.0 <= t0 < 120.0:
                        continue
                    lo = 60.0 if t0 == 120.0 else t0
                sel = (t >= lo) & (t < t0 + 1.0)
                asm.push(name, t[sel], x[sel])
            out.extend(asm.pop_ready())
        out.extend(asm.flush())
        assert asm.stats.discarded_stalled
        runs.append((out, asm.stats.streamed))
    (ref, _), (got, streamed) = runs
    assert_same(got, ref)
    assert streamed


def test_hop_layout() -> None:
    assert hop_layout(60.0, 5.0, 64.0) == (12, 320)
    assert hop_layout(60.0, 5.0, 4.0) == (12, 20)
    assert hop_layout(60.0, 7.0, 4.0) is None  # not whole hops: computed whole
    assert hop_layout(60.0, 5.0, 0.3) is None  # not whole points per hop
    c = InputContract(
        WESAD_WRIST_MODALITIES, CLASSES, normalization=Normalization("none"), hop_s=7.0
    )
    asm = WindowAssembler(c)
    for name, (t, x) in _wrist_streams(1, 3.0).items():
        asm.push(name, t, x)
    assert asm.flush()  # still windows, all computed whole
    assert not asm.stats.streamed
