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


def test_int8_speed_says_per_runtime_whether_int8_pays_and_why_not() -> None:
    from export.report import INT8_PAYS, render_markdown

    y = np.array([0, 0, 1, 1, 2, 2])
    ev = _evaluation(y)
    base = ev["onnx_fp32"]
    ev["onnx_int8"] = {**base, "kl": 0.0, "latency_ms": 1.5}  # int8 slower than fp32 (1.0)
    ev["tflite_fp32"] = {**base, "latency_ms": 1.0}
    ev["tflite_int8"] = {**base, "kl": 0.0, "latency_ms": INT8_PAYS}  # just pays
    rep = build_report(manifest=MANIFEST, evaluation=ev, heldout_y=y,
                       class_names=("a", "b", "c"), thresholds=THRESHOLDS)  # fmt: skip
    onnx, tfl = rep["int8_speed"]["onnx"], rep["int8_speed"]["tflite"]
    assert onnx["ratio"] == 1.5 and not onnx["pays"] and "element-wise" in onnx["why"]
    assert tfl["pays"] and "why" not in tfl
    md = render_markdown(rep)
    assert "## Does int8 pay?" in md and "1.50×: **no**" in md and "0.70×: yes" in md
