"""train.metrics against hand-computed cases (and scikit-learn on random ones)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from train.metrics import (
    accuracy,
    confusion_matrix,
    evaluate,
    expected_calibration_error,
    json_safe,
    precision_recall_f1,
    roc_auc_binary,
    roc_auc_ovr,
)

# y_true / y_pred worked out by hand:
#   confusion [[1,1,0],[0,2,0],[1,0,1]]
#   precision 1/2, 2/3, 1/1; recall 1/2, 2/2, 1/2
#   F1 0.5, 0.8, 2/3 -> macro (0.5 + 0.8 + 2/3) / 3
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0])


def test_confusion_and_per_class_by_hand() -> None:
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    p, r, f1, support = precision_recall_f1(cm)
    np.testing.assert_allclose(p, [0.5, 2 / 3, 1.0])
    np.testing.assert_allclose(r, [0.5, 1.0, 0.5])
    np.testing.assert_allclose(f1, [0.5, 0.8, 2 / 3])
    assert support.tolist() == [2, 2, 2]
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)


def test_evaluate_by_hand() -> None:
    proba = np.eye(3)[Y_PRED] * 0.7 + 0.1  # rows (0.8, 0.1, 0.1): argmax is Y_PRED
    m = evaluate(Y_TRUE, proba, ["baseline", "stress", "amusement"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["macro_precision"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert m["macro_recall"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert m["per_class"]["stress"]["f1"] == pytest.approx(0.8)
    assert m["per_class"]["amusement"]["support"] == 2
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # every confidence is 0.8 and 4/6 are right: ECE = |4/6 - 0.8|
    assert m["ece"] == pytest.approx(abs(4 / 6 - 0.8))
    assert m["n"] == 6


def test_auc_with_ties_by_hand() -> None:
    # positives 0.8, 0.4 vs negatives 0.5, 0.1, 0.4: pairs won 3 + 1 + a tie (0.5) = 4.5 of 6
    pos = np.array([True, True, False, False, False])
    score = np.array([0.8, 0.4, 0.5, 0.1, 0.4])
    assert roc_auc_binary(pos, score) == pytest.approx(0.75)
    assert roc_auc_binary(pos, -score) == pytest.approx(0.25)
    assert math.isnan(roc_auc_binary(np.ones(3, bool), np.arange(3.0)))


def test_binary_auc_is_the_positive_class() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]])
    # positive scores 0.7, 0.2 vs negatives 0.1, 0.6: wins 0.7>0.1, 0.7>0.6, 0.2>0.1 -> 3/4
    auc, per_class = roc_auc_ovr(y, proba)
    assert auc == pytest.approx(0.75)
    assert per_class[0] == pytest.approx(0.75)  # symmetric for two classes


def test_macro_auc_skips_absent_class() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    auc, per_class = roc_auc_ovr(y, proba)
    assert math.isnan(per_class[2])
    assert auc == pytest.approx(1.0)


def test_ece_two_bins_by_hand() -> None:
    # confidences 0.9 (right), 0.9 (wrong), 0.65, 0.65 (both right); 15 bins:
    # bin of 0.9: acc 0.5, conf 0.9 -> 0.4 * 2/4 ; bin of 0.65: acc 1, conf 0.65 -> 0.35 * 2/4
    y = np.array([1, 0, 0, 1])
    proba = np.array([[0.1, 0.9], [0.1, 0.9], [0.65, 0.35], [0.35, 0.65]])
    assert expected_calibration_error(y, proba) == pytest.approx(0.5 * 0.4 + 0.5 * 0.35)
    # one bin only: the same data gives the plain |accuracy - mean confidence|
    assert expected_calibration_error(y, proba, n_bins=1) == pytest.approx(abs(0.75 - 0.775))


def test_macro_over_present_classes_only() -> None:
    y = np.array([0, 0, 1])
    proba = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    m = evaluate(y, proba, ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx(1.0)
    assert m["per_class"]["c"]["support"] == 0


def test_matches_sklearn_on_random_data() -> None:
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + np.eye(3)[y] * 1.2
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = evaluate(y, proba, ["a", "b", "c"])
    pred = proba.argmax(1)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["macro_precision"] == pytest.approx(precision_score(y, pred, average="macro"))
    assert m["macro_recall"] == pytest.approx(recall_score(y, pred, average="macro"))
    assert m["auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"))


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="shape"):
        evaluate(np.array([0, 1]), np.ones((2, 2)) / 2, ["a", "b", "c"])


def test_json_safe_is_strict_json() -> None:
    out = json_safe({"a": math.nan, "b": np.float32(0.5), "c": [np.int64(2), np.inf], "d": True})
    assert out == {"a": None, "b": 0.5, "c": [2, None], "d": True}
    json.dumps(out, allow_nan=False)
