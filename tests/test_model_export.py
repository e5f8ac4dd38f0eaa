"""The student's op set exports: ONNX (dynamo exporter) run in ONNX Runtime and TFLite
(litert_torch) run in the LiteRT interpreter both match PyTorch, for the default conv
tokenizer (Conv1d stem, mean/std per patch) and the linear one. This proves the
architecture; export/ builds the deployable bundles on top of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.contract import WESAD_WRIST_MODALITIES, InputContract
from train.models import Student, StudentConfig

pytestmark = [
    pytest.mark.slow,
    # emitted from copyreg while torch.export pickles pytree specs; not ours to fix
    pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)`:FutureWarning"),
]

CONTRACT = InputContract(WESAD_WRIST_MODALITIES, ("baseline", "stress", "amusement"))
TOL = 1e-4  # fp32 re-association across runtimes stays orders of magnitude below this
ALLOWED_ONNX_OPS = {
    "Add", "Concat", "Conv", "Div", "Erf", "Gather", "Gemm", "LayerNormalization", "MatMul",
    "Mul", "ReduceMean", "Relu", "Reshape", "Slice", "Softmax", "Split", "Sqrt", "Sub",
    "Transpose",
}  # fmt: skip


# (pooling, tokenizer): both poolings with the default conv tokenizer, and the linear one
VARIANTS = [("cls", "conv"), ("mean", "conv"), ("cls", "linear")]


def _model(pooling: str, tokenizer: str) -> Student:
    torch.manual_seed(0)
    cfg = StudentConfig.from_contract(CONTRACT, pooling=pooling, tokenizer=tokenizer)
    return Student(cfg).eval()


def _inputs(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((1, CONTRACT.input_length)).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize(("pooling", "tokenizer"), VARIANTS)
def test_student_exports_to_onnx(pooling: str, tokenizer: str, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    model = _model(pooling, tokenizer)
    sample = torch.from_numpy(_inputs(1)[0])
    path = tmp_path / "student.onnx"
    program = torch.onnx.export(model, (sample,), dynamo=True, opset_version=18, verbose=False)
    assert program is not None
    program.save(str(path))

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert ops <= ALLOWED_ONNX_OPS, ops - ALLOWED_ONNX_OPS

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert list(inp.shape) == [1, CONTRACT.input_length]  # static shape
    for x in _inputs():
        (got,) = sess.run(None, {inp.name: x})
        want = model(torch.from_numpy(x)).detach().numpy()
        assert got.shape == (1, 3)
        assert float(np.abs(got - want).max()) < TOL


@pytest.mark.parametrize(("pooling", "tokenizer"), VARIANTS)
def test_student_exports_to_tflite(pooling: str, tokenizer: str, tmp_path: Path) -> None:
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter

    model = _model(pooling, tokenizer)
    sample = torch.from_numpy(_inputs(1)[0])
    path = tmp_path / "student.tflite"
    litert_torch.convert(model, (sample,)).export(str(path))

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    (inp,) = interp.get_input_details()
    (out,) = interp.get_output_details()
    assert list(inp["shape"]) == [1, CONTRACT.input_length]
    assert inp["dtype"] == np.float32
    for x in _inputs():
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        got = interp.get_tensor(out["index"])
        want = model(torch.from_numpy(x)).detach().numpy()
        assert got.shape == (1, 3)
        assert float(np.abs(got - want).max()) < TOL
