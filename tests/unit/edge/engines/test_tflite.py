"""edge.engines.tflite: int8 input and output quantized as the manifest says, and a manifest that disagrees with the model refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edge.bundle import MANIFEST_NAME, load_bundle
from edge.engines import open_file
from edge.errors import EngineError

pytestmark = pytest.mark.slow  # the shared export, the slowest fixture, runs once per session


def test_tflite_int8_io_is_quantized_per_manifest(exported: Any) -> None:
    with load_bundle(exported.bundle_dir) as b:
        spec = b.files["tflite_int8"].input
        # the exporter measured int8 I/O on this converter; the manifest must say so
        assert spec.dtype == "int8" and spec.scale is not None and spec.zero_point is not None


def test_manifest_scale_mismatch_is_refused_by_tflite_engine(exported: Any, tmp_path: Path) -> None:
    copy = shutil.copytree(exported.bundle_dir, tmp_path / "b")
    m = json.loads((copy / MANIFEST_NAME).read_text())
    m["files"]["tflite_int8"]["input"]["scale"] *= 2
    (copy / MANIFEST_NAME).write_text(json.dumps(m))
    with load_bundle(copy) as b, pytest.raises(EngineError) as e:
        open_file(b, "tflite_int8")
    assert "model_int8.tflite" in str(e.value) and "quantization" in str(e.value)
