"""edge.engines.select: auto picks an acceptable format and says why; an explicit backend and precision are obeyed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edge.bundle import MANIFEST_NAME, load_bundle
from edge.engines import InferenceEngine, SelectionReport, open_engine
from edge.errors import EngineError

pytestmark = pytest.mark.slow  # the shared export, the slowest fixture, runs once per session


def test_auto_picks_an_acceptable_format_and_says_why(exported: Any) -> None:
    with load_bundle(exported.bundle_dir) as b, open_engine(b, "auto") as engine:
        report = engine.selection
        assert isinstance(engine, InferenceEngine)
        assert isinstance(report, SelectionReport)
        assert report.chosen == engine.key and b.files[engine.key].acceptable
        measured = [c for c in report.candidates if c.median_ms is not None]
        assert len(measured) == 4  # all four formats are runnable here
        assert min(measured, key=lambda c: c.median_ms or 0.0).key == report.chosen
        assert "fastest acceptable" in report.reason and report.chosen in report.summary()


def test_explicit_backend_and_precision(exported: Any) -> None:
    with load_bundle(exported.bundle_dir) as b:
        with open_engine(b, "onnx", "int8") as engine:
            assert (engine.name, engine.precision, engine.selection) == ("onnx", "int8", None)
        with open_engine(b, "tflite") as engine:
            assert engine.name == "tflite" and engine.selection is not None
        with pytest.raises(EngineError, match="unknown backend"):
            open_engine(b, "tensorrt")
        with pytest.raises(EngineError, match="no onnx/fp16"):
            open_engine(b, "onnx", "fp16")


def test_auto_skips_formats_the_manifest_marks_unacceptable(exported: Any, tmp_path: Path) -> None:
    copy = shutil.copytree(exported.bundle_dir, tmp_path / "b")
    m = json.loads((copy / MANIFEST_NAME).read_text())
    for key in ("onnx_fp32", "onnx_int8", "tflite_fp32"):
        m["files"][key]["accuracy"]["acceptable"] = False
    (copy / MANIFEST_NAME).write_text(json.dumps(m))
    (copy / "manifest.sig").unlink()
    with load_bundle(copy) as b, open_engine(b) as engine:
        assert engine.key == "tflite_int8"
        skipped = [c.key for c in engine.selection.candidates if c.median_ms is None]
        assert sorted(skipped) == ["onnx_fp32", "onnx_int8", "tflite_fp32"]
