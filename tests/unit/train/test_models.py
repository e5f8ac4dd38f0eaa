"""train.models: the student's shapes, budgets, layout, rebuild from model_args,
and the student's op set exporting.

The export tests run the student through ONNX (dynamo exporter, in ONNX Runtime) and TFLite
(litert_torch, in the LiteRT interpreter) and compare with PyTorch, for the default conv
tokenizer (Conv1d stem, mean/std per patch) and the linear one. This proves the architecture;
export/ builds the deployable bundles on top of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.contract import WESAD_CHEST_MODALITIES, WESAD_WRIST_MODALITIES, InputContract
from train.macs import count_macs, count_params
from train.models import Student, StudentConfig
from train.packed import packed_columns

CLASSES = ("baseline", "stress", "amusement")
WRIST = InputContract(WESAD_WRIST_MODALITIES, CLASSES)
FULL = InputContract(WESAD_WRIST_MODALITIES + WESAD_CHEST_MODALITIES, CLASSES)
# the student's budget: small enough to decide in real time on a Pi-class hub
MAX_PARAMS = 100_000
MAX_MACS = 10_000_000  # per window


def _x(contract: InputContract, batch: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, contract.input_length, generator=g)


def test_default_contract_packed_length() -> None:
    assert WRIST.input_length == 3840 + 240 + 240 + 5760


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_student_shapes(pooling: str) -> None:
    cfg = StudentConfig.from_contract(WRIST, pooling=pooling)
    model = Student(cfg).eval()
    x = _x(WRIST)
    out = model.forward_features(x)
    # 60 s / 5 s patches per modality, the CLS token, the window-level token of bvp
    n_tok = 4 * 12 + (pooling == "cls") + 1
    assert cfg.n_tokens == n_tok
    assert model(x).shape == (3, 3)
    assert out.logits.shape == (3, 3)
    assert out.fused.shape == (3, cfg.d_model)
    assert set(out.per_modality) == {"bvp", "eda", "temp", "acc"}
    assert all(v.shape == (3, cfg.d_model) for v in out.per_modality.values())
    assert out.attention.shape == (3, cfg.n_heads, n_tok, n_tok)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, cfg.n_heads, n_tok))
    torch.testing.assert_close(out.logits, model(x))


def test_student_budget_default_wrist_contract() -> None:
    model = Student(StudentConfig.from_contract(WRIST))
    params, macs = count_params(model), count_macs(model, WRIST.input_length)
    assert params <= MAX_PARAMS
    assert macs <= MAX_MACS
    assert 20_000 < params < 80_000  # well inside the budget, not trivially small


def test_conv_tokenizer_strides_bvp_to_the_stem_rate() -> None:
    # bvp 64 Hz, 5 s patches: the first conv strides by 8 (to 8 Hz), two stride-2 layers
    # follow, so a patch of 320 samples ends as 10 feature steps at 2 Hz
    model = Student(StudentConfig.from_contract(WRIST)).eval()
    bvp = model.embed[0]
    first = bvp.net[0]
    assert isinstance(first, torch.nn.Conv1d)
    assert (first.stride[0], first.kernel_size[0], first.in_channels) == (8, 17, 1)
    h = bvp.net(torch.zeros(12, 1, 320))
    assert h.shape == (12, model.config.stem_channels, 10)


@pytest.mark.parametrize(
    "overrides",
    [
        {"d_model": 24, "n_heads": 3, "stem_channels": 8, "stem_pool": "mean"},
        {"d_model": 24, "n_heads": 3, "tokenizer": "linear", "patch_hidden": 16},
    ],
)
def test_rebuild_from_json_model_args_gives_identical_outputs(
    overrides: dict[str, object],
) -> None:
    cfg = StudentConfig.from_contract(WRIST, **overrides)
    model = Student(cfg).eval()
    ckpt = {"model_args": json.loads(json.dumps(cfg.to_dict())), "state_dict": model.state_dict()}
    rebuilt = Student(StudentConfig(**ckpt["model_args"])).eval()
    rebuilt.load_state_dict(ckpt["state_dict"])
    assert rebuilt.config == cfg
    x = _x(WRIST)
    torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("tokenizer", ["conv", "linear"])
def test_patch_tokens_follow_contract_layout(tokenizer: str) -> None:
    # no encoder layers: token t depends only on its own patch (the conv stem pads at patch
    # edges instead of reading its neighbours), so a perturbation must land in exactly the
    # token covering that modality, channel and second; 4.9 s and 59.9 s sit at patch edges
    cfg = StudentConfig.from_contract(
        WRIST, n_layers=0, pooling="mean", dropout=0.0, tokenizer=tokenizer
    )
    model = Student(cfg).eval()
    slots = model.token_slices
    lay = {s.modality.name: s for s in WRIST.layout()}
    cases = [("bvp", 0, 12.0, 2), ("eda", 0, 59.9, 11), ("acc", 1, 30.0, 6), ("acc", 2, 4.9, 0)]
    x = _x(WRIST, batch=1)
    h0, _ = model._encode(x)
    for name, ch, sec, patch in cases:
        s = lay[name]
        col = s.offset + ch * s.samples + int(sec * s.modality.rate_hz)
        x2 = x.clone()
        x2[0, col] += 5.0
        h1, _ = model._encode(x2)
        changed = (h1 - h0).abs().amax(dim=-1)[0] > 1e-6  # (N,)
        expected = torch.zeros_like(changed)
        expected[slots[name][0] + patch] = True
        if name in model.global_index:  # and its window-level token, which pools them all
            expected[model.global_index[name]] = True
        assert torch.equal(changed, expected), (name, ch, sec)


def test_window_level_tokens_follow_the_patch_tokens() -> None:
    # given in any order, they follow the contract's, after every patch token
    cfg = StudentConfig.from_contract(WRIST, global_modalities=("temp", "bvp", "ecg"))
    assert cfg.global_names == ("bvp", "temp")  # ecg: not a modality of this student
    model = Student(cfg).eval()
    assert cfg.n_tokens == 1 + sum(cfg.patch_counts) + 2
    assert model.global_index == {"bvp": cfg.n_tokens - 2, "temp": cfg.n_tokens - 1}
    assert max(b for _, b in model.token_slices.values()) == cfg.n_tokens - 2
    assert model.embed[1].global_proj is None and model.embed[2].global_proj is not None
    plain = StudentConfig.from_contract(WRIST, global_modalities=())
    assert plain.n_tokens == cfg.n_tokens - 2 and Student(plain).global_index == {}
    # the linear tokenizer has no stem to pool: no window-level tokens
    assert StudentConfig.from_contract(WRIST, tokenizer="linear").global_names == ()
    # the window-level token is the stem's mean/std over every patch: a flat window gives a
    # token that does not depend on where in time the window is
    emb = model.embed[0]
    tokens, g = emb(torch.zeros(2, 1, WRIST.samples("bvp")))
    assert tokens.shape == (2, 12, cfg.d_model) and g is not None and g.shape == (2, 1, cfg.d_model)
    torch.testing.assert_close(g[0], g[1])


def test_student_on_full_contract_subset_matches_wrist_contract() -> None:
    names = [m.name for m in WESAD_WRIST_MODALITIES]
    wide = Student(StudentConfig.from_contract(FULL, modalities=names)).eval()
    narrow = Student(StudentConfig.from_contract(WRIST)).eval()
    narrow.load_state_dict(wide.state_dict())
    x = _x(FULL)
    cols = torch.from_numpy(packed_columns(FULL, names))
    torch.testing.assert_close(narrow(x[:, cols]), wide(x))
    np.testing.assert_array_equal(
        FULL.pack_batch([FULL.unpack(x[0].numpy())])[:, packed_columns(FULL, names)][0],
        WRIST.pack({k: v for k, v in FULL.unpack(x[0].numpy()).items() if k in names}),
    )


def test_student_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="pooling"):
        StudentConfig.from_contract(WRIST, pooling="max")
    with pytest.raises(ValueError, match="divisible"):
        StudentConfig.from_contract(WRIST, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="longer than the window"):
        StudentConfig.from_contract(WRIST, patch_s=120.0)
    with pytest.raises(ValueError, match="tokenizer"):
        StudentConfig.from_contract(WRIST, tokenizer="fft")
    with pytest.raises(ValueError, match="stem_pool"):
        StudentConfig.from_contract(WRIST, stem_pool="max")
    with pytest.raises(ValueError, match="odd"):
        StudentConfig.from_contract(WRIST, stem_kernel=4)


# the export tests: slow, and torch.export pickles pytree specs through copyreg, which warns;
# not ours to fix
_EXPORT_WARNING = r"ignore:`isinstance\(treespec, LeafSpec\)`:FutureWarning"


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
    cfg = StudentConfig.from_contract(WRIST, pooling=pooling, tokenizer=tokenizer)
    return Student(cfg).eval()


def _inputs(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((1, WRIST.input_length)).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize(("pooling", "tokenizer"), VARIANTS)
@pytest.mark.slow
@pytest.mark.filterwarnings(_EXPORT_WARNING)
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
    assert list(inp.shape) == [1, WRIST.input_length]  # static shape
    for x in _inputs():
        (got,) = sess.run(None, {inp.name: x})
        want = model(torch.from_numpy(x)).detach().numpy()
        assert got.shape == (1, 3)
        assert float(np.abs(got - want).max()) < TOL


@pytest.mark.parametrize(("pooling", "tokenizer"), VARIANTS)
@pytest.mark.slow
@pytest.mark.filterwarnings(_EXPORT_WARNING)
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
    assert list(inp["shape"]) == [1, WRIST.input_length]
    assert inp["dtype"] == np.float32
    for x in _inputs():
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        got = interp.get_tensor(out["index"])
        want = model(torch.from_numpy(x)).detach().numpy()
        assert got.shape == (1, 3)
        assert float(np.abs(got - want).max()) < TOL
