"""train.pool: worker processes start with the configured BLAS threads; the parent is left as it was."""

from __future__ import annotations

import os

import pytest

from train.pool import THREAD_ENV, process_pool, thread_env


def _env() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in THREAD_ENV}


def test_thread_env_sets_then_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = _env()
    with thread_env(3):
        assert set(_env().values()) == {"3"}
    assert _env() == before


def test_spawned_workers_see_the_thread_setting() -> None:
    with process_pool(1, 2) as pool:
        seen = pool.submit(_env).result()
    assert set(seen.values()) == {"2"}
