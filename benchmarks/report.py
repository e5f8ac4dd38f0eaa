"""``bench.json`` -> the verdicts, ``bench.md`` and the PNG plots; and the results index.

Everything here reads the JSON document :mod:`benchmarks.cli` writes (schema
:data:`SCHEMA`), so a report can be re-rendered later, on another machine, from the
committed JSON alone (``edge-bench render DIR``). matplotlib is imported only to draw; on a
hub install without it the Markdown is still written and the plots are skipped (logged).

The derived figures (multiples of the floor, the chosen hub format, the targets) are pure
functions of the document, tested in ``tests/unit/benchmarks/test_report.py``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

__all__ = [
    "BUNDLE_FORMATS",
    "SCHEMA",
    "TARGETS",
    "choose_hub_format",
    "evaluate_targets",
    "floor_multiples",
    "render",
    "write_index",
    "write_markdown",
    "write_plots",
]

log = logging.getLogger(__name__)

SCHEMA: Final = "wearable-edge-bench/1"  # bump when a field of bench.json changes meaning
BUNDLE_FORMATS: Final = ("onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8")
# The acceptance figures the report judges every run against ("Verdicts" in bench.md).
TARGETS: Final = {
    "speedup_vs_teachers": 20.0,  # chosen hub format vs PyTorch eager teacher ensemble, per window
    "floor_multiple": 3.0,  # chosen hub format's p50 within 3x of the measured floor
    "capacity_wearables": 1000,  # on one core, real-time rate
    "capacity_p99_ms": 50.0,  # window-complete -> decision
    "int8_vs_fp32": 0.7,  # the best runtime's int8 p50 / its fp32 p50 (1 thread)
    "preprocess_vs_inference": 1.0,  # shared preprocessing per window / the hub format's p50
    "daemon_vs_compute": 3.0,  # whole-daemon CPU per decision / the compute path of a window
    "rss_mb_per_wearable": 0.3,  # what each wearable adds to the daemon's peak RSS
}
# runtime -> its (fp32, int8) bundle formats, for int8_vs_fp32
RUNTIME_FORMATS: Final = {"onnxruntime": ("onnx_fp32", "onnx_int8"),
                          "litert": ("tflite_fp32", "tflite_int8")}
HUB_THREADS: Final = 1  # the daemon's default engine threads; the hub's choice is made at 1


def _get(d: Mapping[str, Any] | None, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _ok(row: Mapping[str, Any]) -> bool:
    return not row.get("error") and bool(row.get("stats_ms"))


def _row(doc: Mapping[str, Any], fmt: str, threads: int) -> Mapping[str, Any] | None:
    for r in doc.get("latency", []):
        if r["format"] == fmt and r["threads"] == threads and _ok(r):
            return r
    return None


# -- derived figures -------------------------------------------------------------------------
def floor_multiples(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each measured format: its p50 over the floor of its precision at its thread count.

    Floor = model MACs / the best sustained matmul rate any engine reached at that thread
    count and precision (``doc["floor"]["peak"]``). Also the per-call overhead of the
    format's runtime (the no-op model), which bounds tiny models from below.
    """
    peak = _get(doc, "floor", "peak") or {}
    noop = {
        (r["engine"], r["threads"]): r["median_ms"]
        for r in _get(doc, "floor", "results") or []
        if r.get("kind") == "noop"
    }
    out = []
    for r in doc.get("latency", []):
        if not _ok(r) or not r.get("macs"):
            continue
        precision = r.get("precision") or "fp32"
        rate = _get(peak, precision, str(r["threads"]), "gmacs")
        if not rate:
            continue
        floor = float(r["macs"]) / (float(rate) * 1e9) * 1e3
        engine = {"onnxruntime": "onnx", "litert": "tflite"}.get(r.get("backend", ""), "")
        out.append({
            "format": r["format"],
            "threads": r["threads"],
            "precision": precision,
            "p50_ms": r["stats_ms"]["p50"],
            "floor_ms": floor,
            "multiple": r["stats_ms"]["p50"] / floor,
            "peak_gmacs": float(rate),
            "call_overhead_ms": noop.get((engine, r["threads"])),
        })
    return out


def choose_hub_format(doc: Mapping[str, Any], threads: int = HUB_THREADS) -> str | None:
    """What ``open_engine(backend="auto")`` would pick: the fastest acceptable bundle format
    at the hub's thread count (by p50 here, by a short median at the daemon's start)."""
    best: tuple[float, str] | None = None
    for fmt in BUNDLE_FORMATS:
        r = _row(doc, fmt, threads)
        if r is None or r.get("acceptable") is False:
            continue
        p50 = r["stats_ms"]["p50"]
        if best is None or p50 < best[0]:
            best = (p50, fmt)
    return None if best is None else best[1]


def evaluate_targets(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The acceptance figures (:data:`TARGETS`) from the document: each with value, target, verdict
    (True / False / None when not measured)."""
    chosen = choose_hub_format(doc)
    out: dict[str, Any] = {"chosen_format": chosen, "threads": HUB_THREADS}
    hub = _row(doc, chosen, HUB_THREADS) if chosen else None
    teachers = _row(doc, "torch_teachers", HUB_THREADS)
    speed = None
    if hub and teachers:
        speed = teachers["stats_ms"]["p50"] / hub["stats_ms"]["p50"]
    out["speedup_vs_teachers"] = {
        "value": speed,
        "target": TARGETS["speedup_vs_teachers"],
        "ok": None if speed is None else speed >= TARGETS["speedup_vs_teachers"],
    }
    mult = next((m for m in floor_multiples(doc)
                 if m["format"] == chosen and m["threads"] == HUB_THREADS), None)
    out["floor_multiple"] = {
        "value": None if mult is None else mult["multiple"],
        "floor_ms": None if mult is None else mult["floor_ms"],
        "target": TARGETS["floor_multiple"],
        "ok": None if mult is None else mult["multiple"] <= TARGETS["floor_multiple"],
    }
    cap = doc.get("capacity") or {}
    levels = cap.get("levels") or []
    best = cap.get("max_sustained")
    # the p99 at the target, or at the nearest level above it that ran
    above = sorted((lv for lv in levels if lv["devices"] >= TARGETS["capacity_wearables"]),
                   key=lambda lv: lv["devices"])
    at_target = above[0] if above else None
    at_best = next((lv for lv in levels if lv["devices"] == best), None)
    out["capacity"] = {
        "value": best,
        "target": TARGETS["capacity_wearables"],
        "p99_ms_at_target": _get(at_target, "e2e_ms", "p99") if at_target else None,
        "p99_level": at_target["devices"] if at_target else None,
        "p99_ms_at_max": _get(at_best, "e2e_ms", "p99") if at_best else None,
        "p99_target_ms": TARGETS["capacity_p99_ms"],
        "first_failed": cap.get("first_failed"),
        # PASS once a level at or above the target held; FAIL once a level at or below it
        # failed; otherwise the search never reached the target (a --quick run)
        "ok": _capacity_ok(best, cap.get("first_failed")),
    }
    out["int8_vs_fp32"] = _int8_vs_fp32(doc)
    pre = _get(doc, "preprocess", "total_ms_per_window")
    ratio = None if pre is None or hub is None else pre / hub["stats_ms"]["p50"]
    out["preprocess_vs_inference"] = _verdict_of(
        ratio, "preprocess_vs_inference", preprocess_ms=pre,
        inference_ms=None if hub is None else hub["stats_ms"]["p50"])
    out["daemon_vs_compute"] = _daemon_vs_compute(doc, hub, at_best)
    per = cap.get("rss_mb_per_wearable")
    out["rss_mb_per_wearable"] = _verdict_of(per, "rss_mb_per_wearable",
                                             base_mb=cap.get("rss_base_mb"))
    return out


def _verdict_of(value: float | None, name: str, **extra: Any) -> dict[str, Any]:
    """A lower-is-better figure against its target."""
    target = TARGETS[name]
    return {"value": value, "target": target, **extra,
            "ok": None if value is None else value <= target}


def _int8_vs_fp32(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Per runtime, int8 p50 / fp32 p50 at the hub's thread count; the best runtime's is the
    value (whether or not the int8 file passed the exporter's accuracy bar: ``acceptable``)."""
    per: dict[str, Any] = {}
    for runtime, (fp32, int8) in RUNTIME_FORMATS.items():
        a, b = _row(doc, fp32, HUB_THREADS), _row(doc, int8, HUB_THREADS)
        if a and b:
            per[runtime] = {"ratio": b["stats_ms"]["p50"] / a["stats_ms"]["p50"],
                            "fp32_p50_ms": a["stats_ms"]["p50"],
                            "int8_p50_ms": b["stats_ms"]["p50"],
                            "int8_acceptable": b.get("acceptable")}
    best = min(per, key=lambda r: per[r]["ratio"]) if per else None
    return _verdict_of(None if best is None else per[best]["ratio"], "int8_vs_fp32",
                       runtime=best, runtimes=per)


def _daemon_vs_compute(doc: Mapping[str, Any], hub: Mapping[str, Any] | None,
                       level: Mapping[str, Any] | None) -> dict[str, Any]:
    """Whole-daemon CPU per decision at the largest sustained level over the compute path of
    one window: shared preprocessing per window + the hub format's p50 + the decision stage
    per decision measured in that level."""
    pre = _get(doc, "preprocess", "total_ms_per_window")
    daemon = _get(level, "cpu_ms_per_decision") if level else None
    decide = _get(level, "cpu_split_ms", "decisions") if level else None
    if pre is None or hub is None or daemon is None:
        return _verdict_of(None, "daemon_vs_compute")
    compute = pre + hub["stats_ms"]["p50"] + (decide or 0.0)
    return _verdict_of(daemon / compute, "daemon_vs_compute", daemon_ms=daemon,
                       compute_ms=compute, level=level["devices"] if level else None)


def _capacity_ok(best: int | None, first_failed: int | None) -> bool | None:
    target = TARGETS["capacity_wearables"]
    if best is not None and best >= target:
        return True
    if first_failed is not None and first_failed <= target:
        return False
    return None


# -- Markdown ---------------------------------------------------------------------------------
def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, list | tuple):
        return "/".join(_f(x) for x in v)
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{max(1, digits - 1)}f}"
    return str(v)


def _verdict(ok: Any) -> str:
    return {True: "**PASS**", False: "**FAIL**"}.get(ok, "not measured")


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    h = list(header)
    lines = ["| " + " | ".join(h) + " |", "|" + "|".join("---" for _ in h) + "|"]
    lines += ["| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in r) + " |"
              for r in rows]
    return lines


def write_markdown(doc: Mapping[str, Any], path: str | Path) -> None:
    """The human report of one run (``bench.md``)."""
    m = doc.get("machine", {})
    b = doc.get("bundle", {})
    t = evaluate_targets(doc)
    lines = [f"# edge-bench: {doc.get('label', '?')}", ""]
    lines += [f"`{doc.get('command', 'edge-bench')}` — {doc.get('created', '')}", ""]
    load = doc.get("load_average") or {}
    lines += [
        "## Machine", "",
        f"- CPU: {m.get('cpu_model')} ({m.get('arch')}), {m.get('logical_cpus')} logical CPUs, "
        f"clock {_f(_get(m, 'clock', 'max_mhz') or _get(m, 'clock', 'current_mhz'))} MHz"
        f"{', ' + str(m.get('hypervisor')) + ' guest' if m.get('hypervisor') else ''}",
        f"- ISA: {', '.join(m.get('isa') or []) or '–'}; caches: "
        + (", ".join(f"{k} {v}" for k, v in (m.get('caches') or {}).items()) or "–"),
        f"- OS: {m.get('os')}, kernel {m.get('kernel')}; memory {_f(m.get('memory_mb'))} MB",
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in (m.get("libraries") or {}).items() if v),
        f"- Load average (1/5/15 min) at start {_f(load.get('start'))}, at end {_f(load.get('end'))}: "
        "anything well above 0 means other work shared the CPU and every figure is an upper bound.",
        "",
        "## Model", "",
        f"- Bundle `{b.get('model_id')}` {b.get('model_version', '')} (created "
        f"{b.get('created') or '?'}, manifest sha256 {str(b.get('manifest_sha256') or '?')[:12]}) "
        f"from `{b.get('path')}`; "
        f"input {b.get('input_length')} floats ({b.get('window_s')} s window, hop {b.get('hop_s')} s)",
        f"- {_f(b.get('macs'))} MACs and {_f(b.get('params'))} parameters per window "
        f"(train/macs.py: matmuls and convolutions); manifest recommends `{b.get('recommended')}`",
        f"- PyTorch models from: {doc.get('run') or 'not given (--run RUN): no PyTorch rows'}",
        "",
        "## Verdicts", "",
    ]
    s, fl, cap = t["speedup_vs_teachers"], t["floor_multiple"], t["capacity"]
    lines += _table(
        ["figure", "measured", "target", "verdict"],
        [
            ["chosen hub format (fastest acceptable, 1 thread)", str(t["chosen_format"]), "–", "–"],
            ["speed-up vs PyTorch eager teacher ensemble (p50)",
             f"{_f(s['value'])}×", f"≥ {s['target']:.0f}×", _verdict(s["ok"])],
            ["p50 as a multiple of the measured floor", f"{_f(fl['value'])}×",
             f"≤ {fl['target']:.0f}×", _verdict(fl["ok"])],
            ["wearables one daemon sustains on one core",
             _f(cap["value"]) if cap["value"] is not None or cap.get("first_failed") is None
             else f"< {cap['first_failed']}",
             f"≥ {cap['target']}", _verdict(cap["ok"])],
            [f"p99 window→decision at {_f(cap.get('p99_level') or cap['target'])} wearables",
             f"{_f(cap['p99_ms_at_target'])} ms", f"≤ {cap['p99_target_ms']:.0f} ms",
             "–" if cap["p99_ms_at_target"] is None
             else _verdict(cap["p99_ms_at_target"] <= cap["p99_target_ms"])],
            ["int8 p50 ÷ fp32 p50, best runtime"
             + (f" ({t['int8_vs_fp32']['runtime']})" if t["int8_vs_fp32"].get("runtime") else ""),
             f"{_f(t['int8_vs_fp32']['value'])}", f"≤ {t['int8_vs_fp32']['target']:g}",
             _verdict(t["int8_vs_fp32"]["ok"])],
            ["preprocessing per window ÷ the hub format's inference",
             f"{_f(t['preprocess_vs_inference']['value'])}",
             f"≤ {t['preprocess_vs_inference']['target']:g}",
             _verdict(t["preprocess_vs_inference"]["ok"])],
            ["whole-daemon CPU per decision ÷ compute path (preprocessing + inference + "
             "decision)", f"{_f(t['daemon_vs_compute']['value'])}×",
             f"≤ {t['daemon_vs_compute']['target']:g}×", _verdict(t["daemon_vs_compute"]["ok"])],
            ["peak RSS added per wearable", f"{_f(t['rss_mb_per_wearable']['value'])} MB",
             f"≤ {t['rss_mb_per_wearable']['target']:g} MB",
             _verdict(t["rss_mb_per_wearable"]["ok"])],
        ],
    )
    lines += ["", "## Per-window latency", "",
              f"Single window (batch 1) through `engine.run`, {doc.get('settings', {}).get('warmup')} "
              f"warm-up then {doc.get('settings', {}).get('runs')} timed runs, each format in a fresh "
              "process (peak RSS is that whole process). ms unless noted.", ""]
    mults = {(x["format"], x["threads"]): x for x in floor_multiples(doc)}
    rows = []
    for r in doc.get("latency", []):
        if not _ok(r):
            rows.append([r["format"], str(r["threads"]), f"failed: {r.get('error')}"] + [""] * 11)
            continue
        st = r["stats_ms"]
        mu = mults.get((r["format"], r["threads"]))
        rows.append([
            r["format"], str(r["threads"]), st["min"], st["p50"], st["p90"], st["p99"], st["max"],
            r.get("load_ms"), r.get("first_ms"), r.get("peak_rss_mb"),
            None if r.get("file_bytes") is None else r["file_bytes"] / 1024,
            _f(r.get("macs")), None if mu is None else mu["multiple"],
            "–" if r.get("acceptable") is None else ("yes" if r["acceptable"] else "no"),
        ])
    lines += _table(["format", "threads", "min", "p50", "p90", "p99", "max", "load", "first",
                     "peak RSS MB", "file KB", "MACs", "× floor", "accuracy ok"], rows)
    cores = m.get("logical_cpus") or 0
    if any(r["threads"] > cores for r in doc.get("latency", [])):
        lines += ["", f"Thread counts above this machine's {cores} CPUs oversubscribe it: those "
                  "rows show the cost of a wrong thread setting, not a speed-up."]
    lines += ["", "## The floor", "",
              f"Sustained matmul throughput ({'×'.join(str(v) for v in _get(doc, 'floor', 'matmul_shape') or [])}, "
              "median of ≥ 1 s of calls after warm-up) through the same runtimes and session options "
              "as the hub's engines. Floor of a format = model MACs ÷ the best rate of its precision "
              "at its thread count. The no-op rows are each runtime's per-call overhead.", ""]
    frows = []
    for r in _get(doc, "floor", "results") or []:
        frows.append([r["model"], str(r["threads"]), r["median_ms"], r["best_ms"],
                      r.get("gmacs_median"), r.get("gmacs_best")])
    lines += _table(["model", "threads", "median ms", "best ms", "GMAC/s (median)",
                     "GMAC/s (best)"], frows)
    pi = doc.get("pi_estimates") or {}
    if pi.get("rows"):
        lines += ["", "## Raspberry Pi estimate (from MACs, not measured)", ""]
        lines += _table(
            ["board", "core", "GHz", "precision", "MAC/cycle/core", "peak GMAC/s (1 core)",
             "floor ms (1 core)", "floor ms (4 cores)", "× this machine's multiple → ms"],
            [[r["board"], r["core"], r["clock_ghz"], r["precision"], r["macs_per_cycle"],
              r["peak_gmacs_1core"], r["floor_ms_1core"], r["floor_ms_all"],
              r.get("projected_ms")] for r in pi["rows"]],
        )
        lines += [""] + [f"- {a}" for a in pi.get("assumptions", [])]
    pre = doc.get("preprocess")
    if pre:
        c = pre["cut_ms"]
        lines += ["", "## Shared preprocessing per window", "",
                  f"`core.signal.WindowAssembler` fed {pre['source']} in {pre['packet_s']} s "
                  f"packets; {pre['windows']} windows ({pre['invalid']} invalid).", ""]
        lines += _table(["cut p50", "cut p99", "cut max", "push per window", "total per window (mean)"],
                        [[c["p50"], c["p99"], c["max"], pre["push_ms_per_window"],
                          pre["total_ms_per_window"]]])
    cap_doc = doc.get("capacity") or {}
    levels = cap_doc.get("levels") or []
    if levels:
        in_proc = any(not lv.get("sim_process", False) for lv in levels)
        lines += ["", "## Inside the daemon: window-complete → decision, and capacity", "",
                  "Real `edge-daemon` pipeline (sim source, auto engine, SQLite sink) with N simulated "
                  "wearables at real-time rate, one process pinned to one CPU; see "
                  "benchmarks/capacity.py for exact definitions. Enrollment excluded (baselines "
                  "pre-stored). "
                  + ("CPU share includes the in-process simulator." if in_proc else
                     "The simulator runs in its own process on the other CPUs and writes "
                     "frames into a pipe; the daemon decodes them (`sim.process`).")
                  + " Levels grow until one fails, then the search bisects "
                  f"(tried in order: {', '.join(str(n) for n in cap_doc.get('tried') or [])}).",
                  ""]
        lines += _table(
            ["wearables", "decisions / expected", "e2e p50", "e2e p99", "e2e max", "wait p99",
             "preproc p99", "worker p99", "delivery p99", "CPU share", "per wearable", "peak RSS MB",
             "sustained"],
            [[str(lv["devices"]), f"{lv['decisions']} / {lv['expected']}",
              _get(lv, "e2e_ms", "p50"), _get(lv, "e2e_ms", "p99"), _get(lv, "e2e_ms", "max"),
              _get(lv, "source_wait_ms", "p99"), _get(lv, "preprocess_ms", "p99"),
              _get(lv, "worker_ms", "p99"), _get(lv, "delivery_ms", "p99"),
              f"{100 * lv.get('cpu_share', 0):.1f} %",
              f"{100 * lv.get('cpu_share_per_device', 0):.3f} %", lv.get("peak_rss_mb"),
              "yes" if lv.get("sustained") else "no: " + "; ".join(lv.get("why_not", []))]
             for lv in levels],
        )
        split_rows = [[str(lv["devices"]), lv.get("cpu_ms_per_decision")]
                      + [_get(lv, "cpu_split_ms", k) for k in
                         ("transport", "preprocessing", "inference", "decisions", "sinks",
                          "other", "decode")]
                      for lv in levels if lv.get("cpu_split_ms")]
        if split_rows:
            lines += ["", "CPU per decision (ms of the daemon process, measured span): transport "
                      "= reading the source, decoding frames (`decode`, part of it), the hand-off "
                      "and the event loop; preprocessing = ingest, the shared preprocessing and "
                      "packing; inference = the engine thread; decisions = decision logic and "
                      "handing records to the sinks; sinks = their writer threads.", ""]
            lines += _table(["wearables", "total", "transport", "preprocessing", "inference",
                             "decisions", "sinks", "other", "decode"], split_rows)
        if cap_doc.get("rss_mb_per_wearable") is not None:
            lines += ["", f"Peak RSS ≈ {_f(cap_doc.get('rss_base_mb'))} MB + "
                      f"{_f(cap_doc['rss_mb_per_wearable'])} MB per wearable (least squares over "
                      "the levels)."]
        if levels[0].get("commit_interval_s"):
            lines += ["", f"SQLite commits are batched every {levels[0]['commit_interval_s']} s "
                      "(sinks.commit_interval_s); a decision is durable on disk at most that much "
                      "after the time above."]
    for note in doc.get("notes", []):
        lines.append(f"\n> {note}")
    lines += ["", "Plots: " + ", ".join(f"[{p}](plots/{p})" for p in doc.get("plots", [])) or "–", ""]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- plots ------------------------------------------------------------------------------------
def write_plots(doc: Mapping[str, Any], out_dir: str | Path) -> list[str]:
    """PNG plots into ``out_dir``; returns their file names ([] without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots (render later with `edge-bench render`)")
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    rows = [r for r in doc.get("latency", []) if _ok(r)]
    if rows:
        formats = list(dict.fromkeys(r["format"] for r in rows))
        threads = sorted({r["threads"] for r in rows})
        fig, ax = plt.subplots(figsize=(9, 4.5))
        width = 0.8 / len(threads)
        for j, th in enumerate(threads):
            xs, p50, err = [], [], []
            for i, f in enumerate(formats):
                r = next((r for r in rows if r["format"] == f and r["threads"] == th), None)
                if r is None:
                    continue
                xs.append(i + (j - (len(threads) - 1) / 2) * width)
                p50.append(r["stats_ms"]["p50"])
                err.append(r["stats_ms"]["p99"] - r["stats_ms"]["p50"])
            ax.bar(xs, p50, width, yerr=[[0] * len(err), err], capsize=2, label=f"{th} thread(s)")
        ax.set_xticks(range(len(formats)), formats, rotation=20)
        ax.set_yscale("log")
        ax.set_ylabel("ms per window (bar p50, whisker p99)")
        ax.set_title(f"Per-window latency — {doc.get('label', '')}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        names.append("latency.png")

        fig, ax = plt.subplots(figsize=(7, 4.5))
        import numpy as np

        for r in rows:
            if r["threads"] != HUB_THREADS or not r.get("quantiles_ms"):
                continue
            q = np.asarray(r["quantiles_ms"])
            ax.plot(q, np.linspace(0, 1, q.size), label=r["format"])
        ax.set_xscale("log")
        ax.set_xlabel("ms per window")
        ax.set_ylabel("fraction of runs")
        ax.set_title(f"Latency distribution, {HUB_THREADS} thread")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "latency_cdf.png", dpi=110)
        plt.close(fig)
        names.append("latency_cdf.png")

    mults = [m for m in floor_multiples(doc) if m["threads"] == HUB_THREADS]
    if mults:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.bar([m["format"] for m in mults], [m["multiple"] for m in mults], color="tab:purple")
        ax.axhline(TARGETS["floor_multiple"], color="k", ls="--", lw=1,
                   label=f"target {TARGETS['floor_multiple']:.0f}× floor")
        ax.set_yscale("log")
        ax.set_ylabel("p50 ÷ floor (MACs ÷ measured peak)")
        ax.set_title(f"Distance from the hardware floor, {HUB_THREADS} thread")
        ax.tick_params(axis="x", rotation=20)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "floor_multiple.png", dpi=110)
        plt.close(fig)
        names.append("floor_multiple.png")

    levels = [lv for lv in (doc.get("capacity") or {}).get("levels", []) if lv.get("e2e_ms")]
    if levels:
        n = [lv["devices"] for lv in levels]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(n, [lv["e2e_ms"]["p50"] for lv in levels], "o-", label="p50")
        ax.plot(n, [lv["e2e_ms"]["p99"] for lv in levels], "s-", label="p99")
        ax.axhline(TARGETS["capacity_p99_ms"], color="k", ls="--", lw=1, label="p99 target")
        ax.axvline(TARGETS["capacity_wearables"], color="gray", ls=":", lw=1)
        ax.set_xlabel("simulated wearables (real-time, one core)")
        ax.set_ylabel("window-complete → decision, ms")
        ax2 = ax.twinx()
        ax2.plot(n, [100 * lv.get("cpu_share", 0) for lv in levels], "^-", color="tab:red",
                 label="CPU %")
        ax2.set_ylabel("CPU share of the core, %", color="tab:red")
        ax.legend(loc="upper left")
        ax.set_title("Hub capacity")
        fig.tight_layout()
        fig.savefig(out / "capacity.png", dpi=110)
        plt.close(fig)
        names.append("capacity.png")
    return names


# -- whole folders ------------------------------------------------------------------------------
def render(out_dir: str | Path) -> Path:
    """Re-render ``bench.md`` and ``plots/`` of a results folder from its ``bench.json``."""
    out = Path(out_dir)
    doc = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{out / 'bench.json'}: schema {doc.get('schema')!r} != {SCHEMA!r}")
    doc["plots"] = write_plots(doc, out / "plots")
    doc["targets"] = evaluate_targets(doc)
    (out / "bench.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    write_markdown(doc, out / "bench.md")
    return out / "bench.md"


def write_index(results_dir: str | Path) -> Path:
    """``results_dir/README.md``: one row per machine folder, side by side."""
    root = Path(results_dir)
    rows = []
    for p in sorted(root.glob("*/bench.json")):
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        t = evaluate_targets(doc)
        hub = _row(doc, t["chosen_format"], HUB_THREADS) if t["chosen_format"] else None
        rows.append([
            f"[{p.parent.name}]({p.parent.name}/bench.md)",
            str(_get(doc, "machine", "cpu_model")),
            str(t["chosen_format"]),
            None if hub is None else hub["stats_ms"]["p50"],
            t["speedup_vs_teachers"]["value"],
            t["floor_multiple"]["value"],
            t["capacity"]["value"],
            str(doc.get("created", ""))[:10],
        ])
    lines = ["# Benchmark results, one folder per machine", "",
             "Regenerate this machine's folder with `make bench`; see ../README.md for the "
             "Raspberry Pi procedure. Figures at 1 engine thread.", ""]
    lines += _table(["folder", "CPU", "hub format", "p50 ms", "× faster than teachers",
                     "× floor", "wearables / core", "date"], rows)
    path = root / "README.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
