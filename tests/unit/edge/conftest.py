"""Fixtures the model-update tests share: a signing key pair and a bundle signed with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.updates import signed_bundle, update_keys


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    return update_keys(tmp_path)


@pytest.fixture
def bundle_dir(tmp_path: Path, keys: tuple[Path, Path, Path]) -> Path:
    return signed_bundle(tmp_path / "bundle", keys[0])
