"""train.data: subjects loaded in worker processes get the paths directly, errors name the file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.fakes.recordings import wesad_dict, write_wesad_pickle
from train.data import load_wesad
from train.errors import DataError


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
