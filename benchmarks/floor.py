"""The hardware floor: this CPU's sustained matmul throughput through the hub's own runtimes.

A latency means little without a bound to hold it against. The floor of a model on a CPU is
``MACs / peak MAC rate``: the time the multiply-accumulates alone would take if the runtime
kept the vector units busy and spent nothing on anything else. The peak is *measured*, not
read off a datasheet, by timing a large matrix multiply through the same engines the hub
uses (ONNX Runtime and LiteRT with XNNPACK), in fp32 and int8, at each thread count.

The matmul models are small prebuilt files in ``benchmarks/floor_models/`` (regenerate with
``edge-bench floor-models``; host only: it needs onnx and litert-torch), so a hub install
(no torch, no onnx) can measure its floor too. Beside the matmuls sit two "no-op" models
(one element-wise add): their invoke time is the per-call overhead of each runtime, which
bounds a tiny model's latency from below just as the compute floor does.

:func:`pi_estimates` turns a model's MAC count into floor latencies for a Raspberry Pi 4
(Cortex-A72) and Pi 5 (Cortex-A76) from published per-core figures; its assumptions are in
:data:`PI_CORES` and are written into every report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "FLOOR_MODELS_DIR",
    "MATMUL_SHAPE",
    "NOOP_LENGTH",
    "PI_CORES",
    "FloorModel",
    "FloorResult",
    "PiCore",
    "build_floor_models",
    "floor_ms",
    "load_floor_models",
    "measure_floor",
    "measure_floor_model",
    "peak_by_precision",
    "pi_estimates",
]

FLOOR_MODELS_DIR: Final = Path(__file__).resolve().parent / "floor_models"
INDEX_NAME: Final = "index.json"
# 256 x 256 x 256 = 16.8M MACs: 256 KB of fp32 weights stay in L2 (so the kernel is compute-
# bound, which is what "peak" means), yet one call lasts far longer than a runtime's per-call
# overhead (the no-op model measures it), which would otherwise pollute the figure.
MATMUL_SHAPE: Final = (256, 256, 256)  # (M, K, N): activations (M, K) x weights (K, N)
NOOP_LENGTH: Final = 64  # the no-op's input size: small, so its time is pure call overhead
WARMUP_S: Final = 0.2  # XNNPACK packs weights and ORT allocates arenas on the first calls
MIN_SECONDS: Final = 1.0  # a sustained rate, not a burst: ~3000 matmuls here, ~300 on a Pi 4
MIN_RUNS: Final = 50  # and never fewer than this many timed calls, however slow
SEED: Final = 0  # the floor models' weights and inputs; any values do, fixed for reproducibility


@dataclass(frozen=True)
class FloorModel:
    """One prebuilt microbenchmark model."""

    name: str  # "matmul_fp32_onnx", "noop_tflite", ...
    file: str  # relative to the floor-models directory
    engine: str  # "onnx" | "tflite"
    precision: str  # "fp32" | "int8"
    kind: str  # "matmul" | "noop"
    shape: tuple[int, ...]  # (M, K, N) for a matmul; (1, n) for a no-op
    macs: int  # multiply-accumulates per call (0 for a no-op)
    op: str  # what the runtime executes: "MatMul", "MatMulInteger", "FULLY_CONNECTED", ...


@dataclass
class FloorResult:
    """One floor model measured at one thread count."""

    model: str
    engine: str
    precision: str
    kind: str
    threads: int
    runs: int
    median_ms: float
    best_ms: float
    gmacs_median: float | None  # sustained rate, GMAC/s (None for a no-op)
    gmacs_best: float | None


@dataclass(frozen=True)
class PiCore:
    """Published per-core figures of a Raspberry Pi's CPU, for the estimate table."""

    board: str
    core: str
    clock_ghz: float
    cores: int
    fp32_macs_per_cycle: float
    int8_macs_per_cycle: float
    note: str


# Per-core peaks from Arm's software optimization guides for each core.
PI_CORES: Final = (
    PiCore(
        board="Raspberry Pi 4",
        core="Cortex-A72",
        clock_ghz=1.8,  # boards sold since 2020 run at 1.8 GHz (earlier ones 1.5 GHz: x1.2)
        cores=4,
        fp32_macs_per_cycle=4.0,  # one 128-bit FMA pipe's worth: 4 fp32 FMA/cycle
        # no SDOT: int8 goes through widening SMULL/SMLAL (8 lanes of 16-bit products),
        # about twice the fp32 rate; an assumption, Arm publishes no int8 figure for the A72
        int8_macs_per_cycle=8.0,
        note="no int8 dot product (ARMv8.0); int8 rate assumed 2x fp32",
    ),
    PiCore(
        board="Raspberry Pi 5",
        core="Cortex-A76",
        clock_ghz=2.4,
        cores=4,
        fp32_macs_per_cycle=8.0,  # two 128-bit FMA pipes
        int8_macs_per_cycle=32.0,  # SDOT: 16 int8 MACs per instruction, two pipes
        note="ARMv8.2 with SDOT",
    ),
)
# Sanity anchor for the A72 figures: XNNPACK runs MobileNet v2 (~300M MACs) in ~46 ms fp32 on a
# 4-thread Pi 4, i.e. ~6.5 GMAC/s achieved vs 4 x 4 x 1.8 = 28.8 GMAC/s peak (~23 %).
PI_ANCHOR: Final = "XNNPACK MobileNet v2 on a Pi 4: 46 ms fp32, 17 ms int8 (64-bit OS, 4 threads)"


# -- building the models (host only) -----------------------------------------------------------
def build_floor_models(out_dir: str | Path = FLOOR_MODELS_DIR) -> list[FloorModel]:
    """Write the microbenchmark models and ``index.json`` into ``out_dir`` (needs onnx,
    torch and litert-torch: run on the host, commit the files, hubs only read them)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = [*_build_onnx(out), *_build_tflite(out)]
    index = {"matmul_shape": list(MATMUL_SHAPE), "models": [asdict(m) for m in models]}
    (out / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
    return models


def _build_onnx(out: Path) -> list[FloorModel]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = MATMUL_SHAPE
    rng = np.random.default_rng(SEED)

    def save(graph: Any, name: str) -> None:
        # opset 17 / IR 8: read by every onnxruntime >= 1.14, i.e. any a Pi OS can install
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(out / name))

    w = rng.standard_normal((k, n)).astype(np.float32)  # (K, N)
    save(
        helper.make_graph(
            [helper.make_node("MatMul", ["A", "W"], ["Y"])],
            "matmul_fp32",
            [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
            [numpy_helper.from_array(w, "W")],
        ),
        "matmul_fp32.onnx",
    )
    # u8 activations x s8 weights: the combination ORT's int8 GEMMs (VNNI, SDOT) are built for,
    # and what its QDQ-quantized models run after fusion
    wq = rng.integers(-127, 128, (k, n)).astype(np.int8)
    save(
        helper.make_graph(
            [helper.make_node("MatMulInteger", ["A", "W", "a_zp", "w_zp"], ["Y"])],
            "matmul_int8",
            [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
            [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
            [
                numpy_helper.from_array(wq, "W"),
                numpy_helper.from_array(np.array(128, np.uint8), "a_zp"),
                numpy_helper.from_array(np.array(0, np.int8), "w_zp"),
            ],
        ),
        "matmul_int8.onnx",
    )
    save(
        helper.make_graph(
            [helper.make_node("Add", ["X", "one"], ["Y"])],
            "noop",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, NOOP_LENGTH])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, NOOP_LENGTH])],
            [numpy_helper.from_array(np.ones((1, NOOP_LENGTH), np.float32), "one")],
        ),
        "noop.onnx",
    )
    macs = m * k * n
    return [
        FloorModel("matmul_fp32_onnx", "matmul_fp32.onnx", "onnx", "fp32", "matmul",
                   MATMUL_SHAPE, macs, "MatMul"),
        FloorModel("matmul_int8_onnx", "matmul_int8.onnx", "onnx", "int8", "matmul",
                   MATMUL_SHAPE, macs, "MatMulInteger u8s8"),
        FloorModel("noop_onnx", "noop.onnx", "onnx", "fp32", "noop", (1, NOOP_LENGTH), 0, "Add"),
    ]


def _build_tflite(out: Path) -> list[FloorModel]:
    import os

    import torch

    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    m, k, n = MATMUL_SHAPE
    torch.manual_seed(SEED)
    linear = torch.nn.Linear(k, n, bias=False).eval()  # FULLY_CONNECTED, XNNPACK's GEMM
    sample = torch.randn(m, k)
    with torch.no_grad():
        litert_torch.convert(linear, (sample,)).export(str(out / "matmul_fp32.tflite"))
        # the same PT2E recipe export/tflite_export.py uses: int8 in, int8 weights, int8 out
        graph = torch.export.export(linear, (sample,)).module()
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True)
        )
        prepared = prepare_pt2e(graph, quantizer)
        for _ in range(4):
            prepared(torch.randn(m, k))
        converted = convert_pt2e(prepared, fold_quantize=False)
        litert_torch.convert(
            converted, (sample,), quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)
        ).export(str(out / "matmul_int8.tflite"))

        class _AddOne(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x + 1.0

        litert_torch.convert(_AddOne().eval(), (torch.zeros(1, NOOP_LENGTH),)).export(
            str(out / "noop.tflite")
        )
    macs = m * k * n
    return [
        FloorModel("matmul_fp32_tflite", "matmul_fp32.tflite", "tflite", "fp32", "matmul",
                   MATMUL_SHAPE, macs, "FULLY_CONNECTED (XNNPACK)"),
        FloorModel("matmul_int8_tflite", "matmul_int8.tflite", "tflite", "int8", "matmul",
                   MATMUL_SHAPE, macs, "FULLY_CONNECTED int8 (XNNPACK QS8)"),
        FloorModel("noop_tflite", "noop.tflite", "tflite", "fp32", "noop", (1, NOOP_LENGTH), 0,
                   "ADD"),
    ]


# -- measuring -------------------------------------------------------------------------------
def load_floor_models(directory: str | Path = FLOOR_MODELS_DIR) -> list[FloorModel]:
    """The models listed in ``directory/index.json`` (FileNotFoundError if not built)."""
    d = Path(directory)
    index = json.loads((d / INDEX_NAME).read_text())
    out = []
    for e in index["models"]:
        e = dict(e)
        e["shape"] = tuple(e["shape"])
        out.append(FloorModel(**e))
    return out


def _runner(model: FloorModel, path: Path, threads: int) -> Callable[[], object]:
    """A zero-argument callable that runs one inference, set up like the hub's engines."""
    rng = np.random.default_rng(SEED)
    if model.engine == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()  # the same options as edge/engines/onnx.py
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        shape = [int(v) for v in inp.shape]
        if "uint8" in inp.type:
            x: np.ndarray = rng.integers(0, 256, shape).astype(np.uint8)
        else:
            x = rng.standard_normal(shape).astype(np.float32)
        feed = {inp.name: x}
        return lambda: session.run(None, feed)
    if model.engine == "tflite":
        from edge.engines.tflite import load_interpreter_class

        interp = load_interpreter_class()(model_path=str(path), num_threads=threads)
        interp.allocate_tensors()
        d = interp.get_input_details()[0]
        dtype = np.dtype(d["dtype"])
        if dtype.kind == "f":
            x = rng.standard_normal(d["shape"]).astype(dtype)
        else:
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max + 1, d["shape"]).astype(dtype)
        interp.set_tensor(d["index"], x)
        return interp.invoke  # the input stays set; each call is one full inference
    raise ValueError(f"unknown engine {model.engine!r}")


def measure_floor_model(
    model: FloorModel,
    threads: int,
    *,
    directory: str | Path = FLOOR_MODELS_DIR,
    min_seconds: float = MIN_SECONDS,
    min_runs: int = MIN_RUNS,
    warmup_s: float = WARMUP_S,
) -> FloorResult:
    """Time ``model`` at ``threads`` for at least ``min_seconds`` and ``min_runs`` calls."""
    run = _runner(model, Path(directory) / model.file, threads)
    t_end = time.perf_counter() + warmup_s
    run()
    while time.perf_counter() < t_end:
        run()
    times: list[float] = []
    t_stop = time.perf_counter() + min_seconds
    while len(times) < min_runs or time.perf_counter() < t_stop:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    a = np.asarray(times)
    median, best = float(np.median(a)), float(a.min())
    rate = (lambda s: model.macs / s / 1e9) if model.macs else (lambda s: None)
    return FloorResult(
        model=model.name,
        engine=model.engine,
        precision=model.precision,
        kind=model.kind,
        threads=threads,
        runs=len(times),
        median_ms=median * 1e3,
        best_ms=best * 1e3,
        gmacs_median=rate(median),
        gmacs_best=rate(best),
    )


def measure_floor(
    threads: Iterable[int],
    *,
    engines: Iterable[str] = ("onnx", "tflite"),
    directory: str | Path = FLOOR_MODELS_DIR,
    min_seconds: float = MIN_SECONDS,
    min_runs: int = MIN_RUNS,
    progress: Callable[[str], None] | None = None,
) -> list[FloorResult]:
    """Every floor model of the chosen engines at every thread count.

    An engine whose runtime is not installed is skipped (the caller sees which from the
    result list); any other failure propagates.
    """
    wanted = set(engines)
    results = []
    for model in load_floor_models(directory):
        if model.engine not in wanted or not _runtime_available(model.engine):
            continue
        for t in threads:
            if progress is not None:
                progress(f"floor {model.name} x{t}")
            results.append(
                measure_floor_model(model, t, directory=directory, min_seconds=min_seconds,
                                    min_runs=min_runs)
            )
    return results


def _runtime_available(engine: str) -> bool:
    import importlib.util

    if engine == "onnx":
        return importlib.util.find_spec("onnxruntime") is not None
    return any(
        importlib.util.find_spec(m) is not None for m in ("ai_edge_litert", "tflite_runtime")
    )


# -- using it ---------------------------------------------------------------------------------
def peak_by_precision(results: Iterable[FloorResult]) -> dict[str, dict[int, dict[str, Any]]]:
    """``{precision: {threads: {"gmacs": best sustained rate, "engine": who reached it}}}``.

    The CPU's peak is the best any engine sustains (median-based): the floor is a property
    of the hardware, and each format is held against the best the hardware was shown to do.
    """
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in results:
        if r.kind != "matmul" or r.gmacs_median is None:
            continue
        slot = out.setdefault(r.precision, {})
        cur = slot.get(r.threads)
        if cur is None or r.gmacs_median > cur["gmacs"]:
            slot[r.threads] = {"gmacs": r.gmacs_median, "engine": r.engine}
    return out


def floor_ms(macs: int | float, gmacs: float) -> float:
    """Milliseconds ``macs`` multiply-accumulates take at ``gmacs`` GMAC/s."""
    if gmacs <= 0:
        raise ValueError("peak rate must be positive")
    return float(macs) / (gmacs * 1e9) * 1e3


def pi_estimates(macs: int | float) -> list[dict[str, Any]]:
    """Floor latencies of a ``macs``-MAC model on a Pi 4 and a Pi 5, fp32 and int8, on one
    core and on all four (from :data:`PI_CORES`; peak = MACs/cycle x clock)."""
    rows = []
    for core in PI_CORES:
        for precision, per_cycle in (("fp32", core.fp32_macs_per_cycle),
                                     ("int8", core.int8_macs_per_cycle)):
            gmacs_core = per_cycle * core.clock_ghz
            rows.append({
                "board": core.board,
                "core": core.core,
                "clock_ghz": core.clock_ghz,
                "precision": precision,
                "macs_per_cycle": per_cycle,
                "peak_gmacs_1core": gmacs_core,
                "peak_gmacs_all": gmacs_core * core.cores,
                "floor_ms_1core": floor_ms(macs, gmacs_core),
                "floor_ms_all": floor_ms(macs, gmacs_core * core.cores),
                "note": core.note,
            })
    return rows
