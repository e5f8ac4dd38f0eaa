"""edge.engines: real ONNX Runtime and LiteRT interpreters on a real exported bundle.

Parity (issue 3): every format against the PyTorch student on held-out windows: fp32
formats within 1e-4 max abs logit difference, int8 formats >= 98% top-1 agreement.
The hub path is proven torch- and onnx-free in a subprocess where importing them fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from edge.bundle import MANIFEST_NAME, TensorSpec, load_bundle
from edge.engines import InferenceEngine, SelectionReport, open_engine, open_file
from edge.engines.base import dequantize, quantize
from edge.errors import EngineError
from tests.fakes.runs import exported_bundle

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # the shared export takes ~40 s once per session


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return exported_bundle(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def heldout(exported: Any) -> tuple[np.ndarray, np.ndarray]:
    with np.load(exported.run.path / "windows" / "heldout.npz") as z:
        x = z["X"].astype(np.float32)
    with torch.no_grad():
        ref = exported.run.model.eval()(torch.from_numpy(x)).numpy()
    return x, ref


@pytest.mark.parametrize("key", ["onnx_fp32", "tflite_fp32"])
def test_fp32_parity_with_pytorch(exported: Any, heldout: tuple[np.ndarray, np.ndarray], key: str) -> None:
    x, ref = heldout
    with load_bundle(exported.bundle_dir) as b, open_file(b, key) as engine:
        logits = engine.run(x)
    assert logits.shape == ref.shape and logits.dtype == np.float32
    assert np.abs(logits - ref).max() <= 1e-4


@pytest.mark.parametrize("key", ["onnx_int8", "tflite_int8"])
def test_int8_agreement_with_fp32(exported: Any, heldout: tuple[np.ndarray, np.ndarray], key: str) -> None:
    x, ref = heldout
    with load_bundle(exported.bundle_dir) as b, open_file(b, key) as engine:
        logits = engine.run(x)
        assert engine.precision == "int8"
    agreement = (logits.argmax(1) == ref.argmax(1)).mean()
    assert agreement >= 0.98, f"{key}: {agreement:.3f}"


def test_batch_equals_row_by_row(exported: Any, heldout: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = heldout
    with load_bundle(exported.bundle_dir) as b, open_file(b, "tflite_int8", threads=2) as engine:
        batch = engine.run(x[:5])
        rows = np.concatenate([engine.run(x[i]) for i in range(5)])  # (L,) is a batch of one
    np.testing.assert_array_equal(batch, rows)


def test_tflite_int8_io_is_quantized_per_manifest(exported: Any) -> None:
    with load_bundle(exported.bundle_dir) as b:
        spec = b.files["tflite_int8"].input
        # the exporter measured int8 I/O on this converter; the manifest must say so
        assert spec.dtype == "int8" and spec.scale is not None and spec.zero_point is not None


def test_wrong_input_shape_is_an_engine_error(exported: Any) -> None:
    with (
        load_bundle(exported.bundle_dir) as b,
        open_file(b, "onnx_fp32") as engine,
        pytest.raises(EngineError, match="input shape"),
    ):
        engine.run(np.zeros((1, 3), np.float32))


def test_closed_engine_refuses_to_run(exported: Any) -> None:
    with load_bundle(exported.bundle_dir) as b:
        engine = open_file(b, "tflite_fp32")
        engine.close()
        with pytest.raises(EngineError, match="closed"):
            engine.run(np.zeros((1, b.contract.input_length), np.float32))


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


def test_manifest_scale_mismatch_is_refused_by_tflite_engine(exported: Any, tmp_path: Path) -> None:
    copy = shutil.copytree(exported.bundle_dir, tmp_path / "b")
    m = json.loads((copy / MANIFEST_NAME).read_text())
    m["files"]["tflite_int8"]["input"]["scale"] *= 2
    (copy / MANIFEST_NAME).write_text(json.dumps(m))
    with load_bundle(copy) as b, pytest.raises(EngineError) as e:
        open_file(b, "tflite_int8")
    assert "model_int8.tflite" in str(e.value) and "quantization" in str(e.value)


def test_corrupt_model_is_an_engine_error_naming_file_and_backend(exported: Any, tmp_path: Path) -> None:
    copy = shutil.copytree(exported.bundle_dir, tmp_path / "b")
    with load_bundle(copy) as b:
        # the file changes after verification: the engine re-hashes what it loads
        (copy / "model_fp32.onnx").write_bytes(b"\x00" * b.files["onnx_fp32"].size)
        with pytest.raises(EngineError) as e:
            open_file(b, "onnx_fp32")
    assert str(e.value).startswith("onnx:") and "model_fp32.onnx" in str(e.value)


def test_quantize_dequantize_round_trip() -> None:
    spec = TensorSpec("x", (1, 4), "int8", scale=0.1, zero_point=3)
    x = np.array([[-20.0, -0.26, 0.0, 0.34]], np.float32)
    q = quantize(x, spec)
    assert q.dtype == np.int8 and q.tolist() == [[-128, 0, 3, 6]]  # -20 saturates
    np.testing.assert_allclose(dequantize(q, spec), [[-13.1, -0.3, 0.0, 0.3]], atol=1e-6)


HUB_SCRIPT = """
import builtins, sys
real_import = builtins.__import__
BLOCKED = ("torch", "onnx", "onnxscript", "litert_torch", "scipy", "matplotlib", "train", "export")

def guarded(name, *args, **kwargs):
    if name.split(".")[0] in BLOCKED:
        raise ImportError(f"hub must not import {name}")
    return real_import(name, *args, **kwargs)

builtins.__import__ = guarded
import numpy as np
from edge.bundle import load_bundle
from edge.engines import open_engine

for path in sys.argv[1:]:
    with load_bundle(path, trusted_keys=[sys.argv[1] + "/../keys/export.pub.pem"]) as b:
        with open_engine(b, "auto") as engine:
            y = engine.run(np.zeros((3, b.contract.input_length), np.float32))
        for backend, precision in (("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8")):
            with open_engine(b, backend, precision) as e:
                assert e.run(np.zeros((1, b.contract.input_length), np.float32)).shape == (1, 3)
    print("ran", engine.key, y.shape)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("leaked", leaked)
"""


def test_hub_path_never_imports_torch_or_onnx(exported: Any) -> None:
    """Load (dir and .tar, signed), auto-select and run every format with torch/onnx
    imports made to fail: the hub code path must not need them."""
    bundle = exported.bundle_dir
    proc = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT, str(bundle), str(exported.archive)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("ran ") for line in lines) == 2
    assert "leaked []" in lines
