"""export.quantize: ONNX int8 quantization with each calibration method and a user's exclusion list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export.errors import ExportError
from export.quantize import agreement_and_kl, quantize_onnx_int8


@pytest.mark.slow
def test_exclusion_choice_is_measured_and_method_is_an_option(exported: Any, tmp_path: Path) -> None:
    """quantize_onnx_int8 alone: every calibration method works, a user's exclusion list is
    honoured, and the chosen model agrees with fp32 on held-out windows."""
    from export.quantize import run_onnx

    fp32 = exported.bundle_dir / "model_fp32.onnx"
    with np.load(exported.run.path / "windows" / "calib.npz") as z:
        calib = z["X"][:64].astype(np.float32)
    with np.load(exported.run.path / "windows" / "heldout.npz") as z:
        held = z["X"].astype(np.float32)
    ref = run_onnx(fp32, held)
    for method in ("minmax", "percentile"):
        res = quantize_onnx_int8(fp32, tmp_path / f"{method}.onnx", calib, held, method=method,
                                 exclude_ops=["LayerNormalization"])
        assert res.excluded == ["LayerNormalization"] and res.chosen_by == "user"
        agree, kl = agreement_and_kl(ref, run_onnx(tmp_path / f"{method}.onnx", held))
        assert agree >= 0.98 and kl >= 0.0
    with pytest.raises(ExportError, match="calibration method"):
        quantize_onnx_int8(fp32, tmp_path / "x.onnx", calib, held, method="kmeans")


@pytest.mark.slow
def test_int8_is_qoperator_u8s8_with_weights_stored_int8(exported: Any) -> None:
    """The format ORT runs as it is: quantized ops are QLinear*/QGemm nodes, activations
    uint8, weights int8 initializers read directly (no DequantizeLinear of a constant)."""
    import onnx

    from export.quantize import ACTIVATION_TYPE, QUANT_FORMAT

    assert (QUANT_FORMAT, ACTIVATION_TYPE) == ("QOperator", "uint8")
    g = onnx.load(str(exported.bundle_dir / "model_int8.onnx")).graph
    inits = {i.name: i for i in g.initializer}
    ops = [n.op_type for n in g.node]
    fused = [n for n in g.node if n.op_type in ("QLinearConv", "QGemm", "QLinearMatMul")]
    assert fused, ops
    for n in fused:  # activation zero point uint8; a constant B (weights) stored int8
        assert inits[n.input[2]].data_type == onnx.TensorProto.UINT8, n.name
        w = n.input[3]  # QLinearMatMul of two activations (attention) has no constant B
        assert w in inits or n.op_type == "QLinearMatMul", (n.name, w)
        if w in inits:
            assert inits[w].data_type == onnx.TensorProto.INT8, (n.name, w)
    const_dq = [n.name for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert not const_dq
    assert "QDQ" not in {n.domain for n in g.node}
