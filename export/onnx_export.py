"""PyTorch student -> ONNX fp32 (torch.onnx dynamo exporter, static shape (1, L))."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import torch
from torch import nn

from export.errors import ExportError

__all__ = ["INPUT_NAME", "OPSET", "OUTPUT_NAME", "export_onnx_fp32", "onnx_io", "onnx_outputs"]

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


def export_onnx_fp32(
    model: nn.Module, input_length: int, path: Path, output_names: Sequence[str] = (OUTPUT_NAME,)
) -> None:
    """Write ``model`` (eval) as ONNX with one float32 input ``x`` (1, L) and the outputs
    ``output_names`` (``logits`` (1, K) first, then e.g. ``embedding`` (1, D) for a model
    returning both); checked with ``onnx.checker``."""
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
                output_names=list(output_names),
                external_data=False,  # one self-contained file per format in the bundle
                verbose=False,
            )
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except (RuntimeError, ValueError, TypeError, onnx.checker.ValidationError) as e:
        raise ExportError(f"ONNX export failed: {e}", path=str(path), stage="onnx_fp32") from e


def _describe(v: Any) -> dict[str, Any]:
    import onnx

    t = v.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
    return {"name": v.name, "shape": [d.dim_value for d in t.shape.dim], "dtype": dtype}


def onnx_outputs(path: Path) -> list[dict[str, Any]]:
    """Every output's description, in the graph's order (``logits`` first)."""
    import onnx

    return [_describe(v) for v in onnx.load(str(path), load_external_data=False).graph.output]


def onnx_io(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest's ``input``/``output`` (logits) descriptions of an ONNX file (float I/O)."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return _describe(m.graph.input[0]), _describe(m.graph.output[0])
