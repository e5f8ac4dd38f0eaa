"""train.fit / train.cli and the modules fit orchestrates: training loops, the arrays path, and the ``--quick`` end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.contract import InputContract
from core.errors import ConfigError
from train.acceptance import ACCEPT_F1_GAP, acceptance
from train.cli import main
from train.config import load_config, parse_variant
from train.fit import fit
from train.job import thin
from train.loop import balanced_batches, lr_lambda
from train.models import FusionTeacher, Student, StudentConfig, TeacherConfig
from train.plan import TeacherSpec, teacher_specs

WRIST = ["bvp", "eda", "temp", "acc"]
ALL = [*WRIST, "ecg", "resp", "emg", "c_eda", "c_temp", "c_acc"]


# -- pieces -------------------------------------------------------------------------------------
def test_balanced_batches_balance_and_determinism() -> None:
    y = np.array([0] * 900 + [1] * 90 + [2] * 10)
    draws = np.concatenate(list(balanced_batches(y, 3, 64, np.random.default_rng(0))))
    assert len(draws) == len(y)  # an epoch has as many draws as windows
    share = np.bincount(y[draws], minlength=3) / len(draws)
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.05)
    again = np.concatenate(list(balanced_batches(y, 3, 64, np.random.default_rng(0))))
    np.testing.assert_array_equal(draws, again)


def test_balanced_batches_drop_a_single_trailing_sample() -> None:
    y = np.array([0, 1] * 32 + [0])  # 65 windows, batch 64: the last batch would hold 1
    sizes = [len(b) for b in balanced_batches(y, 2, 64, np.random.default_rng(1))]
    assert sizes == [64]


def test_thin_keeps_every_kth_window_per_subject_in_time() -> None:
    groups = np.array(["a"] * 6 + ["b"] * 4)
    start = np.array([50, 0, 10, 20, 30, 40, 0, 5, 10, 15], float)
    idx = np.arange(10)
    kept = thin(idx, groups, start, 2)
    assert sorted(start[kept[groups[kept] == "a"]].tolist()) == [0, 20, 40]
    assert sorted(start[kept[groups[kept] == "b"]].tolist()) == [0, 10]
    np.testing.assert_array_equal(thin(idx, groups, start, 1), idx)


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    f = lr_lambda(100)
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5)
    assert f(100) == pytest.approx(0.0, abs=1e-9)


def test_teacher_specs_follow_the_config_and_the_data() -> None:
    cfg = load_config(overrides=["teachers.fusion=early", "teachers.fusion_ablation=mid"])
    specs, notes = teacher_specs(cfg, ALL, WRIST)
    names = [s.name for s in specs]
    assert names == [
        "teacher_bvp", "teacher_eda_temp", "teacher_acc", "teacher_ecg_resp",
        "teacher_emg_eda_temp", "teacher_fusion_early", "teacher_fusion_mid",
    ]  # fmt: skip
    by = {s.name: s for s in specs}
    assert by["teacher_bvp"].wrist_only and not by["teacher_ecg_resp"].wrist_only
    assert by["teacher_fusion_early"].in_mixture and not by["teacher_fusion_mid"].in_mixture
    assert notes == []
    # wrist-only data: chest groups are skipped with a note, the fusion teacher is wrist-only
    specs, notes = teacher_specs(cfg, WRIST, WRIST)
    assert [s.name for s in specs][:3] == ["teacher_bvp", "teacher_eda_temp", "teacher_acc"]
    assert len(notes) == 2 and "ecg" in notes[0]
    assert all(s.wrist_only for s in specs)
    # a single modality (arrays): one teacher over it
    specs, _ = teacher_specs(cfg, ["signal"], ["signal"])
    assert [(s.name, s.in_mixture) for s in specs] == [("teacher_all", True)]
    # a mixture nobody is in
    cfg = load_config(overrides=["distill.teachers=nothing"])
    with pytest.raises(ConfigError) as e:
        teacher_specs(cfg, ALL, WRIST)
    assert e.value.key == "distill.teachers"


def _fake_models(f1: dict[str, float]) -> dict[str, Any]:
    return {n: {"macro_f1": v} for n, v in f1.items()}


def test_acceptance_verdicts() -> None:
    cfg = load_config()
    specs = [
        TeacherSpec("teacher_bvp", ("bvp",), "mid", True, True),
        TeacherSpec("teacher_eda_temp", ("eda", "temp"), "mid", True, True),
        TeacherSpec("teacher_ecg_resp", ("ecg", "resp"), "mid", True, False),
    ]
    variants = [parse_variant(v) for v in ("alone", "kd_equal", "kd_ca")]
    diag = {"teacher_train_accuracy": [0.99], "teacher_train_confidence": [0.97]}
    good = _fake_models(
        {"teacher_bvp": 0.70, "teacher_eda_temp": 0.75, "teacher_ecg_resp": 0.95,
         "teacher_ensemble": 0.9, "student_alone": 0.70, "student_kd_equal": 0.73,
         "student_kd_ca": 0.74}
    )  # fmt: skip
    out = acceptance(good, specs, variants, diag, cfg)
    assert out["best_wrist_teacher"] == "teacher_eda_temp"  # the chest teacher does not count
    assert out["best_distilled_student"] == "student_kd_ca"
    assert out["within_gap"] and out["beats_alone"]
    assert out["gap_to_teacher"] == pytest.approx(-0.01)
    assert out["notes"] == []
    bad = {**good, "student_kd_ca": {"macro_f1": 0.75 - ACCEPT_F1_GAP - 0.01}}
    bad["student_kd_equal"] = {"macro_f1": 0.6}
    bad["student_alone"] = {"macro_f1": 0.72}
    out = acceptance(bad, specs, variants, diag, cfg)
    assert not out["within_gap"] and not out["beats_alone"]
    assert "NOT met" in out["verdict"] and "Why not" in out["verdict"]
    assert "0.990" in out["notes"][0]  # the reason comes with numbers
    assert "alone is -0.030" in out["verdict"] and "reading these signals less well" in out["verdict"]
    # when distillation costs more than the student's own gap, the verdict says so, and gives
    # the per-fold spread the gaps stand in
    worse = {**bad, "student_alone": {"macro_f1": 0.745}}
    for name, f1s in (("student_kd_ca", [0.6, 0.8]), ("student_alone", [0.7, 0.8]),
                      ("teacher_eda_temp", [0.7, 0.7])):
        worse[name] = {**worse[name], "folds": [{"macro_f1": v} for v in f1s]}
    out = acceptance(worse, specs, variants, diag, cfg)
    assert "what distillation does to it" in out["verdict"]
    assert "standard deviation over 2 folds: student_kd_ca 0.141, student_alone 0.071" in out["verdict"]


# -- the arrays path (small, in-process) ---------------------------------------------------------
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
    "teachers.epochs=6",
    "student.epochs=12",
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


# -- the CLI -------------------------------------------------------------------------------------
def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["fit", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--set" in out and "RUN" in out


def test_cli_bad_override_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["fit", "--dataset", "arrays", "--data", str(tmp_path / "x.npz"), "--out",
         str(tmp_path / "run"), "--set", "teachers.epochs=lots", "--no-progress"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "teachers.epochs" in err and "integer" in err


def test_cli_missing_data_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["fit", "--dataset", "wesad", "--data", str(tmp_path / "nothing"), "--out",
         str(tmp_path / "run"), "--quick", "--no-progress"]
    )  # fmt: skip
    assert code == 2
    assert "nothing" in capsys.readouterr().err


# -- the --quick end-to-end run --------------------------------------------------------------------
def _comparable(m: dict[str, Any]) -> dict[str, Any]:
    """Metrics without the fields that legitimately differ between runs."""
    out = {k: v for k, v in m.items() if k not in ("timing", "workers", "cv", "dataset")}
    out["cv_folds"] = [
        {k: v for k, v in f.items() if k not in ("seconds", "cpu_seconds")}
        for f in m["cv"]["folds"]
    ]
    return out


@pytest.mark.slow
def test_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["synth", "--subjects", "4", "--out", str(data), "--seed", "3",
                 "--minutes-scale", "0.25", "--no-progress"]) == 0  # fmt: skip
    run = tmp_path / "run"
    assert main(["fit", "--dataset", "wesad", "--data", str(data), "--out", str(run),
                 "--quick", "--seed", "5", "--no-progress"]) == 0  # fmt: skip
    m = json.loads((run / "metrics.json").read_text())

    # every model of the ablation, with sane values
    expected = {
        "teacher_bvp", "teacher_eda_temp", "teacher_acc", "teacher_ecg_resp",
        "teacher_emg_eda_temp", "teacher_fusion_mid", "teacher_fusion_early",
        "teacher_fusion_late", "teacher_ensemble", "student_alone", "student_kd_equal",
        "student_kd_ca", "student_kd_ca_ulgm", "student_alone_ulgm",
    }  # fmt: skip
    assert set(m["models"]) == expected
    assert [r["model"] for r in m["ablation"]] == list(m["models"])
    assert m["task"] == "3class" and m["class_names"] == ["baseline", "stress", "amusement"]
    assert m["cv"]["kind"] == "loso" and len(m["cv"]["folds"]) == 2
    n_test = sum(f["n_test"] for f in m["cv"]["folds"])
    for name, mm in m["models"].items():
        for k in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "ece"):
            assert 0.0 <= mm[k] <= 1.0, (name, k)
        assert mm["auc"] is None or 0.0 <= mm["auc"] <= 1.0
        assert np.asarray(mm["confusion"]).shape == (3, 3)
        assert np.asarray(mm["confusion"]).sum() == n_test == mm["n"]
        assert set(mm["per_class"]) == {"baseline", "stress", "amusement"}
        assert sum(c["support"] for c in mm["per_class"].values()) == n_test
        assert len(mm["folds"]) == 2
        # the pooled accuracy is the support-weighted mean of the per-fold accuracies
        acc = sum(f["accuracy"] * f["n"] for f in mm["folds"]) / n_test
        assert acc == pytest.approx(mm["accuracy"])
        assert mm["wrist_only"] == (mm["role"] == "student" or set(mm["modalities"]) <= set(WRIST))
    st = m["student"]
    assert 0 < st["params"] <= 100_000 and 0 < st["macs"] <= 10_000_000
    assert st["variant"] in {"alone", "kd_equal", "kd_ca", "kd_ca_ulgm", "alone_ulgm"}
    assert st["holdout_subjects"] == ["S5"] and "S5" not in st["train_subjects"]
    assert set(st["modality_importance"]["all"]) == set(WRIST)
    assert sum(st["modality_importance"]["all"].values()) == pytest.approx(1.0, abs=1e-4)
    assert {"best_wrist_teacher", "within_gap", "beats_alone", "verdict"} <= set(m["acceptance"])
    assert m["timing"]["total_s"] > 0

    # report and plots
    report = (run / "report.md").read_text()
    for section in ("## Ablation", "## Acceptance", "## Deployable student", "## Per-fold"):
        assert section in report
    for png in ("ablation", "folds", "confusion", "importance"):
        p = run / "plots" / f"{png}.png"
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{png}.png" in report
    assert load_config(run / "config.toml").seed == 5  # the config used, re-readable

    # student.pt rebuilds the model alone, with the wrist contract
    ck = torch.load(run / "student.pt", weights_only=False)
    contract = InputContract.from_dict(ck["contract"])
    assert contract.modality_names == tuple(WRIST)
    assert contract.class_names == ("baseline", "stress", "amusement")
    student = Student(StudentConfig(**ck["model_args"]))
    student.load_state_dict(ck["state_dict"])
    assert ck["holdout_subjects"] == ["S5"] and ck["train_subjects"] == ["S2", "S3", "S4"]
    assert {"accuracy", "macro_f1"} <= set(ck["metrics"])
    teachers = sorted(p.name for p in (run / "teachers").glob("*.pt"))
    assert "teacher_ecg_resp.pt" in teachers and "teacher_fusion_late.pt" in teachers
    tck = torch.load(run / "teachers" / "teacher_ecg_resp.pt", weights_only=False)
    assert InputContract.from_dict(tck["contract"]).modality_names == ("ecg", "resp")
    FusionTeacher(TeacherConfig(**tck["model_args"])).load_state_dict(tck["state_dict"])

    # windows match the contract; the held-out student score is reproducible from them
    cal = np.load(run / "windows" / "calib.npz")
    held = np.load(run / "windows" / "heldout.npz")
    assert cal["X"].dtype == np.float32 and cal["X"].shape == (64, contract.input_length)
    assert held["X"].shape[1] == contract.input_length and held["X"].shape[0] == held["y"].shape[0]
    assert set(held["subject"].tolist()) == {"S5"}
    assert np.all(np.diff(held["start"]) > 0)
    student.eval()
    with torch.no_grad():
        pred = student(torch.from_numpy(held["X"])).argmax(1).numpy()
    assert np.mean(pred == held["y"]) == pytest.approx(st["heldout"]["accuracy"])
    demo = np.load(run / "demo_recording.npz")
    assert len(demo.files) > 0

    # same seed again, one worker instead of two: identical metrics
    run2 = tmp_path / "run2"
    assert main(["fit", "--dataset", "wesad", "--data", str(data), "--out", str(run2),
                 "--quick", "--seed", "5", "--set", "workers=1", "--no-progress"]) == 0  # fmt: skip
    m2 = json.loads((run2 / "metrics.json").read_text())
    assert _comparable(m2) == _comparable(m)
    assert not math.isnan(m2["models"]["student_alone"]["macro_f1"])
    assert "run written to" in capsys.readouterr().out
