"""edge.calibration_store: any file where a baseline is stored is read as a baseline or as none."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from core.signal import Calibration
from edge.calibration_store import CalibrationStore
from tests.fakes.inputs import (
    CALIBRATION_DICT,
    small_contract,
    store_doc,
)
from tests.strategies import (
    FAST_PARSER,
    examples,
    mutated,
)


@examples(2 * FAST_PARSER)
@given(
    st.one_of(
        mutated(store_doc(CALIBRATION_DICT)).map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=200),
        st.integers(1, 20_000).map(lambda n: b"[" * n),
    )
)
def test_calibration_store_treats_any_file_as_a_baseline_or_none(workdir: Path, raw: bytes) -> None:
    store = CalibrationStore(workdir / "calibration")
    store.directory.mkdir(exist_ok=True)
    store.path_for("r1").write_bytes(raw)
    got = store.load("r1", small_contract())
    assert got is None or isinstance(got, Calibration)


def test_regression_calibration_store_deeply_nested_file(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    store.path_for("r1").write_bytes(b"[" * 100_000)  # json's C scanner: RecursionError
    assert store.load("r1", small_contract()) is None
