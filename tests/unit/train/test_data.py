"""train.data: WESAD windows via core.signal, label purity, global normalization, parallel loading, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from core.contract import InputContract
from core.recording import load_wesad_subject
from core.signal import compute_calibration, normalize, windows_from_streams
from tests.fakes.recordings import (
    cached_synth_root,
    malicious_pickle,
    wesad_dict,
    write_arrays_npz,
    write_wesad_pickle,
)
from train.arrays_data import load_arrays
from train.data import (
    LABEL_PURITY,
    WindowedDataset,
    fit_global_normalization,
    load_wesad,
)
from train.errors import DataError, TrainError

WRIST = ["bvp", "eda", "temp", "acc"]
# baseline 330 s then stress 90 s, no gaps: windows (60 s, hop 5 s) start at 0, 5, ..., 360
PURITY_SEGS = ((1, 330), (2, 90))


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fake_wesad")
    write_wesad_pickle(root, wesad_dict(PURITY_SEGS, subject="S2", seed=1), subject="S2")
    write_wesad_pickle(root, wesad_dict(PURITY_SEGS, subject="S3", seed=2), subject="S3")
    return root


@pytest.fixture(scope="module")
def fake_ds(fake_root: Path) -> WindowedDataset:
    return load_wesad(fake_root, modalities=[*WRIST, "c_eda", "resp"])


def test_label_purity_keeps_only_90_percent_windows(fake_ds: WindowedDataset) -> None:
    # start s is baseline when (330 - s)/60 >= 0.9 -> s <= 276 (0..275: 56 windows), stress
    # when (s + 60 - 330)/60 >= 0.9 -> s >= 324 (325..360: 8 windows), mixed in between (9).
    assert LABEL_PURITY == 0.9
    for sid in ("S2", "S3"):
        rows = fake_ds.groups == sid
        starts = fake_ds.start[rows]
        y = fake_ds.y[rows]
        np.testing.assert_array_equal(starts[y == 0], np.arange(0, 276, 5.0))
        np.testing.assert_array_equal(starts[y == 1], np.arange(325, 361, 5.0))
    assert fake_ds.info["mixed_label"] == 2 * 9
    assert fake_ds.info["per_subject"] == {"S2": 64, "S3": 64}
    assert fake_ds.info["invalid"] == {}
    assert fake_ds.class_names == ("baseline", "stress", "amusement")
    assert fake_ds.class_counts() == {"baseline": 112, "stress": 16, "amusement": 0}


def test_windows_equal_edge_preprocess_output(fake_root: Path, fake_ds: WindowedDataset) -> None:
    # the loader must be a thin shell around core.signal: same calibration, same windows
    rec = load_wesad_subject(fake_root / "S3" / "S3.pkl")
    contract = fake_ds.contract
    streams = rec.streams(contract.modality_names)
    cal = compute_calibration(streams, contract)
    wins = {w.start: w for w in windows_from_streams(streams, contract, calibration=cal)}
    rows = np.flatnonzero(fake_ds.groups == "S3")
    for i in rows[[0, 30, -1]]:
        w = wins[fake_ds.start[i]]
        for name in contract.modality_names:
            np.testing.assert_array_equal(fake_ds.modalities[name][i], w.data[name])


def test_shapes_follow_the_contract(fake_ds: WindowedDataset) -> None:
    c = fake_ds.contract
    assert c.modality_names == (*WRIST, "c_eda", "resp")
    assert c.window_s == 60.0 and c.hop_s == 5.0
    assert c.normalization.kind == "subject_baseline"
    for m in c.modalities:
        assert fake_ds.modalities[m.name].shape == (len(fake_ds), m.n_channels, c.samples(m.name))
        assert fake_ds.modalities[m.name].dtype == np.float32
        assert np.isfinite(fake_ds.modalities[m.name]).all()
    assert fake_ds.y.dtype == np.int64 and fake_ds.groups.dtype.kind == "U"


def test_pack_matches_contract_pack(fake_ds: WindowedDataset) -> None:
    names = ["eda", "bvp", "acc"]
    packed = fake_ds.pack(names)
    c = fake_ds.contract_for(names)
    assert isinstance(c, InputContract) and c.modality_names == tuple(names)
    assert packed.shape == (len(fake_ds), c.input_length) and packed.dtype == np.float32
    for i in (0, 7, len(fake_ds) - 1):
        window = {n: fake_ds.modalities[n][i] for n in names}
        np.testing.assert_array_equal(packed[i], c.pack(window))
    # and unpack gives the windows back
    back = c.unpack(packed)
    np.testing.assert_array_equal(back["acc"], fake_ds.modalities["acc"])


def test_select(fake_ds: WindowedDataset) -> None:
    mask = fake_ds.groups == "S2"
    sub = fake_ds.select(mask)
    assert len(sub) == int(mask.sum()) and set(sub.groups) == {"S2"}
    np.testing.assert_array_equal(sub.modalities["bvp"], fake_ds.modalities["bvp"][mask])
    by_index = fake_ds.select(np.flatnonzero(mask)[:3])
    assert len(by_index) == 3 and by_index.contract == fake_ds.contract
    with pytest.raises(ValueError, match="mask shape"):
        fake_ds.select(np.ones(3, bool))


def test_binary_task(fake_root: Path) -> None:
    ds = load_wesad(fake_root, task="binary", modalities=["eda"])
    assert ds.class_names == ("non_stress", "stress")
    assert ds.class_counts() == {"non_stress": 112, "stress": 16}


def test_synthetic_data_set_loads(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = cached_synth_root(tmp_path_factory, n_subjects=3, minutes_scale=0.25)
    ds = load_wesad(root, modalities=[*WRIST, "c_eda"])
    assert ds.subjects == ["S2", "S3", "S4"]
    for sid in ds.subjects:
        counts = np.bincount(ds.y[ds.groups == sid], minlength=3)
        assert (counts >= 2).all(), f"{sid}: {counts}"  # every class, every subject
    assert sum(ds.info["per_subject"].values()) == len(ds)
    assert ds.info["mixed_label"] > 0  # segment boundaries exist and are dropped, counted
    # every kept window really is >= 90 % its class at 700 Hz
    codes = {s: load_wesad_subject(root / s / f"{s}.pkl").label_codes() for s in ds.subjects}
    wesad_code = np.array([1, 2, 3])
    for i in range(0, len(ds), 7):
        lab = codes[ds.groups[i]][int(ds.start[i] * 700): int((ds.start[i] + 60) * 700)]
        assert np.mean(lab == wesad_code[ds.y[i]]) >= LABEL_PURITY


# -- WESAD errors -----------------------------------------------------------------------------
def test_missing_root_and_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found") as e:
        load_wesad(tmp_path / "nope")
    assert e.value.path == str(tmp_path / "nope")
    with pytest.raises(DataError, match=r"no subject files S\*/S\*.pkl"):
        load_wesad(tmp_path)


def test_subject_dir_without_pickle(tmp_path: Path) -> None:
    (tmp_path / "S4").mkdir()
    with pytest.raises(DataError, match=r"has no S4\.pkl") as e:
        load_wesad(tmp_path)
    assert e.value.path.endswith("S4.pkl")


def test_malformed_subject_file_is_named(tmp_path: Path) -> None:
    d = wesad_dict(((1, 20),))
    del d["signal"]["wrist"]["TEMP"]
    p = write_wesad_pickle(tmp_path, d, subject="S5")
    with pytest.raises(DataError, match="missing key signal/wrist/TEMP") as e:
        load_wesad(tmp_path)
    assert e.value.path == str(p) and isinstance(e.value, TrainError)


def test_malicious_subject_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "S6").mkdir()
    (tmp_path / "S6" / "S6.pkl").write_bytes(malicious_pickle(f"touch {marker}"))
    with pytest.raises(DataError, match="not allowed"):
        load_wesad(tmp_path)
    assert not marker.exists()


def test_too_short_for_calibration(tmp_path: Path) -> None:
    write_wesad_pickle(tmp_path, wesad_dict(((1, 120),)), subject="S7")
    with pytest.raises(DataError, match="S7") as e:
        load_wesad(tmp_path, modalities=["eda"])
    assert "need 300 s" in e.value.reason


def test_unknown_task_and_modality(fake_root: Path) -> None:
    with pytest.raises(DataError, match="unknown task"):
        load_wesad(fake_root, task="4class")
    with pytest.raises(DataError, match="unknown WESAD modalities"):
        load_wesad(fake_root, modalities=["ppg"])


def test_global_normalization_uses_train_rows_only(tmp_path: Path) -> None:
    ds = load_arrays(write_arrays_npz(tmp_path / "a.npz", n=40, with_split=True))
    train = ds.split == "train"
    fitted = fit_global_normalization(ds, train)
    # changing test rows must not change the statistics
    ds2 = ds.select(np.arange(len(ds)))
    ds2.modalities["signal"][~train] += 1000.0
    fitted2 = fit_global_normalization(ds2, train)
    assert fitted.contract.normalization == fitted2.contract.normalization
    norm = fitted.contract.normalization
    x_tr = ds.modalities["signal"][train]
    np.testing.assert_allclose(norm.center["signal"], np.median(x_tr.transpose(1, 0, 2)
                                                                .reshape(2, -1), axis=1))
    # the stored transform is core.signal.normalize (what the hub applies)
    i = int(np.flatnonzero(~train)[0])
    expected = normalize(ds.modalities["signal"][i], norm.center["signal"], norm.scale["signal"],
                         norm.clip)
    np.testing.assert_array_equal(fitted.modalities["signal"][i], expected)
    assert fitted.info["normalized"] is True
    z = fitted.modalities["signal"][train]
    assert abs(float(np.median(z[:, 0]))) < 0.2
    # the contract survives serialisation with its fitted statistics
    assert InputContract.from_dict(fitted.contract.to_dict()) == fitted.contract
    with pytest.raises(ValueError, match="already normalized"):
        fit_global_normalization(fitted, train)


def test_workers_give_the_same_result(fake_root: Path) -> None:
    one = load_wesad(fake_root, modalities=["eda", "bvp"])
    two = load_wesad(fake_root, modalities=["eda", "bvp"], workers=2)
    for name in ("eda", "bvp"):
        np.testing.assert_array_equal(one.modalities[name], two.modalities[name])
    np.testing.assert_array_equal(one.y, two.y)
    np.testing.assert_array_equal(one.groups, two.groups)
    assert one.info["per_subject"] == two.info["per_subject"]


def test_a_data_error_crosses_a_process_boundary_intact() -> None:
    e = pickle.loads(pickle.dumps(DataError("/data/S2/S2.pkl", "missing key label")))
    assert (type(e), e.path, e.reason) == (DataError, "/data/S2/S2.pkl", "missing key label")
    assert str(e) == "/data/S2/S2.pkl: missing key label"


def test_parallel_loading_names_the_real_file_of_a_bad_subject(tmp_path: Path) -> None:
    write_wesad_pickle(tmp_path, wesad_dict(((1, 330),), subject="S2", seed=1), subject="S2")
    bad = wesad_dict(((1, 330),), subject="S3", seed=2)
    del bad["signal"]["wrist"]["TEMP"]
    path = write_wesad_pickle(tmp_path, bad, subject="S3")
    with pytest.raises(DataError, match="missing key signal/wrist/TEMP") as e:
        load_wesad(tmp_path, modalities=["eda"], workers=2)
    assert e.value.path == str(path)  # the subject's own file, not a temporary link to it
