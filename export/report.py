"""The quantization accuracy report: ``BUNDLE/quant_report.{json,md}`` and ``BUNDLE/plots``.

Written for people deciding whether int8 is safe to deploy: every number is measured on
held-out windows (people the student never saw) against the PyTorch fp32 student, and
the verdict says in plain words which file a hub should run and why.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from export.quantize import STD_POOL
from train.metrics import evaluate, json_safe

__all__ = ["LABELS", "build_report", "render_markdown", "write_report"]

LABELS: Final = {
    "torch_fp32": "PyTorch fp32 (reference)",
    "onnx_fp32": "ONNX Runtime fp32",
    "onnx_int8": "ONNX Runtime int8",
    "tflite_fp32": "TFLite fp32",
    "tflite_int8": "TFLite int8",
}
LATENCY_TIE: Final = 0.10  # formats within 10% latency are "as fast"; the smaller file wins
# int8 "pays" when it takes at most this share of its runtime's fp32 time per window
INT8_PAYS: Final = 0.7
# Why a runtime's int8 does not pay on a CPU without int8 dot-product instructions, per runtime
# (the measurements behind each: export/RESULTS.md).
_INT8_SLOW_WHY: Final = {
    "onnx": (
        "Per window the student spends most of its fp32 time in element-wise and shape ops "
        "(LayerNorm, GELU, Softmax, the std pooling, Reshape/Transpose), which int8 does not "
        "make faster: quantized Add/Mul cost more than float ones, and every boundary "
        "between an int8 op and a float one is a QuantizeLinear or DequantizeLinear node. "
        "Conv, Gemm and MatMul, the only ops int8 speeds up, are a minority of the time, so "
        "even free matrix products could not reach the goal. On a CPU with int8 dot products "
        "(AVX-512 VNNI, ARMv8.2 dotprod: Pi 5) the products get faster still, but the "
        "element-wise share stays."
    ),
    "tflite": (
        "LiteRT's XNNPACK delegate runs int8 only for the ops the quantizer annotated; every "
        "float op between them ends an int8 partition, so the graph runs as several "
        "delegate partitions with (de)quantization at each edge (the op lists above). One "
        "int8 partition needs every op of the graph quantized: the std pooling as int8 "
        "(today kept float for accuracy), GELU/LayerNorm/Softmax annotated."
    ),
}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def build_report(
    *,
    manifest: Mapping[str, Any],
    evaluation: Mapping[str, Mapping[str, Any]],
    heldout_y: np.ndarray,
    class_names: Sequence[str],
    thresholds: Mapping[str, float],
) -> dict[str, Any]:
    """Metrics, parity verdicts, int8 checks and the recommendation, as plain JSON values."""
    ref = evaluation["torch_fp32"]
    ref_metrics = evaluate(heldout_y, _softmax(ref["logits"]), class_names)
    formats: dict[str, Any] = {}
    for key, ev in evaluation.items():
        m = ref_metrics if key == "torch_fp32" else evaluate(heldout_y, _softmax(ev["logits"]), class_names)
        row: dict[str, Any] = {
            "label": LABELS.get(key, key),
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "auc": m["auc"],
            "per_class_f1": {c: v["f1"] for c, v in m["per_class"].items()},
            "confusion": m["confusion"],
            "agreement_vs_fp32": ev.get("agreement", 1.0),
            "kl_vs_fp32": ev.get("kl", 0.0),
            "max_abs_logit_diff": ev.get("max_abs_diff", 0.0),
            "size_bytes": ev["size"],
            "macs": manifest.get("macs"),
            "latency_ms": ev["latency_ms"],
        }
        if key != "torch_fp32":
            row["verdict"] = _verdict(key, row, ref_metrics["macro_f1"], thresholds)
        formats[key] = row

    deployable = [k for k in formats if k != "torch_fp32"]
    acceptable = [k for k in deployable if formats[k]["verdict"]["acceptable"]]
    # a class the model never gets right on held-out people is a silent failure in a home:
    # no format is recommended until the model is retrained
    dead = [c for c, v in ref_metrics["per_class"].items() if v["support"] > 0 and v["f1"] == 0.0]
    recommended = None if dead else _recommend(formats, acceptable)
    checks = _int8_checks(formats, manifest, thresholds, ref_metrics["macro_f1"])
    report = {
        "model_id": manifest["model_id"],
        "model_version": manifest["model_version"],
        "created": manifest["created"],
        "heldout": {
            "windows": len(heldout_y),
            "subjects": manifest.get("dataset", {}).get("holdout_subjects", []),
            "class_counts": {c: int((heldout_y == i).sum()) for i, c in enumerate(class_names)},
        },
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "threads": 1,
        },
        "thresholds": dict(thresholds),
        "formats": formats,
        "recommended": recommended,
        "dead_classes": dead,
        "checks": checks,
        "quantization": manifest.get("quantization", {}),
        "quantization_cause": _quantization_cause(manifest.get("quantization", {})),
        "int8_speed": _int8_speed(formats),
        "verdict": (
            f"The model never predicts {dead} correctly on the held-out windows (per-class "
            "F1 0): no format is recommended; retrain before deploying."
            if dead
            else _verdict_text(formats, recommended, acceptable, checks)
        ),
    }
    return json_safe(report)


def _verdict(key: str, row: Mapping[str, Any], ref_f1: float, th: Mapping[str, float]) -> dict[str, Any]:
    drop = ref_f1 - row["macro_f1"]
    if key.endswith("fp32"):
        ok = row["max_abs_logit_diff"] <= th["fp32_max_abs_diff"]
        criterion = f"max |logit - PyTorch| <= {th['fp32_max_abs_diff']:g}"
    else:
        ok = row["agreement_vs_fp32"] >= th["int8_min_agreement"] and drop <= th["int8_max_f1_drop"]
        criterion = (
            f"top-1 agreement >= {th['int8_min_agreement']:.0%} and macro-F1 drop <= "
            f"{th['int8_max_f1_drop']:g}"
        )
    return {
        "acceptable": bool(ok),
        "criterion": criterion,
        "top1_agreement": row["agreement_vs_fp32"],
        "max_abs_logit_diff": row["max_abs_logit_diff"],
        "macro_f1": row["macro_f1"],
        "macro_f1_drop": drop,
    }


def _recommend(formats: Mapping[str, Any], acceptable: Sequence[str]) -> str | None:
    if not acceptable:
        return None
    fastest = min(formats[k]["latency_ms"] for k in acceptable)
    as_fast = [k for k in acceptable if formats[k]["latency_ms"] <= fastest * (1 + LATENCY_TIE)]
    return min(as_fast, key=lambda k: (formats[k]["size_bytes"], formats[k]["latency_ms"]))


def _int8_checks(
    formats: Mapping[str, Any], manifest: Mapping[str, Any], th: Mapping[str, float], ref_f1: float
) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for key in ("onnx_int8", "tflite_int8"):
        if key not in formats:
            continue
        drop = ref_f1 - formats[key]["macro_f1"]
        ok = drop <= th["int8_max_f1_drop"]
        item: dict[str, Any] = {"macro_f1_drop": drop, "within_limit": ok}
        if not ok:
            item["cause"] = _cause(key, formats, manifest)
        checks[key] = item
    if "tflite_int8" in formats:
        size = formats["tflite_int8"]["size_bytes"]
        checks["tflite_int8_size"] = {
            "bytes": size,
            "limit": int(th["tflite_int8_max_bytes"]),
            "within_limit": size <= th["tflite_int8_max_bytes"],
        }
    return checks


def _cause(key: str, formats: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """Name what costs accuracy: the class that lost most F1, and what was kept in float."""
    ref = formats["torch_fp32"]["per_class_f1"]
    mine = formats[key]["per_class_f1"]
    worst = max(ref, key=lambda c: ref[c] - mine[c])
    q = manifest.get("quantization", {}).get(key, {})
    if key == "onnx_int8":
        tried = ", ".join("+".join(t["excluded"]) or "none" for t in q.get("trials", []))
        kept = "+".join(q.get("excluded", [])) or "nothing"
        return (
            f"class '{worst}' loses most F1 ({ref[worst]:.3f} -> {mine[worst]:.3f}); ops kept in "
            f"float: {kept} (tried: {tried}). Try --calib-method percentile or entropy, a larger "
            "--calib-size, or keep more op types in float with --exclude-ops."
        )
    float_ops = ", ".join(sorted(q.get("ops", {}).get("float_ops", {}))) or "none"
    return (
        f"class '{worst}' loses most F1 ({ref[worst]:.3f} -> {mine[worst]:.3f}); ops already in "
        f"float: {float_ops}. The int8 input/output ranges (manifest) clip large values: check "
        "the input scale against the contract's clip."
    )


def _int8_speed(formats: Mapping[str, Any]) -> dict[str, Any]:
    """Per runtime: int8 latency / fp32 latency, whether int8 pays (<= INT8_PAYS), and why not."""
    out: dict[str, Any] = {}
    for rt in ("onnx", "tflite"):
        f32, i8 = formats.get(f"{rt}_fp32"), formats.get(f"{rt}_int8")
        if not f32 or not i8 or not f32.get("latency_ms") or i8.get("latency_ms") is None:
            continue
        ratio = i8["latency_ms"] / f32["latency_ms"]
        row: dict[str, Any] = {"fp32_ms": f32["latency_ms"], "int8_ms": i8["latency_ms"],
                               "ratio": ratio, "pays": ratio <= INT8_PAYS}
        if not row["pays"]:
            row["why"] = _INT8_SLOW_WHY[rt]
        out[rt] = row
    return out


def _quantization_cause(quant: Mapping[str, Any]) -> str | None:
    """What int8 loses without the measured exclusions, and why, from the ONNX trials
    (every candidate was measured; the same cause holds for TFLite, which keeps the same
    nodes in float)."""
    trials = {"+".join(t["excluded"]): t for t in quant.get("onnx_int8", {}).get("trials", [])}
    std = next((t for k, t in trials.items() if k.split("+") == [STD_POOL]), None)
    none = trials.get("")
    if std is None or none is None:
        return None
    return (
        "The conv stems pool each patch by mean and standard deviation, sqrt(mean((h - "
        "mean(h))^2) + eps). Quantized, the squared deviations and their mean (the variance) "
        "get one int8 scale per tensor, set by the largest variances; the small variances of "
        "slow channels (EDA, skin temperature) round to zero, and sqrt, whose slope is "
        "infinite at zero, turns that into large errors in the std features. Measured: "
        f"everything int8 agrees with fp32 on {none['heldout_agreement']:.2%} of held-out "
        f"windows; keeping only that chain (square -> mean -> +eps -> sqrt, {STD_POOL}) in "
        f"float gives {std['heldout_agreement']:.2%}. Keeping the input float (first Conv), "
        "Sqrt alone, the stem projections, or LayerNorm/Softmax in float changed nothing. "
        "Both int8 formats keep that chain in float (ONNX: nodes_to_exclude; TFLite: the "
        "PT2E quantizer leaves those nodes unannotated)."
    )


def _verdict_text(
    formats: Mapping[str, Any], recommended: str | None, acceptable: Sequence[str], checks: Mapping[str, Any]
) -> str:
    if recommended is None:
        return (
            "No exported format met its accuracy criterion: do not deploy this bundle. "
            "See the parity columns below for which check failed."
        )
    r = formats[recommended]
    ref = formats["torch_fp32"]
    text = (
        f"Run **{recommended}** ({LABELS.get(recommended, recommended)}). It is the fastest format "
        f"that passed its accuracy check on held-out people: {r['latency_ms']:.3f} ms per window "
        f"on this machine with one thread, {r['size_bytes'] / 1024:.0f} KB, macro-F1 "
        f"{r['macro_f1']:.3f} vs {ref['macro_f1']:.3f} for the PyTorch model, and it agrees "
        f"with the PyTorch model's decision on {r['agreement_vs_fp32']:.1%} of windows."
    )
    failed = [k for k in formats if k != "torch_fp32" and k not in acceptable]
    if failed:
        text += f" Not acceptable: {', '.join(failed)} (see the table)."
    for key in ("onnx_int8", "tflite_int8"):
        c = checks.get(key)
        if c and not c["within_limit"]:
            text += f" {key} loses {c['macro_f1_drop']:.3f} macro-F1: {c['cause']}"
    text += (
        " Speeds differ on a Raspberry Pi (int8 gains most on CPUs with dot-product "
        "instructions), so the daemon's `--backend auto` re-measures at start and picks the "
        "fastest acceptable format on the hub itself."
    )
    return text


# -- writing --------------------------------------------------------------------------------
def write_report(root: Path, report: Mapping[str, Any], *, plots: bool = True) -> list[Path]:
    written = [root / "quant_report.json", root / "quant_report.md"]
    written[0].write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    plot_files: list[str] = []
    if plots:
        plot_files = _plots(root / "plots", report)
        written += [root / p for p in plot_files]
    written[1].write_text(render_markdown(report, plot_files))
    return written


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def render_markdown(report: Mapping[str, Any], plot_files: Sequence[str] = ()) -> str:
    f = report["formats"]
    th = report["thresholds"]
    lines = [
        f"# Quantization report: {report['model_id']} {report['model_version']}",
        "",
        "## Verdict",
        "",
        report["verdict"],
        "",
        "## Every format on held-out windows",
        "",
        f"{report['heldout']['windows']} windows of held-out subject(s) "
        f"{', '.join(report['heldout']['subjects']) or '?'} (never seen in training or "
        f"calibration); class counts {report['heldout']['class_counts']}. Agreement, KL and "
        "max |Δlogit| are against the PyTorch fp32 student. Latency: median of single-window "
        "runs, 1 thread, this machine.",
        "",
        "| Format | Accuracy | Macro-F1 | AUC | Top-1 agreement | Mean KL | Max abs Δlogit "
        "| Size | MACs | Latency (ms) | Acceptable |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in f.items():
        size = "—" if r["size_bytes"] is None else f"{r['size_bytes'] / 1024:.1f} KB"
        ok = "reference" if key == "torch_fp32" else ("yes" if r["verdict"]["acceptable"] else "**NO**")
        lines.append(
            f"| {r['label']} | {_fmt(r['accuracy'])} | {_fmt(r['macro_f1'])} | {_fmt(r['auc'])} "
            f"| {r['agreement_vs_fp32']:.2%} | {r['kl_vs_fp32']:.2e} | {r['max_abs_logit_diff']:.2e} "
            f"| {size} | {r['macs']:,} | {_fmt(r['latency_ms'])} | {ok} |"
        )
    classes = list(next(iter(f.values()))["per_class_f1"])
    lines += [
        "",
        f"Criteria: fp32 formats max |Δlogit| ≤ {th['fp32_max_abs_diff']:g}; int8 formats top-1 "
        f"agreement ≥ {th['int8_min_agreement']:.0%} and macro-F1 within {th['int8_max_f1_drop']:g} "
        "of fp32.",
        "",
        "## Per-class F1",
        "",
        "| Format | " + " | ".join(classes) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for r in f.values():
        lines.append(f"| {r['label']} | " + " | ".join(_fmt(r["per_class_f1"][c]) for c in classes) + " |")

    checks = report["checks"]
    lines += ["", "## Does int8 hold?", ""]
    for key in ("onnx_int8", "tflite_int8"):
        if key in checks:
            c = checks[key]
            state = "yes" if c["within_limit"] else "**no**"
            lines.append(f"- {LABELS[key]}: macro-F1 drop {c['macro_f1_drop']:+.4f} "
                         f"(limit {th['int8_max_f1_drop']:g}): {state}.")
            if "cause" in c:
                lines.append(f"  Cause: {c['cause']}")
    if "tflite_int8_size" in checks:
        c = checks["tflite_int8_size"]
        lines.append(f"- TFLite int8 file {c['bytes'] / 1024:.1f} KB (limit {c['limit'] / 1024:.0f} KB): "
                     f"{'yes' if c['within_limit'] else '**no**'}.")

    speed = report.get("int8_speed") or {}
    if speed:
        lines += ["", "## Does int8 pay?", "",
                  f"int8 pays when its latency is at most {INT8_PAYS:g}× its runtime's fp32 "
                  "latency (this machine, one thread).", ""]
        for rt, r in speed.items():
            name = "ONNX Runtime" if rt == "onnx" else "LiteRT"
            lines.append(f"- {name}: int8 {r['int8_ms']:.3f} ms vs fp32 {r['fp32_ms']:.3f} ms = "
                         f"{r['ratio']:.2f}×: {'yes' if r['pays'] else '**no**'}."
                         + (f" Why: {r['why']}" if "why" in r else ""))
    q = report["quantization"]
    if report.get("quantization_cause"):
        lines += ["", "## What int8 costs here and why", "", report["quantization_cause"]]
    if "onnx_int8" in q:
        o = q["onnx_int8"]
        kept = ", ".join(o["excluded"]) or "none (every quantizable op is int8)"
        lines += [
            "",
            "## ONNX int8: how it was made",
            "",
            f"ONNX Runtime static quantization, {o['quant_format']}, per-channel "
            f"{o.get('weight_type', 'int8')} weights"
            + (" (7-bit range: no int16 saturation in x86's dot product without VNNI)"
               if o.get("reduce_range") else "")
            + f", {o.get('activation_type', 'int8')} activations, calibration `{o['method']}`"
            + (" (chosen by measurement: the best agreement with fp32 on the calibration "
               "windows, table below)" if o.get("method_chosen_by") == "measurement" else "")
            + f" on {o['calib_size']} {o['calibration_data']}. "
            f"Op types kept in float: **{kept}** (chosen by {o['chosen_by']}: the candidate with "
            "the best top-1 agreement with fp32 on the calibration windows; ties broken by the "
            "lowest KL, then fewer exclusions). Held-out agreement is shown as evidence only.",
            "",
            "| Kept in float | Calib agreement | Calib mean KL | Held-out agreement | Size |",
            "|---|---|---|---|---|",
        ]
        for t in o["trials"]:
            lines.append(f"| {', '.join(t['excluded']) or 'none'} | {t['calib_agreement']:.2%} "
                         f"| {t['calib_kl']:.2e} | {t['heldout_agreement']:.2%} | {t['size'] / 1024:.1f} KB |")
        if o.get("method_comparison"):
            lines += ["", "Calibration methods with these exclusions:", "",
                      "| Method | Calib agreement | Calib mean KL | Held-out agreement |",
                      "|---|---|---|---|"]
            for m in o["method_comparison"]:
                lines.append(f"| {m['method']} | {m['calib_agreement']:.2%} | {m['calib_kl']:.2e} "
                             f"| {m['heldout_agreement']:.2%} |")
    if "tflite_int8" in q:
        t = q["tflite_int8"]
        io = t["io"]
        lines += [
            "",
            "## TFLite int8: how it was made",
            "",
            f"{t['tool']}: weights {t['weights']}, activations {t['activations']}; calibrated on "
            f"{t['calib_size']} {t['calibration_data']}. Quantizer covers {t['annotated_ops']}.",
            "",
            f"- Input `{io['input']['name']}` {io['input']['dtype']}"
            + (f" (scale {io['input']['scale']:.6g}, zero point {io['input']['zero_point']}; the "
               "hub quantizes each window)" if "scale" in io["input"] else " (float)"),
            f"- Output `{io['output']['name']}` {io['output']['dtype']}"
            + (f" (scale {io['output']['scale']:.6g}, zero point {io['output']['zero_point']}; "
               "the hub dequantizes the logits)" if "scale" in io["output"] else " (float)"),
            f"- Ops running in int8: {_ops(t['ops']['int8_ops'])}",
            f"- Ops running in float: {_ops(t['ops']['float_ops'])}",
        ]
    int8 = [k for k in ("onnx_int8", "tflite_int8") if k in f]
    if int8:
        lines += ["", "## Confusion matrices of the int8 models (rows: true, columns: predicted)", ""]
        for key in int8:
            lines += [f"**{LABELS[key]}**", "", "| true \\ predicted | " + " | ".join(classes) + " |",
                      "|---|" + "---|" * len(classes)]
            for c, row in zip(classes, f[key]["confusion"], strict=True):
                lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
            lines.append("")
    if plot_files:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plot_files]
    m = report["machine"]
    lines += ["", f"_Measured on {m['platform']} ({m['cpus']} CPUs), {report['created']}._", ""]
    return "\n".join(lines)


def _ops(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k}×{v}" for k, v in sorted(counts.items())) or "none"


def _plots(out: Path, report: Mapping[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a build host
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    f = report["formats"]
    keys = list(f)
    labels = [k.replace("_", "\n") for k in keys]
    files = []

    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.27
    xs = np.arange(len(keys))
    for i, (metric, name) in enumerate((("accuracy", "accuracy"), ("macro_f1", "macro-F1"),
                                        ("agreement_vs_fp32", "agreement with fp32"))):
        ax.bar(xs + (i - 1) * width, [f[k][metric] or 0.0 for k in keys], width, label=name)
    ax.set_xticks(xs, labels)
    lo = min(min(f[k]["accuracy"] or 0, f[k]["macro_f1"] or 0) for k in keys)
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.set_title("Held-out accuracy per format")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=110)
    plt.close(fig)
    files.append("plots/accuracy.png")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    a1.bar(labels, [f[k]["latency_ms"] or 0.0 for k in keys], color="tab:orange")
    a1.set_ylabel("ms per window (median, 1 thread)")
    a1.set_title("Latency on this machine")
    dep = [k for k in keys if f[k]["size_bytes"] is not None]
    a2.bar([k.replace("_", "\n") for k in dep], [f[k]["size_bytes"] / 1024 for k in dep], color="tab:green")
    a2.set_ylabel("KB")
    a2.set_title("File size")
    fig.tight_layout()
    fig.savefig(out / "latency_size.png", dpi=110)
    plt.close(fig)
    files.append("plots/latency_size.png")

    int8 = [k for k in ("onnx_int8", "tflite_int8") if k in f]
    if int8:
        classes = list(f[int8[0]]["per_class_f1"])
        fig, axes = plt.subplots(1, len(int8), figsize=(4.2 * len(int8), 3.8), squeeze=False)
        for ax, key in zip(axes[0], int8, strict=True):
            cm = np.asarray(f[key]["confusion"])
            ax.imshow(cm, cmap="Blues")
            for (i, j), v in np.ndenumerate(cm):
                ax.text(j, i, str(v), ha="center", va="center",
                        color="white" if v > cm.max() / 2 else "black")
            ax.set_xticks(range(len(classes)), classes, rotation=30)
            ax.set_yticks(range(len(classes)), classes)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(LABELS[key])
        fig.tight_layout()
        fig.savefig(out / "confusion_int8.png", dpi=110)
        plt.close(fig)
        files.append("plots/confusion_int8.png")

    trials = report["quantization"].get("onnx_int8", {}).get("trials", [])
    if trials:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        names = ["\n".join(t["excluded"]) or "none" for t in trials]
        ax.bar(np.arange(len(trials)) - 0.2, [t["calib_agreement"] for t in trials], 0.4,
               label="calibration windows (criterion)")
        ax.bar(np.arange(len(trials)) + 0.2, [t["heldout_agreement"] for t in trials], 0.4,
               label="held-out windows (evidence)")
        ax.set_xticks(range(len(trials)), names, fontsize=7)
        ax.set_ylim(max(0.0, min(min(t["calib_agreement"], t["heldout_agreement"]) for t in trials) - 0.05), 1.0)
        ax.set_ylabel("top-1 agreement with fp32")
        ax.set_title("ONNX int8: op types kept in float")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(out / "onnx_exclusions.png", dpi=110)
        plt.close(fig)
        files.append("plots/onnx_exclusions.png")
    return files
