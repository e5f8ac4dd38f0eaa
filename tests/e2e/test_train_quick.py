"""edge-train end to end: synthetic WESAD, a ``--quick`` run, its report, checkpoints and
windows, and the same metrics again with one worker instead of two."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.contract import InputContract
from train.cli import main
from train.config import load_config
from train.models import Student, StudentConfig
from train.teachers import FusionTeacher, TeacherConfig

WRIST = ["bvp", "eda", "temp", "acc"]


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
    # the models learn: synth writes classes a model can tell apart (train/synth.py), so a
    # run that learns nothing (constant or random predictions) must fail here. Learning
    # nothing scores the majority class's share in accuracy, about 0.26 macro-F1 for these
    # class shares and an AUC of 0.5. The run is seeded and deterministic (checked at the
    # end); the floors sit 0.05-0.1 below what it reaches, and far above chance.
    support = np.asarray(m["models"]["student_alone"]["confusion"]).sum(axis=1)  # (3,)
    majority = support.max() / support.sum()
    constant_f1 = 2 * majority / (1 + majority) / 3  # always the majority class
    for name, mm in m["models"].items():
        assert mm["macro_f1"] >= constant_f1 + 0.05, (name, mm["macro_f1"], constant_f1)
    for name in ("teacher_fusion_early", "teacher_fusion_mid", "teacher_fusion_late",
                 "teacher_ensemble"):  # every modality, chest included
        mm = m["models"][name]
        assert mm["accuracy"] >= majority + 0.1 and mm["auc"] >= 0.85, (name, mm, majority)
    for name, mm in m["models"].items():
        if mm["role"] == "student":  # the wrist alone
            assert mm["accuracy"] >= majority + 0.05, (name, mm["accuracy"], majority)
            assert mm["macro_f1"] >= 0.55 and mm["auc"] >= 0.7, (name, mm)
    assert max(mm["macro_f1"] for mm in m["models"].values()) >= 0.65

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
