"""Fixtures of the engine tests: the session's exported bundle and its held-out windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tests.fakes.runs import exported_bundle


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The export of tests/fakes/runs.py, built once per test process."""
    return exported_bundle(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def heldout(exported: Any) -> tuple[np.ndarray, np.ndarray]:
    """The RUN's held-out windows and the PyTorch student's logits on them."""
    with np.load(exported.run.path / "windows" / "heldout.npz") as z:
        x = z["X"].astype(np.float32)
    with torch.no_grad():
        ref = exported.run.model.eval()(torch.from_numpy(x)).numpy()
    return x, ref
