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
