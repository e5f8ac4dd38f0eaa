"""export.report: no format is recommended for a model that never gets a class right."""

from __future__ import annotations

import numpy as np

from export.report import build_report

THRESHOLDS = {"fp32_max_abs_diff": 1e-3, "int8_min_agreement": 0.95, "int8_max_f1_drop": 0.01,
              "tflite_int8_max_bytes": 150 * 1024}  # fmt: skip
MANIFEST = {"model_id": "m", "model_version": "v", "created": "now", "macs": 1}


def _evaluation(pred: np.ndarray) -> dict:
    logits = np.eye(3)[pred] * 5.0
    ev = {"logits": logits, "size": 1000, "latency_ms": 1.0}
    return {"torch_fp32": ev, "onnx_fp32": {**ev, "agreement": 1.0, "max_abs_diff": 0.0}}


def test_a_dead_class_blocks_the_recommendation() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    ok = build_report(manifest=MANIFEST, evaluation=_evaluation(y), heldout_y=y,
                      class_names=("a", "b", "c"), thresholds=THRESHOLDS)  # fmt: skip
    assert ok["recommended"] == "onnx_fp32" and ok["dead_classes"] == []
    never_c = np.array([0, 0, 1, 1, 1, 0])  # class "c" is never predicted
    dead = build_report(manifest=MANIFEST, evaluation=_evaluation(never_c), heldout_y=y,
                        class_names=("a", "b", "c"), thresholds=THRESHOLDS)  # fmt: skip
    assert dead["recommended"] is None and dead["dead_classes"] == ["c"]
    assert "never predicts ['c']" in dead["verdict"] and "retrain" in dead["verdict"]
