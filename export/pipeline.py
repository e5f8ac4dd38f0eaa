"""``export_run``: a training RUN -> a verified, measured model bundle.

Steps: rebuild the student; give it a second output, the embedding its final Linear reads
(:mod:`export.embedding`), and write that Linear as ``head.npz``; export ONNX fp32 and int8
(ORT static QDQ), TFLite fp32 and int8 (litert-torch PT2E); write a first manifest; load the
bundle through the hub's own loader and engines and measure every format on the held-out
windows against the PyTorch student, and check that ``head.npz`` applied to each file's
embedding gives its logits; write the quantization report; rewrite the manifest with each
file's accuracy verdict and the recommended format; sign and archive.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from core.contract import InputContract
from edge.bundle import SCHEMA_VERSION, load_bundle
from edge.engines import open_file
from export.bundle_writer import (
    FILE_NAMES,
    INTENDED_USE,
    file_entry,
    git_commit,
    write_archive,
    write_manifest,
)
from export.embedding import (
    EMBEDDING_NAME,
    check_head_parity,
    head_arrays,
    head_parity,
    with_embedding,
    write_head,
)
from export.errors import ExportError
from export.onnx_export import (
    OPSET,
    OUTPUT_NAME,
    export_onnx_fp32,
    onnx_io,
    onnx_outputs,
    quiet_conversion,
)
from export.quantize import CALIB_METHODS, agreement_and_kl, quantize_onnx_int8
from export.run import RunData, load_run
from export.tflite_export import (
    TFLITE_QUANTIZER,
    export_tflite_fp32,
    export_tflite_int8,
    tflite_io,
    tflite_op_summary,
    tflite_outputs,
)

__all__ = [
    "ALL_FORMATS",
    "FP32_MAX_ABS_DIFF",
    "INT8_MAX_F1_DROP",
    "INT8_MIN_AGREEMENT",
    "TFLITE_INT8_MAX_BYTES",
    "ExportOptions",
    "ExportResult",
    "export_run",
]

_LOG = logging.getLogger(__name__)

ALL_FORMATS: Final = ("onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8")
AUTO: Final = "auto"  # calib_method: measure every ORT calibration method, keep the best
FP32_MAX_ABS_DIFF: Final = 1e-4  # fp32 re-implementations differ only by float rounding
# int8 is shipped only when it decides as fp32 does: top-1 agreement on held-out windows...
INT8_MIN_AGREEMENT: Final = 0.98
INT8_MAX_F1_DROP: Final = 0.01  # ...and macro-F1 within this of fp32
TFLITE_INT8_MAX_BYTES: Final = 150 * 1024  # fits a hub's (and an MCU's) flash budget
LATENCY_WARMUP: Final = 10  # first runs allocate and pack weights
LATENCY_RUNS: Final = 200  # median of 200 single-window runs: stable to ~2% on a busy host
DEFAULT_CALIB_SIZE: Final = 512  # MinMax/Histogram ranges stop moving well before 500 windows
DEFAULT_SEED: Final = 0


@dataclass
class ExportOptions:
    """What ``edge-export`` was asked to do (CLI flags map one to one)."""

    formats: Sequence[str] = ALL_FORMATS  # any subset of ALL_FORMATS
    calib_size: int = DEFAULT_CALIB_SIZE  # training windows used to calibrate int8 ranges
    # ORT calibration: "auto" measures minmax, entropy and percentile with the chosen
    # exclusions and keeps the best calibration-set agreement (training windows only; ties
    # within one window: lowest KL, then the listed order); or one method by name
    calib_method: str = "auto"
    exclude_ops: Sequence[str] | None = None  # ONNX op types kept float; None = measure
    sign_key: Path | None = None  # Ed25519 PEM private key -> manifest.sig
    archive: bool = False  # also write BUNDLE.tar beside the directory
    # stable name of the model family; None: by what the model reads (model_id_for)
    model_id: str | None = None
    model_version: str | None = None  # None: date + short hash of the fp32 weights
    seed: int = DEFAULT_SEED  # picks the calibration subset
    latency_runs: int = LATENCY_RUNS  # single-window runs per format in the report
    plots: bool = True  # PNG plots next to the report
    compare_methods: bool = True  # re-quantize with every calibration method for the report


def model_id_for(contract: InputContract) -> str:
    """The default model id: a hub holds one model per kind of wearable, and its records
    name the model, so the heart-rate (RR) model's family has its own name."""
    return "wearable-edge-hr-student" if contract.has_beats else "wearable-edge-student"


@dataclass
class ExportResult:
    bundle_dir: Path
    archive: Path | None
    manifest: dict[str, Any]
    report: dict[str, Any]
    key_id: str | None = None
    files: dict[str, Path] = field(default_factory=dict)


Step = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def export_run(
    run: str | Path | RunData,
    out: str | Path,
    options: ExportOptions | None = None,
    *,
    step: Step = _noop,
) -> ExportResult:
    """Export ``run`` into the bundle directory ``out`` (created; must be empty if it exists).

    ``step(name)`` is called before each long step (the CLI drives a progress bar with it).
    """
    opts = options or ExportOptions()
    unknown = [f for f in opts.formats if f not in ALL_FORMATS]
    if unknown or not opts.formats:
        raise ExportError(f"unknown formats {unknown}; choose from {ALL_FORMATS}", stage="options")
    if opts.calib_method not in (AUTO, *CALIB_METHODS):
        raise ExportError(f"calibration method must be one of {(AUTO, *CALIB_METHODS)}",
                          stage="options")
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        raise ExportError("output directory is not empty", path=str(root), stage="options")
    root.mkdir(parents=True, exist_ok=True)

    step("load run")
    data = run if isinstance(run, RunData) else load_run(run)
    contract = data.contract
    L = contract.input_length
    rng = np.random.default_rng(opts.seed)
    n_cal = min(opts.calib_size, len(data.calib_x))
    calib_x = data.calib_x[np.sort(rng.choice(len(data.calib_x), n_cal, replace=False))]
    formats = [f for f in ALL_FORMATS if f in opts.formats]

    step("reference (PyTorch fp32)")
    ref = _torch_logits(data.model, data.heldout_x)
    params, macs = _params_and_macs(data.model, L)
    # every file also returns the embedding when the model's forward ends in its head Linear
    two = with_embedding(data.model, data.heldout_x[:4])
    net = two if two is not None else data.model
    names = (OUTPUT_NAME, EMBEDDING_NAME) if two is not None else (OUTPUT_NAME,)
    if two is None:
        _LOG.warning("the model has no final `head` Linear: the bundle has no embedding and "
                     "hubs cannot personalize it")

    io: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    quant: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edge-export-") as tmp:
        fp32_onnx = root / FILE_NAMES["onnx_fp32"] if "onnx_fp32" in formats else Path(tmp) / "fp32.onnx"
        if "onnx_fp32" in formats or "onnx_int8" in formats:
            step("ONNX fp32")
            export_onnx_fp32(net, L, fp32_onnx, names)
            if "onnx_fp32" in formats:
                io["onnx_fp32"] = onnx_io(fp32_onnx)
        if "onnx_int8" in formats:
            step("ONNX int8 (measuring op exclusions)")
            path = root / FILE_NAMES["onnx_int8"]
            auto = opts.calib_method == AUTO
            with quiet_conversion():
                res = quantize_onnx_int8(
                    fp32_onnx, path, calib_x, data.heldout_x,
                    method=CALIB_METHODS[0] if auto else opts.calib_method,
                    exclude_ops=opts.exclude_ops,
                )
            methods = []
            if opts.compare_methods or auto:
                step("ONNX int8 (comparing calibration methods)")
                methods = _compare_methods(fp32_onnx, calib_x, data.heldout_x, res.excluded, Path(tmp))
            if auto:
                res.method = best_method(methods, len(calib_x))
                path.write_bytes((Path(tmp) / f"m_{res.method}.onnx").read_bytes())
            io["onnx_int8"] = onnx_io(path)
            quant["onnx_int8"] = {
                **res.to_dict(),
                "method_chosen_by": "measurement" if auto else "user",
                "calibration_data": "training-subject windows (RUN/windows/calib.npz)",
                "method_comparison": methods,
                "opset": OPSET,
            }
        if "tflite_fp32" in formats:
            step("TFLite fp32")
            export_tflite_fp32(net, L, root / FILE_NAMES["tflite_fp32"])
            io["tflite_fp32"] = tflite_io(root / FILE_NAMES["tflite_fp32"])
        if "tflite_int8" in formats:
            step("TFLite int8 (PT2E)")
            path = root / FILE_NAMES["tflite_int8"]
            export_tflite_int8(net, L, calib_x, path)
            io["tflite_int8"] = tflite_io(path)
            quant["tflite_int8"] = {
                **TFLITE_QUANTIZER,
                "calib_size": n_cal,
                "calibration_data": "training-subject windows (RUN/windows/calib.npz)",
                "io": {"input": io["tflite_int8"][0], "output": io["tflite_int8"][1]},
                "ops": tflite_op_summary(path),
            }

    embedding: dict[str, dict[str, Any] | None] = {k: None for k in formats}
    if two is not None:
        for k in formats:
            outs = (onnx_outputs if k.startswith("onnx") else tflite_outputs)(root / FILE_NAMES[k])
            if len(outs) != 2 or outs[1]["shape"][-1] != two.head.in_features:
                raise ExportError(f"expected outputs (logits, embedding), got {outs}",
                                  path=str(root / FILE_NAMES[k]), stage="embedding")
            embedding[k] = outs[1]
    ckpt = data.checkpoint
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    fp32_hash = _weights_hash(data.model)
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model_id": opts.model_id or model_id_for(contract),
        "model_version": opts.model_version or f"{created[:10]}-{fp32_hash[:8]}",
        "created": created,
        "git_commit": ckpt.get("git_commit") or git_commit(),
        "export_git_commit": git_commit(),
        "dataset": {
            **(ckpt.get("dataset") or {}),
            "train_subjects": list(ckpt.get("train_subjects") or []),
            "holdout_subjects": list(ckpt.get("holdout_subjects") or []),
        },
        "intended_use": INTENDED_USE,
        "class_names": list(contract.class_names),
        "contract": contract.to_dict(),
        "calibration_required": contract.normalization.needs_calibration,
        "files": {
            k: file_entry(root, k, k.split("_")[0], k.split("_")[1], io[k], embedding[k])
            for k in formats
        },
        "quantization": quant,
        "macs": macs,
        "params": params,
        "metrics": {"training": ckpt.get("metrics") or {}, "run": data.metrics.get("models", {})},
        "variant": ckpt.get("variant"),  # the student variant (e.g. "kd_ca"): distilled or not
        "recommended": None,
    }
    head = head_arrays(data.model) if two is not None else None
    if head is not None:
        manifest["outputs"] = {"logits": contract.n_classes, EMBEDDING_NAME: int(head[0].shape[0])}
        manifest["head"] = write_head(root, *head)
    write_manifest(root, manifest)

    step("measure every format on held-out windows")
    evaluation = _evaluate(root, data, ref, opts.latency_runs, head)
    if head is not None:
        parity = {k: evaluation[k]["head_parity"] for k in formats}
        check_head_parity(parity, {k: k.split("_")[1] for k in formats})
        for k in formats:
            manifest["files"][k]["head_parity"] = parity[k]

    step("quantization report")
    from export.report import build_report, write_report

    report = build_report(
        manifest=manifest,
        evaluation=evaluation,
        heldout_y=data.heldout_y,
        class_names=contract.class_names,
        thresholds={
            "fp32_max_abs_diff": FP32_MAX_ABS_DIFF,
            "int8_min_agreement": INT8_MIN_AGREEMENT,
            "int8_max_f1_drop": INT8_MAX_F1_DROP,
            "tflite_int8_max_bytes": TFLITE_INT8_MAX_BYTES,
        },
    )
    for key in formats:
        manifest["files"][key]["accuracy"] = report["formats"][key]["verdict"]
    manifest["recommended"] = report["recommended"]
    # the hub warns at start about a class its model never predicts on held-out windows
    manifest["dead_classes"] = list(report["dead_classes"])
    manifest["metrics"]["heldout_export"] = {
        k: {m: report["formats"][k][m] for m in ("accuracy", "macro_f1", "auc")}
        for k in ["torch_fp32", *formats]
    }
    write_report(root, report, plots=opts.plots)
    write_manifest(root, manifest)

    kid = None
    if opts.sign_key is not None:
        step("sign")
        from export.signing import sign_bundle

        kid = sign_bundle(root, opts.sign_key)
    # the final check is the hub's: the bundle as written must load and verify
    with load_bundle(root) as final:
        if set(final.files) != set(formats):
            raise ExportError("bundle does not list every exported file", path=str(root), stage="verify")
    archive = None
    if opts.archive:
        step("archive")
        archive = write_archive(root, root.with_name(root.name + ".tar"))
    return ExportResult(root, archive, manifest, report, kid, {k: root / FILE_NAMES[k] for k in formats})


def _torch_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy().astype(np.float32)  # (M, K)


def _params_and_macs(model: torch.nn.Module, input_length: int) -> tuple[int, int]:
    try:
        from train.macs import count_macs, count_params
    except ImportError:  # RUN from an older tree: count the same way, inline
        from torch.utils.flop_counter import FlopCounterMode

        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model.eval()(torch.zeros(1, input_length))
        return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2
    return count_params(model), count_macs(model, input_length)


def _weights_hash(model: torch.nn.Module) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def best_method(methods: Sequence[Mapping[str, Any]], n_calib: int) -> str:
    """The calibration method with the best calibration-set agreement; within one window of
    it, the lowest calibration KL, then the earliest in ``methods`` (held-out figures are
    evidence for the report, never a criterion)."""
    if not methods:
        raise ExportError("no calibration method was measured", stage="onnx_int8")
    top = max(m["calib_agreement"] for m in methods)
    tol = 1.0 / max(1, n_calib)
    eligible = [(m["calib_kl"], i, m["method"]) for i, m in enumerate(methods)
                if m["calib_agreement"] >= top - tol]
    return str(min(eligible)[2])


def _compare_methods(
    fp32: Path, calib_x: np.ndarray, heldout_x: np.ndarray, excluded: list[str], tmp: Path
) -> list[dict[str, Any]]:
    """Every calibration method with the chosen exclusions: evidence for the default."""
    out = []
    for method in CALIB_METHODS:
        t0 = time.perf_counter()
        with quiet_conversion():
            res = quantize_onnx_int8(fp32, tmp / f"m_{method}.onnx", calib_x, heldout_x,
                                     method=method, exclude_ops=excluded)
        (trial,) = res.trials
        out.append({
            "method": method,
            "calib_agreement": trial.calib_agreement,
            "calib_kl": trial.calib_kl,
            "heldout_agreement": trial.heldout_agreement,
            "seconds": round(time.perf_counter() - t0, 2),
        })
    return out


def _evaluate(root: Path, data: RunData, ref: np.ndarray, runs: int,
              head: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """Logits and latency of torch and of every bundle file, run by the hub's engines; with
    ``head`` (W, b), how well it reproduces each file's logits from its embedding."""
    x_one = data.heldout_x[:1]
    results: dict[str, Any] = {"torch_fp32": {"logits": ref, "size": None, "latency_ms": None}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            results["torch_fp32"]["latency_ms"] = _median_ms(
                lambda: data.model(torch.from_numpy(x_one)), runs
            )
    finally:
        torch.set_num_threads(threads)
    with load_bundle(root) as bundle:
        for key, entry in bundle.files.items():
            with open_file(bundle, key, threads=1) as engine:
                logits, emb = engine.run_outputs(data.heldout_x)
                latency = _median_ms(lambda e=engine: e.run(x_one), runs)
            agree, kl = agreement_and_kl(ref, logits)
            results[key] = {
                "logits": logits,
                "size": entry.size,
                "latency_ms": latency,
                "agreement": agree,
                "kl": kl,
                "max_abs_diff": float(np.abs(logits - ref).max()),
                "backend": entry.format,
                "precision": entry.precision,
            }
            if head is not None and emb is not None:
                results[key]["head_parity"] = head_parity(logits, emb, *head)
    return results


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    for _ in range(LATENCY_WARMUP):
        fn()
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3

