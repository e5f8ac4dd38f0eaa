"""core.contract: layout, pack/unpack, validation and (de)serialisation of the input contract."""

from __future__ import annotations

import json
import math
from typing import Any, Final

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.contract import (
    ACC_SCALE_G,
    WESAD_CHEST_MODALITIES,
    WESAD_WRIST_MODALITIES,
    InputContract,
    Modality,
    Normalization,
    wesad_normalization,
)
from core.errors import (
    ContractError,
    WearableEdgeError,
)
from tests.fakes.inputs import (
    small_contract,
)
from tests.strategies import (
    FAST_PARSER,
    examples,
    json_values,
    mutated,
)

CLASSES = ("baseline", "stress", "amusement")


def wrist() -> InputContract:
    return InputContract(modalities=WESAD_WRIST_MODALITIES, class_names=CLASSES)


def test_wrist_layout_matches_rates_and_channels() -> None:
    c = wrist()
    sizes = {s.modality.name: (s.offset, s.samples, s.size) for s in c.layout()}
    # 60 s windows: bvp 64 Hz, eda 4 Hz, temp 4 Hz, acc 32 Hz x 3 channels, in contract order
    assert sizes == {
        "bvp": (0, 3840, 3840),
        "eda": (3840, 240, 240),
        "temp": (4080, 240, 240),
        "acc": (4320, 1920, 5760),
    }
    assert c.input_length == 10080


def test_pack_unpack_round_trip_is_channel_major() -> None:
    c = wrist()
    rng = np.random.default_rng(0)
    window = {
        s.modality.name: rng.normal(size=(s.modality.n_channels, s.samples)).astype(np.float32)
        for s in c.layout()
    }
    x = c.pack(window)
    assert x.dtype == np.float32 and x.shape == (c.input_length,)
    acc = c.layout()[3]
    # channel-major: the second channel of acc starts `samples` after the first
    assert x[acc.offset + acc.samples] == window["acc"][1, 0]
    back = c.unpack(x)
    for name, a in window.items():
        np.testing.assert_array_equal(back[name], a)
    batch = c.pack_batch([window, window])
    assert batch.shape == (2, c.input_length)
    assert c.unpack(batch)["acc"].shape == (2, 3, 1920)


def test_pack_rejects_wrong_shape_and_missing_modality() -> None:
    c = wrist()
    good = {s.modality.name: np.zeros((s.modality.n_channels, s.samples)) for s in c.layout()}
    bad = dict(good, eda=np.zeros((1, 239)))
    with pytest.raises(ContractError) as e:
        c.pack(bad)
    assert e.value.field == "eda"
    missing = {k: v for k, v in good.items() if k != "temp"}
    with pytest.raises(ContractError, match="temp"):
        c.pack(missing)


def test_json_round_trip_preserves_everything() -> None:
    c = InputContract(
        modalities=WESAD_WRIST_MODALITIES + WESAD_CHEST_MODALITIES,
        class_names=CLASSES,
        hop_s=10.0,
        normalization=Normalization(kind="global", center={"bvp": (1.5,)}, scale={"bvp": (2.0,)}),
    )
    d = json.loads(json.dumps(c.to_dict()))  # must be plain JSON (no inf)
    assert d["input_length"] == c.input_length
    assert InputContract.from_dict(d) == c


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(input_length=5), "input_length"),
        (lambda d: d["normalization"].update(kind="minmax"), "normalization.kind"),
        (lambda d: d.pop("class_names"), "contract"),
        (lambda d: d["modalities"][0].update(rate_hz=-1), "bvp.rate_hz"),
        (lambda d: d["modalities"][1].update(rate_hz=4.01), "eda.rate_hz"),
    ],
)
def test_from_dict_names_the_bad_field(change, field) -> None:
    d = wrist().to_dict()
    change(d)
    with pytest.raises(ContractError) as e:
        InputContract.from_dict(d)
    assert e.value.field == field
    assert isinstance(e.value, WearableEdgeError)


def test_invalid_contracts_are_refused() -> None:
    m = Modality("bvp", "a.u.", 64.0)
    with pytest.raises(ContractError):
        InputContract(modalities=(m, m), class_names=CLASSES)
    with pytest.raises(ContractError):
        InputContract(modalities=(m,), class_names=("only",))
    with pytest.raises(ContractError):
        InputContract(modalities=(m,), class_names=CLASSES, hop_s=120.0)
    with pytest.raises(ContractError):
        Modality("not a name", "x", 1.0)


def test_fixed_scales_are_checked_and_follow_subsets() -> None:
    acc = {"acc": (0.2, 0.2, 0.2)}
    c = InputContract(WESAD_WRIST_MODALITIES, CLASSES, normalization=Normalization(scale=acc))
    assert c.subset(["bvp", "acc"]).normalization.scale == acc
    assert c.subset(["bvp"]).normalization.scale == {}
    assert InputContract.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    bad = [
        {"acc": (0.2, 0.2)},  # one value per channel
        {"ecg": (1.0,)},  # not a modality of this contract
    ]
    for scale in bad:
        with pytest.raises(ContractError) as e:
            InputContract(WESAD_WRIST_MODALITIES, CLASSES, normalization=Normalization(scale=scale))
        assert e.value.field.startswith("normalization.scale.")
    for values in [(0.0, 1.0, 1.0), (math.nan, 1.0, 1.0), (math.inf, 1.0, 1.0)]:
        with pytest.raises(ContractError):
            Normalization(scale={"acc": values})
    for kw in ({"clip": math.nan}, {"calibration_s": math.nan}, {"clip": 0.0}):
        with pytest.raises(ContractError):
            Normalization(**kw)


def test_wesad_normalization_fixes_only_the_accelerometers() -> None:
    n = wesad_normalization()
    assert n.kind == "subject_baseline"
    assert n.scale == {"acc": (ACC_SCALE_G,) * 3, "c_acc": (ACC_SCALE_G,) * 3}
    assert wesad_normalization(["bvp", "eda"]).scale == {}


def test_subset_keeps_order_and_window() -> None:
    c = wrist().subset(["acc", "bvp"])
    assert c.modality_names == ("acc", "bvp")
    assert c.window_s == 60.0 and c.input_length == 5760 + 3840
    assert math.isinf(c.modality("bvp").valid_range[1])


# -- malformed input ends in a typed error (property tests; regressions: test_regression_*) --
CONTRACT_DICT: Final = small_contract().to_dict()


@examples(4 * FAST_PARSER)
@given(st.one_of(mutated(CONTRACT_DICT), json_values))
def test_contract_from_dict_raises_only_contract_errors(d: Any) -> None:
    try:
        c = InputContract.from_dict(d)
    except ContractError:
        return
    assert InputContract.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "change",
    [
        {"window_s": math.inf},  # round(inf) raised OverflowError
        {"version": math.inf},  # int(inf) raised OverflowError
        {"input_length": "eighty"},  # was checked outside the try: ValueError
        {"input_length": [80]},
        {"normalization": {"center": {"bvp": [10**400]}}},  # float(huge int): OverflowError
    ],
)
def test_regression_contract_from_dict_overflow_and_input_length(change: dict[str, Any]) -> None:
    with pytest.raises(ContractError):
        InputContract.from_dict({**CONTRACT_DICT, **change})


def test_regression_contract_from_dict_huge_rate() -> None:
    d = json.loads(json.dumps(CONTRACT_DICT))
    d["modalities"][0]["rate_hz"] = 10**400
    with pytest.raises(ContractError):
        InputContract.from_dict(d)


# -- beats modalities (contract version 2) -----------------------------------------------------
def test_beats_modality_round_trips_and_carries_its_cleaning_rules() -> None:
    from core.contract import HR_MODALITIES, BeatRules

    c = InputContract(HR_MODALITIES, ("a", "b", "c"), beats=BeatRules(method="malik", context_s=9.0))
    d = json.loads(json.dumps(c.to_dict()))
    assert d["version"] == 2 and d["modalities"][0]["kind"] == "beats"
    assert d["beats"]["method"] == "malik" and d["beats"]["max_corrected_fraction"] == 0.05
    back = InputContract.from_dict(d)
    assert back == c and back.has_beats and back.modality("rr").beats
    assert back.beats.quality().max_gap_s == 3.0


def test_a_version_1_manifest_reads_as_samples_and_writes_back_unchanged() -> None:
    d = json.loads(json.dumps(InputContract(
        (Modality("eda", "uS", 4.0),), ("a", "b"), version=1).to_dict()))
    assert d["version"] == 1 and "beats" not in d and "kind" not in d["modalities"][0]
    c = InputContract.from_dict(d)
    assert not c.has_beats and json.loads(json.dumps(c.to_dict())) == d
    beats_v1 = {**d, "modalities": [{**d["modalities"][0], "kind": "beats"}]}
    with pytest.raises(ContractError, match="version 2"):
        InputContract.from_dict(beats_v1)
    with pytest.raises(ContractError, match="not supported"):
        InputContract.from_dict({**d, "version": 3})


def test_beats_modalities_have_one_channel_and_known_rules() -> None:
    from core.contract import BeatRules

    with pytest.raises(ContractError, match="one channel"):
        Modality("rr", "s", 4.0, ("a", "b"), kind="beats")
    with pytest.raises(ContractError, match="unknown kind"):
        Modality("rr", "s", 4.0, kind="events")
    with pytest.raises(ContractError, match="method"):
        BeatRules(method="kubios")
    with pytest.raises(ContractError):
        BeatRules(max_corrected_fraction=1.5)
