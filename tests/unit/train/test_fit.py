"""train.fit: whole runs on the arrays path (LOSO, a fixed split, forward chaining), small and in-process.

The ``--quick`` run through the CLI on synthetic WESAD is in tests/e2e/test_train_quick.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.contract import InputContract
from train.arrays_data import load_arrays
from train.config import load_config
from train.cv import make_folds
from train.fit import fit
from train.models import Student, StudentConfig

RATE_HZ, SAMPLES = 8.0, 80  # 10 s windows, while data.window_s stays at its 60 s default


def _arrays_npz(path: Path, *, with_split: bool, seed: int = 0) -> Path:
    """Three subjects, two channels at 8 Hz, 10 s windows; class = a shift in channel 0."""
    rng = np.random.default_rng(seed)
    n_per, t = 30, 80
    X, y, groups = [], [], []
    for s, offset in enumerate((0.0, 0.8, -0.8)):  # subjects differ a little in level
        labels = np.arange(n_per) % 2
        x = rng.normal(size=(n_per, 2, t)).astype(np.float32) + offset + 20.0  # far from 0
        x[:, 0] += 3.0 * labels[:, None]
        X.append(x)
        y.append(np.where(labels == 1, "stress", "calm"))
        groups.append(np.full(n_per, f"P{s}"))
    arrays: dict[str, np.ndarray] = {
        "X": np.concatenate(X),
        "y": np.concatenate(y),
        "groups": np.concatenate(groups),
        "channels": np.array(["a", "b"]),
        "sample_rate_hz": np.array(8.0),
    }
    if with_split:
        arrays["split"] = np.where(np.arange(3 * n_per) % 5 == 0, "test", "train")
    np.savez(path, **arrays)
    return path


TINY = [
    "workers=1",
    "teachers.steps=40",
    "student.steps=80",
    "teachers.batch_size=16",
    "student.batch_size=16",
    "data.train_stride=1",
    "student.variants=alone,kd_equal,kd_ca_ulgm,kd_ca_hint",
    "report.plots=false",
]


def test_fit_on_arrays_loso(tmp_path: Path) -> None:
    npz = _arrays_npz(tmp_path / "a.npz", with_split=False)
    cfg = load_config(overrides=TINY)
    res = fit("arrays", npz, tmp_path / "run", cfg)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m == res.metrics
    assert [f["name"] for f in m["cv"]["folds"]] == ["P0", "P1", "P2"]
    assert set(m["models"]) == {
        "teacher_all", "teacher_ensemble", "student_alone", "student_kd_equal",
        "student_kd_ca_ulgm", "student_kd_ca_hint",
    }  # fmt: skip
    assert m["class_names"] == ["calm", "stress"]
    # the class is a 3 sd shift in channel 0: every model learns something
    for name, mm in m["models"].items():
        assert 0.5 < mm["accuracy"] <= 1.0, name
    # the deployable models come from the held-out subject's LOSO fold (same training set)
    assert m["student"]["holdout_subjects"] == ["P2"]
    ck = torch.load(tmp_path / "run" / "student.pt", weights_only=False)
    contract = InputContract.from_dict(ck["contract"])
    assert contract.normalization.kind == "global"
    # global normalization statistics come from the training subjects only
    raw = np.load(npz)
    train_rows = raw["X"][raw["groups"] != "P2"]
    np.testing.assert_allclose(
        contract.normalization.center["signal"], np.median(train_rows, axis=(0, 2)), rtol=1e-6
    )
    assert not np.allclose(
        contract.normalization.center["signal"], np.median(raw["X"], axis=(0, 2)), rtol=1e-3
    )
    # the held-out windows are normalized with those statistics and the student reproduces
    # its held-out score from student.pt alone
    held = np.load(tmp_path / "run" / "windows" / "heldout.npz")
    assert held["X"].shape == (30, contract.input_length)
    assert set(held["subject"].tolist()) == {"P2"}
    student = Student(StudentConfig(**ck["model_args"]))
    student.load_state_dict(ck["state_dict"])
    student.eval()
    with torch.no_grad():
        pred = student(torch.from_numpy(held["X"])).argmax(1).numpy()
    assert np.mean(pred == held["y"]) == pytest.approx(m["student"]["heldout"]["accuracy"])
    assert not (tmp_path / "run" / "demo_recording.npz").exists()  # arrays: no recording
    assert (tmp_path / "run" / "report.md").is_file()


def test_fit_on_arrays_fixed_split(tmp_path: Path) -> None:
    npz = _arrays_npz(tmp_path / "a.npz", with_split=True)
    cfg = load_config(overrides=[*TINY, "cv.kind=fixed", "student.variants=alone,kd_ca"])
    m = fit("arrays", npz, tmp_path / "run", cfg).metrics
    assert [f["name"] for f in m["cv"]["folds"]] == ["fixed"]
    assert m["cv"]["folds"][0]["n_test"] == 18
    assert m["models"]["student_alone"]["n"] == 18
    # with subject ids the deployable student still holds out the last subject
    assert m["student"]["holdout_subjects"] == ["P2"]
    assert m["student"]["n_heldout_windows"] == 30


def test_forward_chaining_run(tmp_path: Path) -> None:
    npz = _arrays_npz(tmp_path / "a.npz", with_split=False)
    cfg = load_config(
        overrides=[*TINY, "cv.kind=forward", "cv.n_splits=2", "cv.purge=false",
                   "student.variants=alone,kd_equal"]
    )  # fmt: skip
    m = fit("arrays", npz, tmp_path / "run", cfg).metrics
    assert [f["name"] for f in m["cv"]["folds"]] == ["block 1/2", "block 2/2"]
    assert m["cv"]["folds"][0]["n_train"] < m["cv"]["folds"][1]["n_train"]


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
        "workers=1", "teachers.steps=2", "student.steps=2", "data.train_stride=1",
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
