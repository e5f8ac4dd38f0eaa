"""Fixtures of the export tests: the session's exported bundle."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.runs import exported_bundle


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The export of tests/fakes/runs.py, built once per test process."""
    return exported_bundle(tmp_path_factory.mktemp("export"))
