"""core.signal.calibration against its documented rules, computed here directly: the stored
form (``to_dict``: schema, source, center, scale), a calibration that does not fit a
contract (the error names the modality and both channel counts), and the baseline of a
recording (median and IQR / 1.349 with the unit's floor) from numpy over the first
``calibration_s`` seconds."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import CalibrationError, ContractError
from core.signal import Calibration, CalibrationAccumulator, compute_calibration
from core.signal.calibration import CALIBRATION_SCHEMA, SCALE_FLOOR_DEFAULT, scale_floor
from tests.fakes.streams import small_contract, small_streams


def test_stored_form_is_the_documented_json() -> None:
    cal = Calibration(center={"eda": [2.0]}, scale={"eda": [0.5]}, source="enrollment")
    assert cal.to_dict() == {
        "schema": CALIBRATION_SCHEMA,
        "source": "enrollment",
        "center": {"eda": [2.0]},
        "scale": {"eda": [0.5]},
    }
    assert CALIBRATION_SCHEMA == 1


def test_a_calibration_that_does_not_fit_the_contract_names_what_differs() -> None:
    c = small_contract("subject_baseline")
    center = {"bvp": [0.0], "acc": [0.0, 0.0], "eda": [1.0]}  # acc has 3 channels
    scale = {"bvp": [1.0], "acc": [1.0, 1.0], "eda": [1.0]}
    with pytest.raises(CalibrationError) as e:
        Calibration(center=center, scale=scale).check(c)
    assert str(e.value) == "acc: calibration has 2 channels, contract has 3"
    del center["eda"], scale["eda"]
    center["acc"], scale["acc"] = [0.0] * 3, [1.0] * 3
    with pytest.raises(CalibrationError) as e:
        Calibration(center=center, scale=scale).check(c)
    assert str(e.value) == "calibration has no modality 'eda'"


def test_baseline_is_median_and_iqr_over_the_first_period() -> None:
    c = small_contract("subject_baseline")  # calibration_s = 20
    s = small_streams(3, 40.0, jitter=0.2)
    cal = compute_calibration(s, c)
    for m in c.modalities:
        t, x = s[m.name]
        first = x[t < t[0] + 20.0]
        q25, med, q75 = np.percentile(first, [25.0, 50.0, 75.0], axis=0)
        np.testing.assert_array_equal(cal.center[m.name], med)
        np.testing.assert_allclose(
            cal.scale[m.name], np.maximum((q75 - q25) / 1.349, 0.0), rtol=1e-15
        )


def _streams(duration: float, t0: float = 0.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    c = small_contract("subject_baseline")
    rng = np.random.default_rng(5)
    out = {}
    for m in c.modalities:
        t = t0 + np.arange(round(duration * m.rate_hz)) / m.rate_hz
        out[m.name] = (t, 3.0 + rng.normal(size=(t.size, m.n_channels)))
    return out


def test_the_period_is_measured_from_the_first_sample() -> None:
    c = small_contract("subject_baseline")  # 20 s
    with pytest.raises(CalibrationError) as e:
        compute_calibration(_streams(19.5, t0=100.0), c)
    assert str(e.value) == "bvp: 19.5 s of data, need 20 s"
    compute_calibration(_streams(20.0, t0=100.0), c)
    s = _streams(30.0)
    s["eda"] = (np.array([5.0]), np.array([[1.0]]))
    with pytest.raises(CalibrationError) as e:
        compute_calibration(s, c)
    assert str(e.value) == "eda: 1 samples, need 20 s of data"
    # two samples 10 s apart reach the period's end (last sample + one spacing) and cover it
    s["eda"] = (np.array([0.0, 10.0]), np.array([[1.0], [2.0]]))
    cal = compute_calibration(s, c)
    assert cal.center["eda"][0] == 1.5


def test_coverage_exactly_at_the_minimum_is_enough() -> None:
    c = small_contract("subject_baseline")  # min_coverage 0.9 of 20 s
    s = _streams(30.0)
    t, x = s["eda"]  # 4 Hz: 80 samples in the period, 72 finite = 18 s = 0.9 x 20 s
    x = x.copy()
    x[np.arange(8) * 10] = np.nan
    s["eda"] = (t, x)
    assert np.count_nonzero(np.isfinite(x[t < 20.0])) * 0.25 == 0.9 * 20.0
    compute_calibration(s, c)
    x[11] = np.nan
    with pytest.raises(CalibrationError, match=r"only 17\.8 s of finite samples"):
        compute_calibration(s, c)


def test_progress_is_the_slowest_modalitys_fraction_of_the_period() -> None:
    c = small_contract("subject_baseline")  # 20 s
    s = _streams(40.0)
    acc = CalibrationAccumulator(c)
    assert acc.progress() == 0.0
    for name, (t, x) in s.items():
        if name != "eda":
            acc.push(name, t[t < 15.0], x[t < 15.0])
    assert acc.progress() == 0.0  # eda has not started
    t, x = s["eda"]
    acc.push("eda", t[t < 5.0], x[t < 5.0])
    want = min((t_[t_ < (5.0 if n == "eda" else 15.0)][-1]) / 20.0 for n, (t_, _) in s.items())
    assert acc.progress() == pytest.approx(want) and 0.2 < want < 0.25
    # past the period but not usable (too few finite samples): capped at 1
    nan = {n: (t_, np.full_like(x_, np.nan)) for n, (t_, x_) in s.items()}
    acc = CalibrationAccumulator(c)
    for name, (t_, x_) in nan.items():
        acc.push(name, t_, x_)
    assert not acc.ready and acc.progress() == 1.0


def test_scale_floor_by_unit_and_the_default() -> None:
    assert scale_floor("uS") == 0.01 and scale_floor("degC") == 0.1 and scale_floor("ms") == 1.0
    assert scale_floor("furlong") == SCALE_FLOOR_DEFAULT == 1e-3


def test_source_defaults_to_empty_and_a_fresh_accumulator_is_not_ready() -> None:
    c = small_contract("subject_baseline")
    assert compute_calibration(_streams(25.0), c).source == ""
    acc = CalibrationAccumulator(c)
    assert acc.source == "" and not acc.ready and acc.progress() == 0.0


def test_push_errors_name_the_field() -> None:
    acc = CalibrationAccumulator(small_contract("subject_baseline"))
    with pytest.raises(ContractError) as e:
        acc.push("ecg", [0.0], [[1.0]])
    assert e.value.field == "modalities"
    assert str(e.value) == "modalities: no modality 'ecg' in ('bvp', 'acc', 'eda')"
    with pytest.raises(ContractError) as e:
        acc.push("acc", [0.0, 1.0], [[1.0, 2.0], [1.0, 2.0]])
    assert e.value.field == "acc"


def test_stored_form_without_a_schema_is_the_current_one() -> None:
    cal = Calibration.from_dict({"center": {"eda": [2]}, "scale": {"eda": [0.5]}})
    assert cal.center["eda"].tolist() == [2.0] and cal.source == ""
    with pytest.raises(CalibrationError) as e:
        Calibration.from_dict({"schema": 99, "center": {}, "scale": {}})
    assert str(e.value) == "calibration schema 99 is not supported (this code reads 1)"


def test_a_modality_with_nothing_pushed_says_zero_samples() -> None:
    c = small_contract("subject_baseline")
    acc = CalibrationAccumulator(c)
    for name, (t, x) in _streams(25.0).items():
        if name != "eda":
            acc.push(name, t, x)
    with pytest.raises(CalibrationError) as e:
        acc.result()
    assert str(e.value) == "eda: 0 samples, need 20 s of data"


def test_center_and_scale_become_float64_vectors() -> None:
    cal = Calibration(center={"eda": 2, "acc": [[1], [2], [3]]}, scale={"eda": 1, "acc": [1, 1, 2]})
    for k, n in (("eda", 1), ("acc", 3)):
        for a in (cal.center[k], cal.scale[k]):
            assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (n,)
    assert cal.center["acc"].tolist() == [1.0, 2.0, 3.0] and cal.scale["eda"].tolist() == [1.0]


@pytest.mark.parametrize(
    ("center", "scale", "message"),
    [
        ({"a": [1.0]}, {"b": [1.0]}, "center has ['a'] but scale has ['b']"),
        ({"a": [1.0, 2.0]}, {"a": [1.0]}, "a: center (2,) != scale (1,)"),
        ({"a": [np.inf]}, {"a": [1.0]}, "a: center/scale must be finite"),
        ({"a": [1.0]}, {"a": [np.nan]}, "a: center/scale must be finite"),
        ({"a": [1.0]}, {"a": [0.0]}, "a: scale must be positive, got [0.0]"),
    ],
)
def test_a_malformed_calibration_says_what_is_wrong(
    center: dict[str, list[float]], scale: dict[str, list[float]], message: str
) -> None:
    with pytest.raises(CalibrationError) as e:
        Calibration(center=center, scale=scale)
    assert str(e.value) == message


def test_a_malformed_stored_form_names_the_python_error() -> None:
    with pytest.raises(CalibrationError) as e:
        Calibration.from_dict({"scale": {}})
    assert str(e.value) == "malformed calibration: KeyError('center')"


def test_progress_counts_from_each_modalitys_first_sample() -> None:
    c = small_contract("subject_baseline")  # 20 s
    acc = CalibrationAccumulator(c)
    for name, (t, x) in _streams(40.0, t0=1000.0).items():
        acc.push(name, t[t < 1010.0], x[t < 1010.0])
    assert 0.45 < acc.progress() < 0.5  # about 10 s of 20, not (1000 + 1010) / 20
