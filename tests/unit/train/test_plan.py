"""train.plan: the teachers a run trains, one job per fold, and the deployable models' job."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from train.config import load_config
from train.cv import loso_folds
from train.plan import DEPLOY_JOB, fold_jobs, teacher_specs

GROUPS = np.array(["S2"] * 3 + ["S3"] * 2 + ["S4"] * 2)
WRIST = ["bvp", "eda", "temp", "acc"]
ALL = [*WRIST, "ecg", "resp", "emg", "c_eda", "c_temp", "c_acc"]


def test_the_held_out_subjects_fold_keeps_the_deployable_models() -> None:
    folds = loso_folds(GROUPS)
    held = GROUPS == "S4"
    jobs, key = fold_jobs(folds, ~held, held)
    assert key == "S4" and [j.key for j in jobs] == ["S2", "S3", "S4"]
    assert [j.keep for j in jobs] == [False, False, True]


def test_a_deploy_job_is_added_when_no_fold_has_its_training_set() -> None:
    folds = loso_folds(GROUPS)
    held = np.isin(GROUPS, ["S3", "S4"])  # two held-out subjects: no LOSO fold matches
    jobs, key = fold_jobs(folds, ~held, held)
    assert key == DEPLOY_JOB and [j.key for j in jobs] == ["S2", "S3", "S4", DEPLOY_JOB]
    assert [j.keep for j in jobs] == [False, False, False, True]
    np.testing.assert_array_equal(jobs[-1].train, np.flatnonzero(~held))
    np.testing.assert_array_equal(jobs[-1].test, np.flatnonzero(held))


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
