"""export.pipeline: a RUN -> bundle round trip for every format, the manifest, the report,
the calibration method it picks, and the runs it refuses."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from core.contract import InputContract
from edge.bundle import load_bundle
from export.errors import ExportError
from export.pipeline import (
    INT8_MAX_F1_DROP,
    TFLITE_INT8_MAX_BYTES,
    ExportOptions,
    best_method,
    export_run,
)

FORMATS = ("onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8")


@pytest.mark.slow
def test_round_trip_writes_every_format_and_a_verifiable_bundle(exported: Any) -> None:
    root = exported.bundle_dir
    for name in ("manifest.json", "manifest.sig", "quant_report.json", "quant_report.md",
                 "model_fp32.onnx", "model_int8.onnx", "model_fp32.tflite", "model_int8.tflite"):
        assert (root / name).is_file(), name
    assert sorted(p.name for p in (root / "plots").glob("*.png")) == [
        "accuracy.png", "confusion_int8.png", "latency_size.png", "onnx_exclusions.png"]
    with load_bundle(root, trusted_keys=[exported.public_key], require_signature=True) as b:
        assert set(b.files) == set(FORMATS)
        assert b.signed_by == exported.key_id
        assert b.contract == exported.run.contract
    # the archive holds the same bundle
    with tarfile.open(exported.archive) as tar:
        names = set(tar.getnames())
    assert {"bundle/manifest.json", "bundle/model_int8.tflite"} <= names


@pytest.mark.slow
def test_manifest_carries_contract_provenance_and_quantization(exported: Any) -> None:
    m = json.loads((exported.bundle_dir / "manifest.json").read_text())
    assert m["schema_version"] == 1
    for key in ("model_id", "model_version", "created", "git_commit", "dataset", "intended_use",
                "class_names", "contract", "calibration_required", "files", "recommended",
                "quantization", "macs", "params", "metrics"):
        assert key in m, key
    assert "not a diagnosis" in m["intended_use"]
    assert InputContract.from_dict(m["contract"]) == exported.run.contract
    assert m["calibration_required"] is True  # the toy contract uses subject_baseline
    assert m["params"] == sum(p.numel() for p in exported.run.model.parameters())
    assert m["macs"] > 0
    assert m["recommended"] in m["files"] and m["files"][m["recommended"]]["accuracy"]["acceptable"]
    assert m["dead_classes"] == []  # a format is recommended only when no class is dead
    q = m["quantization"]
    assert q["onnx_int8"]["chosen_by"] == "measurement" and len(q["onnx_int8"]["trials"]) >= 3
    assert q["onnx_int8"]["per_channel"] and q["onnx_int8"]["quant_format"] == "QOperator"
    # the default calibration method is measured: all three compared, the best one written
    methods = q["onnx_int8"]["method_comparison"]
    assert [x["method"] for x in methods] == ["minmax", "entropy", "percentile"]
    assert q["onnx_int8"]["method_chosen_by"] == "measurement"
    assert q["onnx_int8"]["method"] == best_method(methods, q["onnx_int8"]["calib_size"])
    assert q["tflite_int8"]["io"]["input"]["dtype"] in ("int8", "float32")
    for key in FORMATS:
        f = m["files"][key]
        assert f["input"]["shape"] == [1, exported.run.contract.input_length]
        assert f["output"]["shape"] == [1, 3]
        assert len(f["sha256"]) == 64 and f["size"] > 0


@pytest.mark.slow
def test_report_measures_every_format_and_int8_holds(exported: Any) -> None:
    r = json.loads((exported.bundle_dir / "quant_report.json").read_text())
    assert list(r["formats"]) == ["torch_fp32", *FORMATS]
    for key, row in r["formats"].items():
        for metric in ("accuracy", "macro_f1", "auc", "per_class_f1", "agreement_vs_fp32",
                       "kl_vs_fp32", "latency_ms", "macs"):
            assert row[metric] is not None, (key, metric)
        if key != "torch_fp32":
            assert row["verdict"]["acceptable"], (key, row["verdict"])
    # the exporter's promise, measured here from the report's own rows rather than taken from
    # its verdict: int8 macro-F1 within INT8_MAX_F1_DROP of fp32 on the held-out windows (a
    # report that merely names a cause does not keep it)
    assert r["thresholds"]["int8_max_f1_drop"] == INT8_MAX_F1_DROP
    for key in ("onnx_int8", "tflite_int8"):
        check = r["checks"][key]
        drop = r["formats"]["torch_fp32"]["macro_f1"] - r["formats"][key]["macro_f1"]
        assert check["macro_f1_drop"] == pytest.approx(drop)
        assert drop <= INT8_MAX_F1_DROP, (key, drop, check.get("cause"))
        assert check["within_limit"] and "cause" not in check
        assert len(r["formats"][key]["confusion"]) == 3
    assert r["checks"]["tflite_int8_size"]["within_limit"]
    assert r["formats"]["tflite_int8"]["size_bytes"] <= TFLITE_INT8_MAX_BYTES
    md = (exported.bundle_dir / "quant_report.md").read_text()
    assert "## Verdict" in md and r["recommended"] in md and "Confusion matrices" in md


def test_best_method_ranks_calibration_agreement_then_kl_then_order() -> None:
    def m(name: str, agree: float, kl: float) -> dict[str, Any]:
        return {"method": name, "calib_agreement": agree, "calib_kl": kl}

    assert best_method([m("minmax", 0.95, 0.01), m("entropy", 0.99, 0.02)], 100) == "entropy"
    # within one calibration window of the best agreement, the lower KL wins
    assert best_method([m("minmax", 0.985, 0.01), m("entropy", 0.99, 0.02)], 100) == "minmax"
    assert best_method([m("minmax", 0.98, 0.01), m("entropy", 0.99, 0.02)], 1000) == "entropy"
    assert best_method([m("minmax", 0.99, 0.01), m("percentile", 0.99, 0.01)], 100) == "minmax"
    with pytest.raises(ExportError):
        best_method([], 100)
    with pytest.raises(ExportError, match="calibration method"):
        export_run(Path("no-run"), Path("no-out"), ExportOptions(calib_method="kmeans"))


def test_export_refuses_a_non_empty_output_and_unknown_formats(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "something").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export_run(tmp_path / "run", out)
    with pytest.raises(ExportError, match="unknown formats"):
        export_run(tmp_path / "run", tmp_path / "o2", ExportOptions(formats=["onnx_fp64"]))


def test_export_of_a_missing_run_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as e:
        export_run(tmp_path / "no-run", tmp_path / "out")
    assert e.value.path is not None and e.value.path.endswith("student.pt")
