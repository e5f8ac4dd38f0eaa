"""edge.engines.base: the engine contract, kept by real ONNX Runtime and LiteRT interpreters
on a real exported bundle.

Parity: every format against the PyTorch student on held-out windows: fp32 formats within
1e-4 max abs logit difference, int8 formats >= 98% top-1 agreement (what the exporter
promises in the manifest). That the hub path needs no torch or onnx is in
tests/unit/test_architecture.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.bundle import TensorSpec, load_bundle
from edge.engines import open_file
from edge.engines.base import dequantize, quantize
from edge.errors import EngineError

pytestmark = pytest.mark.slow  # the shared export, the slowest fixture, runs once per session


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
