"""Small multi-rate streams and contracts for the core.signal tests."""

from __future__ import annotations

import numpy as np

from core.contract import InputContract, Modality, Normalization
from core.signal import Window, WindowAssembler

CLASSES = ("baseline", "stress", "amusement")
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
