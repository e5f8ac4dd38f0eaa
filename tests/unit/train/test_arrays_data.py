"""train.arrays_data: a user's labelled-windows ``.npz`` as a dataset; every malformed file is one
error naming the file and the problem, and a zip bomb is refused before it inflates."""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import numpy as np
import pytest

import train.arrays_data
from core.npz import check_npz_size
from tests.fakes.recordings import write_arrays_npz
from train.arrays_data import load_arrays
from train.errors import DataError


def test_arrays_without_split(tmp_path: Path) -> None:
    ds = load_arrays(write_arrays_npz(tmp_path / "a.npz", n=40))
    assert ds.modality_names == ("signal",)
    assert ds.modalities["signal"].shape == (40, 2, 32)
    assert ds.split is None
    assert ds.class_names == ("0", "1")
    np.testing.assert_array_equal(ds.y, np.arange(40) % 2)
    assert set(ds.groups) == {"P0", "P1", "P2", "P3"}
    c = ds.contract
    assert c.modality("signal").channels == ("x", "y") and c.modality("signal").rate_hz == 8.0
    assert c.window_s == 4.0 and c.normalization.kind == "global"
    assert not c.normalization.center and ds.info["normalized"] is False
    np.testing.assert_array_equal(ds.pack(["signal"]), ds.modalities["signal"].reshape(40, -1))


def test_arrays_with_split_and_str_labels(tmp_path: Path) -> None:
    ds = load_arrays(write_arrays_npz(tmp_path / "a.npz", n=40, str_labels=True, with_split=True))
    assert ds.class_names == ("calm", "stress")
    np.testing.assert_array_equal(ds.y, np.arange(40) % 2)
    assert ds.split is not None
    assert (ds.split == "train").sum() == 30 and (ds.split == "test").sum() == 10


def test_arrays_without_groups_and_sparse_int_labels(tmp_path: Path) -> None:
    p = write_arrays_npz(tmp_path / "a.npz", n=6, with_groups=False,
                         y=np.array([3, 7, 3, 7, 9, 9]))
    ds = load_arrays(p)
    assert ds.class_names == ("3", "7", "9")
    np.testing.assert_array_equal(ds.y, [0, 1, 0, 1, 2, 2])
    assert set(ds.groups) == {"all"}


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"X": np.zeros((4, 32), np.float32)}, "X has shape (4, 32), expected (N, C, T)"),
        ({"y": np.zeros(3, int)}, "y has shape (3,), expected (40,)"),
        ({"y": np.zeros(40, int)}, "single class"),
        ({"X": np.zeros((40, 3, 32), np.float32)}, "channels has shape (2,), expected (3,)"),
        ({"split": np.array(["train", "dev"] * 20)}, "'dev'"),
        ({"split": np.array(["train"] * 40)}, "at least one 'train' and one 'test'"),
        ({"groups": np.array(["a"])}, "groups has shape (1,)"),
        ({"sample_rate_hz": np.float64(-1.0)}, "sample_rate_hz must be positive"),
        ({"sample_rate_hz": None}, "missing array 'sample_rate_hz'"),
        ({"y": np.array([{"a": 1}] * 40, dtype=object)}, "object arrays are not allowed"),
    ],
)
def test_arrays_errors_name_file_and_problem(tmp_path: Path, extra: dict, needle: str) -> None:
    p = write_arrays_npz(tmp_path / "bad.npz", n=40, **extra)
    with pytest.raises(DataError) as e:
        load_arrays(p)
    assert e.value.path == str(p) and needle in e.value.reason, str(e.value)


def test_arrays_missing_and_nan(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="arrays file not found"):
        load_arrays(tmp_path / "none.npz")
    X = np.zeros((40, 2, 32), np.float32)
    X[3, 1, 5] = np.nan
    with pytest.raises(DataError, match="NaN"):
        load_arrays(write_arrays_npz(tmp_path / "nan.npz", X=X))


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    p = write_arrays_npz(tmp_path / "a.npz", n=40)
    with zipfile.ZipFile(p) as z:
        inflated = sum(i.file_size for i in z.infolist())
    # the real check with a bound just below this file: a bomb's directory reads the same way
    monkeypatch.setattr(train.arrays_data, "check_npz_size",
                        functools.partial(check_npz_size, max_bytes=inflated - 1))
    with pytest.raises(DataError, match="inflates to") as e:
        load_arrays(p)
    assert e.value.path == str(p)
