"""train.tsfile: UEA/UCR .ts files: equal and unequal length, missing values, pairs, malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import WearableEdgeError
from train.errors import DataError
from train.tsfile import read_ts, ts_pair

HEADER = """# a comment line
@problemName Toy
@timeStamps false
@missing {missing}
@univariate {univariate}
@equalLength {equal}
@classLabel true up down
@data
"""


def _write(path: Path, body: str, *, missing: str = "false", univariate: str = "true",
           equal: str = "true") -> Path:  # fmt: skip
    path.write_text(HEADER.format(missing=missing, univariate=univariate, equal=equal) + body)
    return path


def test_univariate_equal_length(tmp_path: Path) -> None:
    f = read_ts(_write(tmp_path / "a.ts", "1,2,3,4:up\n4,3,2,1:down\n"))
    assert f.problem == "Toy"
    assert f.class_labels == ("up", "down")
    assert f.labels == ["up", "down"]
    assert [s.shape for s in f.series] == [(1, 4), (1, 4)]
    np.testing.assert_array_equal(f.series[1][0], [4, 3, 2, 1])
    assert f.n_missing == 0


def test_multivariate_unequal_length(tmp_path: Path) -> None:
    body = "1,2,3:4,5,6:up\n1,2,3,4,5:6,7,8,9,10:down\n"
    f = read_ts(_write(tmp_path / "a.ts", body, univariate="false", equal="false"))
    assert f.n_channels == 2
    assert f.lengths.tolist() == [3, 5]
    np.testing.assert_array_equal(f.series[1][1], [6, 7, 8, 9, 10])


def test_missing_values_become_nan(tmp_path: Path) -> None:
    f = read_ts(_write(tmp_path / "a.ts", "1,?,3,NaN:up\n4,3,2,1:down\n", missing="true"))
    assert f.n_missing == 2
    assert np.isnan(f.series[0][0, [1, 3]]).all()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("1,2,x,4:up\n", r"line 9: dimension 0 value 3 is not a number: 'x'"),
        ("1,2,3,4:sideways\n", r"line 9: class label 'sideways' is not declared"),
        ("1,2,3,4\n", r"line 9: expected <values>:...:<label>, found no ':'"),
        ("1,2:up\n1,2:3,4:down\n", r"line 10: 2 dimensions, earlier cases have 1"),
        ("1,2:3:up\n", r"line 9: the dimensions of one case differ in length \[1, 2\]"),
        ("?,?:up\n", r"line 9: every value of this case is missing"),
        ("1,2,3:up\n1,2:down\n", r"@equalLength true but the cases have lengths \[2, 3\]"),
        ("1,inf:up\n", r"line 9: dimension 0 value 2 is infinite"),
        ("", r"no cases after @data"),
    ],
)
def test_malformed_data_is_one_clear_error(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(DataError, match=match) as e:
        read_ts(_write(tmp_path / "bad.ts", body))
    assert isinstance(e.value, WearableEdgeError)
    assert "\n" not in str(e.value)
    assert str(tmp_path / "bad.ts") in str(e.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("@problemName X\n@classLabel true a b\n1,2:a\n", r"line 3: expected an @key header"),
        ("@problemName X\n@classLabel true a b\n", r"no @data line"),
        ("@problemName X\n@data\n1:a\n", r"no @classLabel line"),
        ("@classLabel false\n@data\n1,2\n", r"line 1: @classLabel false"),
        ("@classLabel true a\n@data\n1:a\n", r"lists 1 label\(s\); need at least two"),
        ("@timeStamps true\n@classLabel true a b\n@data\n(0,1):a\n", r"timestamped series"),
        ("@missing perhaps\n", r"line 1: @missing must be true or false"),
        ("@dimensions two\n", r"line 1: @dimensions must be a positive integer"),
    ],
)
def test_malformed_header_is_one_clear_error(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.ts"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_ts(path)


def test_binary_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_ts(tmp_path / "nope.ts")
    (tmp_path / "bin.ts").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not a text file"):
        read_ts(tmp_path / "bin.ts")


def test_pair_from_either_file_or_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "Toy"
    folder.mkdir()
    train = _write(folder / "Toy_TRAIN.ts", "1,2:up\n2,1:down\n")
    test = _write(folder / "Toy_TEST.ts", "1,2:up\n")
    assert ts_pair(train) == (train, test)
    assert ts_pair(test) == (train, test)
    assert ts_pair(folder) == (train, test)
    lone = _write(tmp_path / "lone.ts", "1,2:up\n")
    assert ts_pair(lone) == (lone, None)
    test.unlink()
    with pytest.raises(DataError, match=r"its pair Toy_TEST\.ts is not beside it"):
        ts_pair(train)
    with pytest.raises(DataError, match=r"expected one \*_TRAIN.ts"):
        ts_pair(tmp_path)
