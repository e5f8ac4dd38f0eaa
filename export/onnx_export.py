"""PyTorch student -> ONNX fp32 (torch.onnx dynamo exporter, static shape (1, L))."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any, Final

import torch
from torch import nn

from export.errors import ExportError

__all__ = ["INPUT_NAME", "OPSET", "OUTPUT_NAME", "export_onnx_fp32", "onnx_io"]

OPSET: Final = 18  # >= 17 for LayerNormalization as one op; 18 is the dynamo exporter's native
INPUT_NAME: Final = "x"  # packed window (1, L)
OUTPUT_NAME: Final = "logits"  # (1, K)


@contextlib.contextmanager
def quiet_conversion() -> Any:
    """Silence third-party chatter (progress prints, a torch pytree FutureWarning raised from
    copyreg where the project's module-scoped warning filters cannot reach it)."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def export_onnx_fp32(model: nn.Module, input_length: int, path: Path) -> None:
    """Write ``model`` (eval) as ONNX with one float32 input ``x`` (1, L) and output
    ``logits`` (1, K); checked with ``onnx.checker``."""
    import onnx

    x = torch.zeros(1, input_length)
    try:
        with quiet_conversion(), torch.no_grad():
            torch.onnx.export(
                model.eval(),
                (x,),
                str(path),
                dynamo=True,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                external_data=False,  # one self-contained file per format in the bundle
                verbose=False,
            )
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except (RuntimeError, ValueError, TypeError, onnx.checker.ValidationError) as e:
        raise ExportError(f"ONNX export failed: {e}", path=str(path), stage="onnx_fp32") from e


def onnx_io(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest's ``input``/``output`` descriptions of an ONNX file (float I/O)."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)

    def describe(v: Any) -> dict[str, Any]:
        t = v.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        return {"name": v.name, "shape": [d.dim_value for d in t.shape.dim], "dtype": dtype}

    return describe(m.graph.input[0]), describe(m.graph.output[0])
