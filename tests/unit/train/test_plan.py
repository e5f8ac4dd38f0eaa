"""train.plan: one job per fold, and the deployable models' job (a fold's, when it can be)."""

from __future__ import annotations

import numpy as np

from train.cv import loso_folds
from train.plan import DEPLOY_JOB, fold_jobs

GROUPS = np.array(["S2"] * 3 + ["S3"] * 2 + ["S4"] * 2)


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
