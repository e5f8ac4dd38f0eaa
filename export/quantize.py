"""ONNX int8: ONNX Runtime static quantization (QOperator, uint8 activations, per-channel int8
weights), with the ops left in float chosen by measurement.

Calibration uses training-subject windows only (``RUN/windows/calib.npz``). Which op types
stay float is measured, not guessed: every candidate exclusion set is quantized and scored
by top-1 agreement and mean KL divergence against the fp32 model on the calibration
windows (never on held-out windows, which are for the report). Held-out agreement is
recorded beside each candidate as evidence only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from export.errors import ExportError
from export.onnx_export import INPUT_NAME

__all__ = [
    "CALIB_METHODS",
    "DEFAULT_EXCLUSION_CANDIDATES",
    "STD_POOL",
    "ExclusionTrial",
    "OnnxQuantResult",
    "agreement_and_kl",
    "quantize_onnx_int8",
    "run_onnx",
]

CALIB_METHODS: Final = ("minmax", "entropy", "percentile")
# Not an ONNX op type: names the conv stems' std pooling chain Mul(d, d) -> ReduceMean ->
# Add(eps) -> Sqrt. Quantizing it costs the conv-stem student much of its int8 agreement
# (the int8 variance, one scale per tensor, rounds the small variances of slow channels to
# zero and sqrt magnifies that); keeping these nodes float recovers it, where excluding
# Sqrt alone, the first Conv, the stem projections or LayerNorm/Softmax did not
# (measured: export/RESULTS.md).
STD_POOL: Final = "StdPool"
# Transformer ops whose int8 versions most often cost accuracy: LayerNorm (a variance of a
# few values), Softmax (outputs in [0, 1] squeezed into 256 levels), and the activation.
DEFAULT_EXCLUSION_CANDIDATES: Final[tuple[tuple[str, ...], ...]] = (
    (),
    ("LayerNormalization",),
    ("Softmax",),
    ("LayerNormalization", "Softmax"),
    ("LayerNormalization", "Softmax", "Gelu", "Erf", "Tanh"),
    (STD_POOL,),
    (STD_POOL, "LayerNormalization", "Softmax"),
)
_PERCENTILE: Final = 99.99  # ORT's default; clips the 0.01% largest activations
# The format the runtime runs without rewriting it (measurements: export/RESULTS.md):
# - QOperator: each quantized op is one QLinearConv / QGemm / QLinearMatMul node that reads
#   its weights as stored int8. In QDQ form every constant weight had a DequantizeLinear that
#   ran on every call unless ORT fused the group, and its x86 rewrite of int8 activations to
#   uint8 left the Convs' inputs and outputs of different signedness, so they stayed float.
# - uint8 activations x int8 weights (U8S8) is the pairing ORT's CPU kernels (MLAS) run
#   natively on x86 and ARM.
# - reduce_range (7-bit weights): without AVX-512 VNNI, x86's U8S8 dot product sums pairs of
#   products in int16 and saturates with full-range weights (int8 disagreed with fp32 on
#   several % of windows); 7-bit weights cannot saturate it. The cost is one bit of weight
#   resolution, which per-channel scales make up for.
QUANT_FORMAT: Final = "QOperator"
ACTIVATION_TYPE: Final = "uint8"
WEIGHT_TYPE: Final = "int8"
REDUCE_RANGE: Final = True


@dataclass
class ExclusionTrial:
    """One candidate exclusion set, measured."""

    excluded: list[str]
    calib_agreement: float  # top-1 agreement with fp32 on calibration windows (the criterion)
    calib_kl: float  # mean KL(fp32 || int8) on calibration windows
    heldout_agreement: float  # evidence only; not used to choose
    size: int  # bytes of the int8 file


@dataclass
class OnnxQuantResult:
    method: str
    calib_size: int
    excluded: list[str]
    chosen_by: str  # "measurement" or "user"
    trials: list[ExclusionTrial]
    per_channel: bool = True
    quant_format: str = QUANT_FORMAT
    activation_type: str = ACTIVATION_TYPE
    weight_type: str = WEIGHT_TYPE
    reduce_range: bool = REDUCE_RANGE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_onnx(path: Path | bytes, x: np.ndarray) -> np.ndarray:
    """(N, L) -> (N, K) logits, one window at a time (the model's batch is 1)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    model = path if isinstance(path, bytes) else str(path)
    sess = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def agreement_and_kl(ref_logits: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    """Top-1 agreement and mean KL(softmax(ref) || softmax(other)) in nats."""
    agree = float((ref_logits.argmax(1) == logits.argmax(1)).mean())
    p, q = _softmax(ref_logits.astype(np.float64)), _softmax(logits.astype(np.float64))
    kl = float(np.mean(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)), axis=1)))
    return agree, kl


_METHODS_ORT: Final = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
# Entropy: quantize_static would build the histogram with 128 bins for 128 quantized bins,
# which leaves the KL search a single candidate (the full range, i.e. MinMax). TensorRT's
# recipe searches 2048 bins down to 128; 512 keeps the search (pure Python, per tensor) at
# ~20 s for a small student instead of ~2 min, with the same 128-level target.
_ENTROPY_OPTIONS: Final = {"num_bins": 512, "num_quantized_bins": 128}


def _calibrate(pre: Path, calib_x: np.ndarray, method: str, cache: Path) -> None:
    """Collect activation ranges once per method into an ORT calibration cache (JSON); every
    exclusion candidate then quantizes from the same ranges."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, save_tensors_data
    from onnxruntime.quantization.calibrate import create_calibrator

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        """Calibration windows, one (1, L) batch at a time (the model's static batch)."""

        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.i >= len(calib_x):
                return None
            self.i += 1
            return {INPUT_NAME: calib_x[self.i - 1 : self.i]}

        def rewind(self) -> None:
            self.i = 0

    options: dict[str, Any] = {}
    if method == "entropy":
        options.update(_ENTROPY_OPTIONS)
    elif method == "percentile":
        options["percentile"] = _PERCENTILE
    calibrator = create_calibrator(
        pre,
        None,  # every tensor: a superset of what any exclusion set quantizes
        augmented_model_path=str(cache.with_suffix(".augmented.onnx")),
        calibrate_method=getattr(CalibrationMethod, _METHODS_ORT[method]),
        extra_options=options,
    )
    calibrator.collect_data(Reader())
    save_tensors_data(calibrator.compute_data(), cache)


def _quantize_once(pre: Path, out: Path, cache: Path, method: str, excluded: Sequence[str]) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    graph = onnx.load(str(pre)).graph
    nodes_to_exclude = [n.name for n in graph.node if n.op_type in set(excluded)]
    if STD_POOL in excluded:
        nodes_to_exclude += _std_pool_nodes(graph)
    quantize_static(
        str(pre),
        str(out),
        None,  # ranges come from the cache written by _calibrate
        quant_format=getattr(QuantFormat, QUANT_FORMAT),
        per_channel=True,
        reduce_range=REDUCE_RANGE,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, _METHODS_ORT[method]),
        nodes_to_exclude=nodes_to_exclude,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        calibration_cache_path=str(cache),
    )


def quantize_onnx_int8(
    fp32_path: Path,
    out_path: Path,
    calib_x: np.ndarray,
    heldout_x: np.ndarray,
    *,
    method: str = "minmax",
    exclude_ops: Sequence[str] | None = None,
    candidates: Sequence[Sequence[str]] = DEFAULT_EXCLUSION_CANDIDATES,
    on_trial: Callable[[ExclusionTrial], None] | None = None,
) -> OnnxQuantResult:
    """Quantize ``fp32_path`` into ``out_path``.

    ``exclude_ops`` None: measure every set in ``candidates`` and keep the one with the best
    calibration-set agreement (ties within one window: lowest KL, then fewer exclusions).
    A list: use exactly that (still measured, for the report).
    """
    from onnxruntime.quantization import quant_pre_process

    if method not in CALIB_METHODS:
        raise ExportError(f"unknown calibration method {method!r}; use one of {CALIB_METHODS}",
                          stage="onnx_int8")
    with tempfile.TemporaryDirectory(prefix="edge-export-q-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        except (RuntimeError, ValueError) as e:
            raise ExportError(f"quant_pre_process failed: {e}", path=str(fp32_path),
                              stage="onnx_int8") from e
        cache = Path(tmp) / f"calib_{method}.json"
        try:
            _calibrate(pre, calib_x, method, cache)
        except (RuntimeError, ValueError) as e:
            raise ExportError(f"calibration ({method}) failed: {e}", path=str(fp32_path),
                              stage="onnx_int8") from e
        ref_cal = run_onnx(fp32_path, calib_x)
        ref_held = run_onnx(fp32_path, heldout_x)
        graph_ops = _op_types(pre)
        sets = [tuple(exclude_ops)] if exclude_ops is not None else [tuple(c) for c in candidates]
        # a candidate naming ops this graph lacks is the same as a smaller one: skip duplicates
        seen: set[tuple[str, ...]] = set()
        trials: list[tuple[ExclusionTrial, Path]] = []
        for i, excl in enumerate(sets):
            effective = tuple(sorted(o for o in excl if o in graph_ops))
            if effective in seen:
                continue
            seen.add(effective)
            out = Path(tmp) / f"q{i}.onnx"
            try:
                _quantize_once(pre, out, cache, method, effective)
            except (RuntimeError, ValueError) as e:
                raise ExportError(f"quantize_static failed (excluding {effective}): {e}",
                                  path=str(fp32_path), stage="onnx_int8") from e
            agree_c, kl_c = agreement_and_kl(ref_cal, run_onnx(out, calib_x))
            agree_h, _ = agreement_and_kl(ref_held, run_onnx(out, heldout_x))
            trial = ExclusionTrial(list(effective), agree_c, kl_c, agree_h, out.stat().st_size)
            trials.append((trial, out))
            if on_trial is not None:
                on_trial(trial)
        best_agree = max(t.calib_agreement for t, _ in trials)
        tol = 1.0 / max(1, len(calib_x))
        eligible = [(t, p) for t, p in trials if t.calib_agreement >= best_agree - tol]
        best, best_path = min(eligible, key=lambda tp: (tp[0].calib_kl, len(tp[0].excluded)))
        out_path.write_bytes(best_path.read_bytes())
    return OnnxQuantResult(
        method=method,
        calib_size=len(calib_x),
        excluded=best.excluded,
        chosen_by="user" if exclude_ops is not None else "measurement",
        trials=[t for t, _ in trials],
    )


def _std_pool_nodes(graph: Any) -> list[str]:
    """Names of every Sqrt <- Add <- ReduceMean <- Mul(d, d) chain (the stems' std pooling)."""
    producer = {o: n for n in graph.node for o in n.output}
    names: list[str] = []
    for sqrt in (n for n in graph.node if n.op_type == "Sqrt"):
        add = producer.get(sqrt.input[0])
        if add is None or add.op_type != "Add":
            continue
        mean = next((producer[i] for i in add.input
                     if i in producer and producer[i].op_type == "ReduceMean"), None)
        sq = producer.get(mean.input[0]) if mean is not None else None
        if sq is not None and sq.op_type == "Mul" and sq.input[0] == sq.input[1]:
            names += [sq.name, mean.name, add.name, sqrt.name]  # type: ignore[union-attr]
    return names


def _op_types(path: Path) -> set[str]:
    import onnx

    graph = onnx.load(str(path)).graph
    return {n.op_type for n in graph.node} | ({STD_POOL} if _std_pool_nodes(graph) else set())
