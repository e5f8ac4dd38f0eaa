"""train.ts_data: a .ts pair as a data set: split from the files, lengths fitted, gaps bridged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.contract import InputContract
from train.errors import DataError
from train.ts_data import load_ts

HEADER = "@problemName Toy\n@missing true\n@equalLength false\n@classLabel true a b c\n@data\n"


def _pair(folder: Path, train: str, test: str) -> Path:
    folder.mkdir()
    (folder / f"{folder.name}_TRAIN.ts").write_text(HEADER + train)
    (folder / f"{folder.name}_TEST.ts").write_text(HEADER + test)
    return folder


def test_pair_gives_the_split_and_the_training_length(tmp_path: Path) -> None:
    folder = _pair(
        tmp_path / "Toy",
        "1,2,3,4:5,6,7,8:a\n1,?,3:4,5,6:b\n",
        "1,2,3,4,5,6,7,8:1,2,3,4,5,6,7,8:a\n1,2:3,4:c\n",
    )
    ds = load_ts(folder)
    assert ds.split is not None and ds.split.tolist() == ["train", "train", "test", "test"]
    x = ds.modalities["signal"]
    assert x.shape == (4, 2, 4)  # the longest *training* case sets the length
    assert ds.info["length"] == 4 and ds.info["length_mode"] == "resample"
    assert ds.info["lengths_min_max"] == [2, 8] and ds.info["fitted_cases"] == 3
    assert ds.info["missing_values_filled"] == 1
    np.testing.assert_allclose(x[1, 0], [1, 5 / 3, 7 / 3, 3], rtol=1e-6)  # gap bridged, stretched
    np.testing.assert_allclose(x[2, 0], [1, 10 / 3, 17 / 3, 8], rtol=1e-6)  # squeezed
    assert ds.class_names == ("a", "b", "c") and ds.y.tolist() == [0, 1, 0, 2]
    c = ds.contract
    assert c.modality_names == ("signal",) and c.modalities[0].channels == ("dim0", "dim1")
    assert c.normalization.kind == "global" and c.window_s == 4.0
    # the contract says how a series becomes a window, so the hub fits it the same way
    assert c.length_mode == "resample"
    assert InputContract.from_dict(c.to_dict()).length_mode == "resample"


def test_pad_mode_and_a_file_without_a_pair(tmp_path: Path) -> None:
    (tmp_path / "one.ts").write_text(HEADER + "1,2:a\n1,2,3:b\n")
    ds = load_ts(tmp_path / "one.ts", length_mode="pad")
    assert ds.split is None and ds.contract.length_mode == "pad"
    np.testing.assert_array_equal(ds.modalities["signal"][0, 0], [1, 2, 2])


def test_the_pair_must_agree(tmp_path: Path) -> None:
    folder = _pair(tmp_path / "Toy", "1,2:a\n2,1:b\n", "1,2:3,4:a\n")
    with pytest.raises(DataError, match=r"2 dimensions, Toy_TRAIN\.ts has 1"):
        load_ts(folder)


def test_training_cases_need_two_classes(tmp_path: Path) -> None:
    folder = _pair(tmp_path / "Toy", "1,2:a\n2,1:a\n", "1,2:b\n")
    with pytest.raises(DataError, match="fewer than two classes"):
        load_ts(folder)
