"""PyTorch student -> TFLite fp32 and full-integer int8 with litert-torch (no TensorFlow).

int8 uses litert-torch's PT2E quantizer: ``torch.export`` -> ``prepare_pt2e`` with
per-channel symmetric int8 weights and histogram-calibrated int8 activations -> calibration
on training windows -> ``convert_pt2e`` -> ``litert_torch.convert(..., quant_config=...)``.
The converter emits int8 input and output tensors; their scale and zero point go into the
manifest so the hub quantizes each window and dequantizes the logits.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from export.errors import ExportError
from export.onnx_export import quiet_conversion

__all__ = [
    "TFLITE_QUANTIZER",
    "export_tflite_fp32",
    "export_tflite_int8",
    "tflite_io",
    "tflite_op_summary",
    "tflite_outputs",
]

CALIB_BATCH: Final = 64  # windows per calibration call; observers see the same values either way
TFLITE_QUANTIZER: Final = {
    "tool": "litert_torch PT2EQuantizer",
    "weights": "int8 per-channel symmetric",
    "activations": "int8 per-tensor affine, HistogramObserver",
    "annotated_ops": "linear, add, mul, cat (others run in float between (de)quantize ops)",
    "float_nodes": "the conv stems' variance chain (dev*dev -> mean -> +eps) before sqrt",
}


@contextlib.contextmanager
def _no_litert_progress() -> Iterator[None]:
    old = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"  # its own progress lines; ours are rich
    try:
        with quiet_conversion():
            yield
    finally:
        if old is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = old


def export_tflite_fp32(model: nn.Module, input_length: int, path: Path) -> None:
    import litert_torch

    sample = torch.zeros(1, input_length)
    try:
        with _no_litert_progress(), torch.no_grad():
            edge_model = litert_torch.convert(model.eval(), (sample,))
            edge_model.export(str(path))
    except (RuntimeError, ValueError, TypeError) as e:
        raise ExportError(f"TFLite fp32 conversion failed: {e}", path=str(path),
                          stage="tflite_fp32") from e


def _std_chain_nodes(graph: torch.fx.Graph) -> list[torch.fx.Node]:
    """The conv stems' variance chain: ``mul(d, d)`` (a square), the mean over the patch and
    the ``+ eps`` before ``sqrt``. An int8 variance with one per-tensor scale rounds the small
    variances of slow channels (EDA, TEMP) to zero, and sqrt's infinite slope at zero turns
    that into large errors in the std features; measured, it is the whole int8 accuracy loss
    of the conv-stem student (see ``export.quantize.STD_POOL``)."""
    chain: list[torch.fx.Node] = []
    for n in graph.nodes:
        if (n.op == "call_function" and n.target == torch.ops.aten.mul.Tensor
                and len(n.args) == 2 and n.args[0] is n.args[1]):
            chain.append(n)
            for mean in n.users:
                chain.append(mean)
                chain.extend(u for u in mean.users
                             if u.target in (torch.ops.aten.add.Tensor, torch.ops.aten.add.Scalar))
    return chain


def _float_std_quantizer(base: type) -> type:
    """``base`` (litert-torch's PT2EQuantizer) annotating as usual, then leaving the stems'
    variance chain unannotated, i.e. float between dequantize and quantize ops."""

    class FloatStdQuantizer(base):  # type: ignore[misc,valid-type]
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = super().annotate(model)
            for n in _std_chain_nodes(model.graph):
                n.meta.pop("quantization_annotation", None)
            return model

    return FloatStdQuantizer


def export_tflite_int8(
    model: nn.Module, input_length: int, calib_x: np.ndarray, path: Path, *, float_std: bool = True
) -> None:
    """Full-integer int8 via PT2E, calibrated on ``calib_x`` (N, L) training windows.

    ``float_std``: keep the conv stems' variance chain in float (the measured default)."""
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    sample = torch.zeros(1, input_length)
    try:
        with _no_litert_progress(), torch.no_grad():
            # a dynamic batch for calibration only: HistogramObserver costs ~0.3 s per call,
            # so 500 single-window calls take minutes and 8 batches take seconds; the
            # converter re-traces with the static (1, L) sample below
            batch = torch.export.Dim("batch", min=1, max=CALIB_BATCH)
            graph = torch.export.export(
                model.eval(), (torch.zeros(2, input_length),), dynamic_shapes=({0: batch},)
            ).module()
            cls = pt2e_quantizer.PT2EQuantizer
            quantizer = (_float_std_quantizer(cls) if float_std else cls)().set_global(
                pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True)
            )
            prepared = prepare_pt2e(graph, quantizer)
            for i in range(0, len(calib_x), CALIB_BATCH):
                prepared(torch.from_numpy(calib_x[i : i + CALIB_BATCH]))
            converted = convert_pt2e(prepared, fold_quantize=False)
            move_exported_model_to_eval(converted)  # exported graphs ignore .eval()
            edge_model = litert_torch.convert(
                converted, (sample,), quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)
            )
            edge_model.export(str(path))
        _shorten_tensor_names(path)
    except (RuntimeError, ValueError, TypeError, AssertionError) as e:
        raise ExportError(f"TFLite int8 conversion failed: {e}", path=str(path),
                          stage="tflite_int8") from e


def _shorten_tensor_names(path: Path) -> None:
    """Rename every inner tensor to ``t<index>``. litert-torch names tensors by their full
    torch.export module path (~34 KB of strings for the student, a fifth of the int8 file,
    which pushed it past the 150 KB budget); the runtime never reads them. Input and output
    keep their names (the manifest and the signature refer to them)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    for sg in model.subgraphs:
        keep = set(sg.inputs) | set(sg.outputs)
        for i, t in enumerate(sg.tensors):
            if i not in keep:
                t.name = f"t{i}".encode()
    flatbuffer_utils.write_model(model, str(path))


def _interpreter(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # no XNNPACK: inspect the model's own ops, not the delegate's fused replacement
    interp = Interpreter(
        model_path=str(path),
        num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    return interp


def _describe(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": d["name"],
        "shape": [int(v) for v in d["shape"]],
        "dtype": np.dtype(d["dtype"]).name,
    }
    if out["dtype"] in ("int8", "uint8"):
        scale, zero_point = d["quantization"]
        out["scale"], out["zero_point"] = float(scale), int(zero_point)
    return out


def tflite_outputs(path: Path) -> list[dict[str, Any]]:
    """Every output's description in the order the PyTorch module returns them (the
    signature's ``output_0``, ``output_1``, ...; the flatbuffer's own order may differ)."""
    interp = _interpreter(path)
    try:
        by_sig = interp.get_signature_runner().get_output_details()
    except ValueError:  # a model without a signature: the flatbuffer's order is all there is
        return [_describe(d) for d in interp.get_output_details()]
    return [_describe(by_sig[k]) for k in sorted(by_sig, key=lambda k: int(k.rpartition("_")[2]))]


def tflite_io(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest's ``input``/``output`` (logits) descriptions, with scale/zero_point if integer."""
    return _describe(_interpreter(path).get_input_details()[0]), tflite_outputs(path)[0]


def tflite_op_summary(path: Path) -> dict[str, Any]:
    """Which ops run in int8 and which in float (by their first input's dtype)."""
    interp = _interpreter(path)
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in interp.get_tensor_details()}
    int_ops: Counter[str] = Counter()
    float_ops: Counter[str] = Counter()
    for op in interp._get_ops_details():  # the public API has no per-op listing
        name = op["op_name"]
        if name in ("DELEGATE", "QUANTIZE", "DEQUANTIZE"):
            continue
        inputs = [i for i in op["inputs"] if i >= 0]
        dt = dtypes.get(inputs[0], "?") if inputs else "?"
        (int_ops if dt in ("int8", "uint8", "int16") else float_ops)[name] += 1
    return {"int8_ops": dict(int_ops), "float_ops": dict(float_ops)}
