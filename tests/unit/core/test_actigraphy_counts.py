"""ActiGraph counts in numpy: against agcounts, streamed against batch, and known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.rhythms import raw_signal
from core.actigraphy import SUPPORTED_RATES, CountsAccumulator, activity_counts, vector_magnitude
from core.actigraphy.counts import BPF_A, BPF_B, _LinearFilter
from core.errors import ActigraphyError, WearableEdgeError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "actigraphy"


def _direct_form(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The textbook difference equation, one sample at a time, from rest."""
    y = np.zeros_like(x)
    for n in range(len(x)):
        acc = sum(b[k] * x[n - k] for k in range(len(b)) if n - k >= 0)
        acc -= sum(a[k] * y[n - k] for k in range(1, len(a)) if n - k >= 0)
        y[n] = acc / a[0]
    return y


def _noise(fs: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    moving = rng.random((n, 1)) > 0.4
    return rng.normal(0, 0.4, (n, 3)) * moving + np.array([0.0, 0.0, 1.0])


def test_block_filter_equals_the_difference_equation_across_blocks() -> None:
    x = np.random.default_rng(0).normal(size=(700, 2))
    f = _LinearFilter(BPF_B, BPF_A, block=64)  # 700 = 10 full blocks and a partial one
    y, _ = f.run(x, np.zeros((f.order, 2)))
    for c in range(2):
        np.testing.assert_allclose(y[:, c], _direct_form(BPF_B, BPF_A, x[:, c]), atol=1e-12)


def test_block_filter_carries_state_between_calls() -> None:
    x = np.random.default_rng(1).normal(size=(900, 3))
    f = _LinearFilter(BPF_B, BPF_A)
    whole, z_whole = f.run(x, np.zeros((f.order, 3)))
    first, z = f.run(x[:333], np.zeros((f.order, 3)))
    second, z = f.run(x[333:], z)
    np.testing.assert_allclose(np.concatenate([first, second]), whole, atol=1e-12)
    np.testing.assert_allclose(z, z_whole, atol=1e-12)


def test_steady_state_holds_a_constant_input() -> None:
    a = 0.69  # the one-pole low-pass: a nonzero DC gain, a / (1 - a)
    f = _LinearFilter(np.array([a]), np.array([1.0, -a]))
    y, _ = f.run(np.full((300, 1), 0.8), f.steady_state()[:, None] * 0.8)
    np.testing.assert_allclose(y, 0.8 * a / (1 - a), rtol=1e-12)
    bpf = _LinearFilter(BPF_B, BPF_A)  # a band-pass: a still input stays at zero output
    y, _ = bpf.run(np.full((300, 1), 0.8), bpf.steady_state()[:, None] * 0.8)
    assert np.abs(y).max() < 1e-9


@pytest.mark.parametrize("key", ["30/30", "30/60", "32/30", "32/60", "50/30", "50/60",
                                 "100/30", "100/60"])
def test_counts_equal_the_committed_agcounts_reference(key: str) -> None:
    ref = json.loads((FIXTURES / "agcounts_reference.json").read_text())
    fs, ep = map(int, key.split("/"))
    theirs = np.asarray(ref["counts"][key], dtype=np.int64)
    ours = activity_counts(raw_signal(fs, ref["seconds"]), fs, ep)
    assert theirs.sum() > 1000  # the signal moves: a zero-vs-zero match would prove nothing
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("fs", SUPPORTED_RATES)
def test_counts_equal_agcounts_on_noise_when_it_is_installed(fs: int) -> None:
    extract = pytest.importorskip("agcounts.extract")
    x = _noise(fs, 300 + fs / 7, seed=fs)  # not a whole number of epochs
    for ep in (30, 60):
        theirs = extract.get_counts(x, fs, ep)
        np.testing.assert_array_equal(activity_counts(x, fs, ep), theirs)


@pytest.mark.parametrize("fs", [30, 32, 50, 60, 100, 256])
def test_streamed_counts_equal_batch_counts_whatever_the_chunks(fs: int) -> None:
    x = _noise(fs, 200, seed=7)
    batch = activity_counts(x, fs, 30)
    rng = np.random.default_rng(fs)
    acc = CountsAccumulator(fs, 30, start=1000.0)
    epochs, i = [], 0
    while i < len(x):
        k = int(rng.integers(1, 3 * fs))
        epochs += acc.push(x[i : i + k])
        i += k
    epochs += acc.flush()
    assert len(batch) == 6
    np.testing.assert_array_equal(np.array([e.counts for e in epochs]), batch)
    assert [e.start for e in epochs] == [1000.0 + 30 * k for k in range(6)]
    assert [e.index for e in epochs] == list(range(6))


def test_an_epoch_is_returned_once_the_filters_have_seen_past_its_end() -> None:
    fs = 32
    acc = CountsAccumulator(fs, 30)
    x = _noise(fs, 90, seed=3)
    got = acc.push(x[: 31 * fs])  # 1 s past the first epoch
    assert [e.index for e in got] == [0]
    assert acc.push(x[31 * fs : 61 * fs])[0].index == 1


def test_still_and_gravity_only_give_zero_counts() -> None:
    fs = 32
    still = np.tile([0.02, -0.3, 0.95], (fs * 180, 1))
    np.testing.assert_array_equal(activity_counts(still, fs, 60), np.zeros((3, 3)))


def test_movement_gives_counts_on_the_moving_axis() -> None:
    fs = 30
    t = np.arange(fs * 120) / fs
    x = np.zeros((t.size, 3))
    x[:, 2] = 1.0
    x[:, 0] = 0.5 * np.sin(2 * np.pi * 2.0 * t)  # 2 Hz: in the pass band
    c = activity_counts(x, fs, 60)
    assert np.all(c[:, 0] > 1000)
    assert np.all(c[:, 1:] == 0)
    np.testing.assert_allclose(vector_magnitude(c), np.linalg.norm(c, axis=1))


def test_light_is_averaged_per_epoch_at_its_own_rate() -> None:
    fs = 30
    acc = CountsAccumulator(fs, 30)
    epochs = []
    for k in range(4):  # 4 pushes of 30 s, each with 3 lux samples (0.1 Hz)
        lux = np.array([10.0, 20.0, 30.0]) * (k + 1)
        epochs += acc.push(_noise(fs, 30, seed=k), light=lux)
    epochs += acc.flush()
    assert [e.light for e in epochs] == [20.0, 40.0, 60.0, 80.0]
    no_light = CountsAccumulator(fs, 30)
    assert all(e.light is None for e in no_light.push(_noise(fs, 65, seed=9)) + no_light.flush())


@pytest.mark.parametrize(("fs", "epoch", "data", "fragment"), [
    (25, 60, np.zeros((10, 3)), "sample rate 25"),
    (30, 0, np.zeros((10, 3)), "whole number of seconds"),
    (30, 60, np.zeros((10, 2)), "(samples, 3)"),
    (30, 60, np.full((10, 3), np.nan), "NaN"),
])
def test_bad_input_is_refused_with_a_clear_error(fs: int, epoch: int, data: np.ndarray,
                                                 fragment: str) -> None:
    with pytest.raises(ActigraphyError, match=None) as info:
        CountsAccumulator(fs, epoch).push(data)
    assert fragment in str(info.value)
    assert isinstance(info.value, WearableEdgeError)


def test_push_after_flush_is_refused() -> None:
    acc = CountsAccumulator(30, 30)
    acc.flush()
    with pytest.raises(ActigraphyError, match="after flush"):
        acc.push(np.zeros((3, 3)))
