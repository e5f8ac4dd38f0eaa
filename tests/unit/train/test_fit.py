"""train.fit: forward chaining purges with the windows' real length, not the configured one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from train.config import load_config
from train.cv import make_folds
from train.data import load_arrays
from train.fit import fit

RATE_HZ, SAMPLES = 8.0, 80  # 10 s windows, while data.window_s stays at its 60 s default


def _arrays(path: Path) -> Path:
    rng = np.random.default_rng(0)
    n_per = 24
    labels = np.tile(np.arange(n_per) % 2, 2)
    X = rng.normal(size=(2 * n_per, 1, SAMPLES)).astype(np.float32)
    X[:, 0] += 3.0 * labels[:, None]
    np.savez(path, X=X, y=labels, groups=np.repeat(["P0", "P1"], n_per),
             channels=np.array(["a"]), sample_rate_hz=np.array(RATE_HZ))  # fmt: skip
    return path


def test_forward_chaining_purges_with_the_arrays_window(tmp_path: Path) -> None:
    npz = _arrays(tmp_path / "a.npz")
    cfg = load_config(overrides=[
        "workers=1", "teachers.epochs=1", "student.epochs=1", "data.train_stride=1",
        "cv.kind=forward", "cv.n_splits=2", "cv.purge=true", "student.variants=alone,kd_equal",
        "report.plots=false",
    ])  # fmt: skip
    assert cfg.data.window_s == 60.0
    m = fit("arrays", npz, tmp_path / "run", cfg).metrics
    ds = load_arrays(npz)
    assert ds.contract.window_s == SAMPLES / RATE_HZ

    def n_train(window_s: float) -> list[int]:
        folds = make_folds("forward", groups=ds.groups, start=ds.start, split=None, n_splits=2,
                           scope="subject", window_s=window_s, purge=True, max_folds=0)  # fmt: skip
        return [len(f.train) for f in folds]

    assert n_train(10.0) != n_train(60.0)  # the test can tell the two apart
    assert [f["n_train"] for f in m["cv"]["folds"]] == n_train(10.0)
