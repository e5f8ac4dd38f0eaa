"""core.signal.calibration: normalization, the calibration a baseline gives, streaming equals batch."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.contract import (
    InputContract,
    Normalization,
)
from core.errors import CalibrationError, ContractError
from core.signal import (
    Calibration,
    CalibrationAccumulator,
    WindowAssembler,
    compute_calibration,
    normalize,
    scale_floor,
    windows_from_streams,
)
from tests.fakes.inputs import CALIBRATION_DICT
from tests.fakes.streams import CLASSES, SMALL_MODS, regular, small_contract, small_streams
from tests.strategies import (
    FAST_PARSER,
    examples,
    json_values,
    mutated,
    random_chunks,
    signal_examples,
)


def test_normalize_clips_and_is_float32() -> None:
    x = np.array([[0.0, 1.0, 100.0], [5.0, 5.0, -100.0]])
    y = normalize(x, [1.0, 5.0], [0.5, 2.0], clip=10.0)
    assert y.dtype == np.float32
    assert np.array_equal(y, np.array([[-2.0, 0.0, 10.0], [0.0, 0.0, -10.0]], np.float32))


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


@signal_examples
@given(seed=st.integers(0, 1000), data=st.data())
def test_calibration_accumulator_equals_batch(seed: int, data: st.DataObject) -> None:
    c = small_contract("subject_baseline")
    s = small_streams(seed, 35.0, jitter=0.3, nan_frac=0.02)
    acc = CalibrationAccumulator(c, source="x")
    chunks = random_chunks(s, data)
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


# -- malformed input ends in a typed error (property tests; regressions: test_regression_*) --
@examples(4 * FAST_PARSER)
@given(st.one_of(mutated(CALIBRATION_DICT), json_values))
def test_calibration_from_dict_raises_only_calibration_errors(d: Any) -> None:
    with contextlib.suppress(CalibrationError):
        Calibration.from_dict(d)


@pytest.mark.parametrize(
    "d",
    [
        {**CALIBRATION_DICT, "center": {"bvp": 10**400, "acc": [0.1, 0.2, 0.9]}},
        {**CALIBRATION_DICT, "schema": math.inf},
    ],
)
def test_regression_calibration_from_dict_overflow(d: dict[str, Any]) -> None:
    with pytest.raises(CalibrationError):
        Calibration.from_dict(d)
