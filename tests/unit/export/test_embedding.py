"""export.embedding: every exported file returns the embedding, and head.npz applied to it
gives the file's own logits (ONNX and TFLite, fp32 and int8), on real held-out windows."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from edge.bundle import load_bundle
from edge.engines import open_file
from export.embedding import (
    HEAD_FP32_MAX_ABS_DIFF,
    HEAD_INT8_MIN_AGREEMENT,
    check_head_parity,
    head_arrays,
    head_parity,
    with_embedding,
)
from export.errors import ExportError

FORMATS = ("onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8")


@pytest.mark.slow
@pytest.mark.parametrize("key", FORMATS)
def test_head_applied_to_the_embedding_gives_the_models_logits(exported: Any, key: str) -> None:
    with np.load(exported.run.path / "windows" / "heldout.npz") as z:
        x = z["X"].astype(np.float32)
    with load_bundle(exported.bundle_dir, trusted_keys=[exported.public_key]) as b:
        assert b.embedding_dim == b.manifest["outputs"]["embedding"]
        with np.load(io.BytesIO(b.read_head())) as h:
            W, bias = h["W"], h["b"]
        assert W.shape == (b.embedding_dim, len(b.class_names)) and bias.shape == (
            len(b.class_names),
        )
        with open_file(b, key) as engine:
            logits, emb = engine.run_outputs(x)
            assert np.array_equal(engine.run(x), logits)  # run() stays what every caller had
    assert emb is not None and emb.shape == (len(x), W.shape[0])
    mine = emb @ W + bias
    agreement = float((mine.argmax(1) == logits.argmax(1)).mean())
    if key.endswith("fp32"):
        assert np.abs(mine - logits).max() <= HEAD_FP32_MAX_ABS_DIFF
    else:  # each output on its own 8-bit grid: the decisions must agree
        assert agreement >= HEAD_INT8_MIN_AGREEMENT
        assert np.abs(mine - logits).max() < 0.5 * np.ptp(logits)
    recorded = exported.manifest["files"][key]["head_parity"]
    assert recorded["windows"] == len(x) and recorded["agreement"] >= HEAD_INT8_MIN_AGREEMENT


@pytest.mark.slow
def test_manifest_declares_outputs_and_signs_the_head(exported: Any) -> None:
    m = json.loads((exported.bundle_dir / "manifest.json").read_text())
    W, _ = head_arrays(exported.run.model)
    assert m["outputs"] == {"logits": W.shape[1], "embedding": W.shape[0]}
    assert m["head"]["path"] == "head.npz" and len(m["head"]["sha256"]) == 64
    for entry in m["files"].values():
        assert entry["embedding"]["shape"][-1] == W.shape[0]
    assert m["files"]["tflite_int8"]["size"] <= 150 * 1024


@pytest.mark.slow
def test_the_wrapper_matches_the_student(exported: Any) -> None:
    model = exported.run.model
    with np.load(exported.run.path / "windows" / "heldout.npz") as z:
        x = z["X"][:8].astype(np.float32)
    wrapped = with_embedding(model, x)
    assert wrapped is not None
    with torch.no_grad():
        logits, emb = wrapped(torch.from_numpy(x))
        ref = model(torch.from_numpy(x))
    W, b = head_arrays(model)
    assert torch.allclose(logits, ref)
    np.testing.assert_allclose(emb.numpy() @ W + b, ref.numpy(), atol=1e-5)


class _NoHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class _HeadThenMore(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * self.head(x)  # the logits are not head(features): no honest embedding


def test_a_model_without_a_final_head_gets_no_embedding() -> None:
    x = np.ones((2, 4), np.float32)
    assert with_embedding(_NoHead(), x) is None
    assert with_embedding(_HeadThenMore(), x) is None


def test_parity_check_refuses_a_head_that_does_not_match() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(50, 6)).astype(np.float32)
    W = rng.normal(size=(6, 3)).astype(np.float32)
    b = np.zeros(3, np.float32)
    logits = emb @ W + b
    good = head_parity(logits, emb, W, b)
    check_head_parity({"onnx_fp32": good}, {"onnx_fp32": "fp32"})  # passes
    bad = head_parity(logits, emb, W + 0.01, b)
    with pytest.raises(ExportError, match=r"head\.npz does not reproduce"):
        check_head_parity({"onnx_fp32": bad}, {"onnx_fp32": "fp32"})
    shuffled = head_parity(logits, emb, W[:, ::-1].copy(), b)
    with pytest.raises(ExportError, match="agreement"):
        check_head_parity({"tflite_int8": shuffled}, {"tflite_int8": "int8"})
