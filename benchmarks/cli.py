"""``edge-bench``: per-window latency against the hardware floor, hub capacity, the report.

One command measures everything for one bundle on this machine and writes
``OUT/bench.json``, ``OUT/bench.md`` and ``OUT/plots/*.png`` (OUT defaults to
``benchmarks/results/<machine label>``, so results of different machines sit side by side).
Sub-commands re-render a report, rebuild the results index, or regenerate the prebuilt
floor models.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from core.runs import RunLayout

__all__ = ["build_parser", "main", "run_bench"]

log = logging.getLogger("edge-bench")

RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
DEFAULT_THREADS: Final = (1, 2, 4)  # up to a Pi's 4 cores; rows past this CPU's cores show oversubscription
QUICK_RUNS: Final = 50  # --quick: enough to exercise every path, not to trust the numbers
QUICK_WARMUP: Final = 5
QUICK_LEVELS: Final = (5, 10)
QUICK_MEASURE_S: Final = 10.0
QUICK_FLOOR_S: Final = 0.2
SECTIONS: Final = ("latency", "floor", "preprocess", "capacity")

EPILOG = """\
examples:
  edge-bench --bundle edge/demo_bundle --run runs/demo-run     # everything (~25 min)
  edge-bench --bundle B --skip capacity --threads 1            # latency and floor only
  edge-bench --bundle B --quick --out /tmp/bench               # ~2 min smoke run
  edge-bench render benchmarks/results/x86_64-amd-epyc-avx512vnni-2cpu    # redraw bench.md + plots
  edge-bench index benchmarks/results                          # the machines side by side
  edge-bench floor-models                                      # rebuild the matmul models (host)
  edge-bench rhythms setup && edge-bench rhythms               # actigraphy vs pyActigraphy
  edge-bench datasets                                          # student vs MiniRocket (aeon)
  edge-bench mutation --modules framing,decisions              # mutation testing (mutmut)

What is measured (details in benchmarks/README.md):
  latency     every bundle format (ONNX Runtime / LiteRT+XNNPACK, fp32 / int8) and, with
              --run, the PyTorch eager student and teacher ensemble; each in a fresh process
  floor       sustained matmul GMAC/s through the same runtimes -> MACs / peak per format,
              plus a Raspberry Pi 4 / 5 estimate from the MAC count
  preprocess  the shared WindowAssembler per window
  capacity    the real daemon with N simulated wearables at real time on one CPU, N going
              up until a level fails (p99 window->decision <= 50 ms, nothing dropped)

Close other work first: a busy machine makes every figure an upper bound (the load
average is recorded in the report).
"""


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers")
    return values


def _names(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        bad = [v for v in values if v not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(allowed)}")
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    from benchmarks.latency import BUNDLE_FORMATS, TORCH_FORMATS

    p = argparse.ArgumentParser(
        prog="edge-bench",
        description=(
            "Benchmark a model bundle on this machine: per-window latency of every format at "
            "1/2/4 threads, the hardware floor, preprocessing, and how many wearables one "
            "daemon sustains on one core. Writes bench.json, bench.md and plots."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", type=Path, help="bundle directory (from edge-export)")
    p.add_argument("--out", type=Path,
                   help="results folder (default benchmarks/results/<machine label>)")
    p.add_argument("--force", action="store_true",
                   help="write into a results folder that holds another machine's results")
    p.add_argument("--run", type=Path,
                   help="the training RUN the bundle came from: adds PyTorch eager rows for the "
                        "student (RUN/student.pt) and the teacher ensemble (RUN/teachers/*.pt)")
    p.add_argument("--threads", type=_ints, default=DEFAULT_THREADS, metavar="1,2,4",
                   help="engine thread counts (default 1,2,4)")
    p.add_argument("--runs", type=int, default=None, metavar="N",
                   help="timed single-window runs per format (default 500)")
    p.add_argument("--warmup", type=int, default=None, metavar="N",
                   help="warm-up runs before timing (default 50)")
    p.add_argument("--formats", type=_names(BUNDLE_FORMATS + TORCH_FORMATS),
                   default=BUNDLE_FORMATS + TORCH_FORMATS, metavar="F,..",
                   help="subset of " + ", ".join(BUNDLE_FORMATS + TORCH_FORMATS))
    p.add_argument("--skip", type=_names(SECTIONS), default=(), metavar="S,..",
                   help="sections to skip: " + ", ".join(SECTIONS))
    p.add_argument("--capacity-levels", type=_ints, default=None, metavar="N,..",
                   help="wearable counts to try first, upwards; past the last the count "
                        "doubles until a level fails, then the search bisects "
                        "(default 100,250,500,1000)")
    p.add_argument("--capacity-resolution", type=float, default=None, metavar="F",
                   help="stop bisecting when the failed level is within this fraction of the "
                        "sustained one (default 0.1)")
    p.add_argument("--sim-in-process", action="store_true",
                   help="capacity: run the simulator in the daemon's process and core (the "
                        "old setting; an upper bound) instead of its own process")
    p.add_argument("--capacity-seconds", type=float, default=None, metavar="S",
                   help="measured seconds per level after the first window (default 60)")
    p.add_argument("--cpu", type=int, default=0, help="the CPU the daemon is pinned to (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="tiny run counts and levels: checks the whole path in ~2 min; the "
                        "numbers are not results")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _sub_parser(name: str) -> argparse.ArgumentParser:
    helps = {
        "render": "re-render bench.md and plots/ of a results folder from its bench.json",
        "index": "write RESULTS/README.md: every machine folder side by side",
        "floor-models": "rebuild the matmul/no-op models of the floor (host: needs onnx, "
                        "litert-torch); commit the result",
    }
    p = argparse.ArgumentParser(prog=f"edge-bench {name}", description=helps[name])
    if name == "render":
        p.add_argument("folder", type=Path, help="a folder holding bench.json")
    elif name == "index":
        p.add_argument("results", type=Path, nargs="?", default=RESULTS_DIR,
                       help=f"results root (default {RESULTS_DIR})")
    else:
        from benchmarks.floor import FLOOR_MODELS_DIR

        p.add_argument("--out", type=Path, default=FLOOR_MODELS_DIR,
                       help=f"where to write them (default {FLOOR_MODELS_DIR})")
    return p


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=Console(stderr=True))


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything ``args`` asks for; returns the bench.json document (not written)."""
    from benchmarks import capacity, floor, latency, machine, report
    from edge.bundle import load_bundle

    quick = args.quick
    runs = args.runs or (QUICK_RUNS if quick else latency.DEFAULT_RUNS)
    warmup = args.warmup if args.warmup is not None else (QUICK_WARMUP if quick else latency.DEFAULT_WARMUP)
    bundle = load_bundle(args.bundle)
    contract = bundle.contract
    mach = machine.describe_machine()
    doc: dict[str, Any] = {
        "schema": report.SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "edge-bench " + shlex.join(sys.argv[1:]),
        "label": machine.machine_label(mach),
        "machine": mach,
        "load_average": {"start": machine.load_average()},
        "bundle": {
            "path": str(args.bundle),
            "id": f"{bundle.model_id}@{bundle.model_version}",
            "model_id": bundle.model_id,
            "model_version": bundle.model_version,
            "created": bundle.manifest.get("created"),
            "manifest_sha256": hashlib.sha256(
                (Path(args.bundle) / "manifest.json").read_bytes()).hexdigest(),
            "macs": bundle.manifest.get("macs"),
            "params": bundle.manifest.get("params"),
            "recommended": bundle.recommended,
            "input_length": contract.input_length,
            "window_s": contract.window_s,
            "hop_s": contract.hop_s,
            "formats": sorted(bundle.files),
        },
        "run": str(args.run) if args.run else None,
        "settings": {"runs": runs, "warmup": warmup, "threads": list(args.threads),
                     "quick": quick},
        "latency": [],
        "notes": [],
    }
    if quick:
        doc["notes"].append("--quick run: tiny run counts; not results.")
    specs = []
    for fmt in args.formats:
        if fmt in latency.TORCH_FORMATS and args.run is None:
            continue
        if fmt in latency.BUNDLE_FORMATS and fmt not in bundle.files:
            doc["notes"].append(f"{fmt}: not in this bundle.")
            continue
        for th in args.threads:
            specs.append(latency.LatencySpec(fmt, th, bundle=str(args.bundle),
                                             run=str(args.run) if args.run else None,
                                             runs=runs, warmup=warmup))
    if args.run is None:
        doc["notes"].append("No --run given: no PyTorch eager rows, so the speed-up over the "
                            "teacher ensemble is not measured.")
    floor_s = QUICK_FLOOR_S if quick else floor.MIN_SECONDS
    levels = args.capacity_levels or (QUICK_LEVELS if quick else capacity.DEFAULT_LEVELS)
    measure_s = args.capacity_seconds or (QUICK_MEASURE_S if quick else capacity.DEFAULT_MEASURE_S)

    with _progress() as progress:
        if "latency" not in args.skip:
            task = progress.add_task("latency", total=len(specs))
            for spec in specs:
                progress.update(task, description=f"latency {spec.format} x{spec.threads}")
                res = latency.measure_in_subprocess(spec)
                if res.error:
                    log.warning("%s x%d failed: %s", spec.format, spec.threads, res.error)
                doc["latency"].append(asdict(res))
                progress.advance(task)
        if "floor" not in args.skip:
            models = floor.load_floor_models()
            task = progress.add_task("floor", total=len(models) * len(args.threads))

            def step(text: str) -> None:
                progress.update(task, description=text)
                progress.advance(task)

            results = floor.measure_floor(args.threads, min_seconds=floor_s, progress=step)
            peak = floor.peak_by_precision(results)
            doc["floor"] = {
                "matmul_shape": list(floor.MATMUL_SHAPE),
                "results": [asdict(r) for r in results],
                "peak": {p: {str(t): v for t, v in by.items()} for p, by in peak.items()},
            }
        macs = bundle.manifest.get("macs")
        if isinstance(macs, int | float) and macs > 0:
            doc["pi_estimates"] = _pi_section(doc, float(macs))
        if "preprocess" not in args.skip:
            task = progress.add_task("preprocess", total=1)
            pre = latency.measure_preprocess(args.bundle, windows=50 if quick else 500)
            doc["preprocess"] = asdict(pre)
            progress.advance(task)
        if "capacity" not in args.skip:
            task = progress.add_task("capacity", total=None)

            def level_step(text: str) -> None:
                progress.update(task, description=text)

            base = capacity.DaemonLevelSpec(bundle=str(args.bundle), devices=0,
                                            measure_s=measure_s, cpu=args.cpu,
                                            sim_process=not args.sim_in_process)

            def runner(spec: capacity.DaemonLevelSpec) -> capacity.DaemonLevel:
                lv = capacity.run_level_in_subprocess(spec)
                progress.advance(task)
                return lv

            resolution = args.capacity_resolution or capacity.DEFAULT_RESOLUTION
            cap = capacity.search_capacity(base, levels, progress=level_step, runner=runner,
                                           resolution=resolution,
                                           max_level=max(levels) if quick else capacity.MAX_LEVEL)
            doc["capacity"] = asdict(cap)
    doc["load_average"]["end"] = machine.load_average()
    doc["targets"] = report.evaluate_targets(doc)
    return doc


def _pi_section(doc: dict[str, Any], macs: float) -> dict[str, Any]:
    from benchmarks import floor, report

    rows = floor.pi_estimates(macs)
    # projection: the Pi's floor times the multiple this machine's hub format reached, per
    # precision (assumes the runtime is as efficient there as here; overhead-bound tiny
    # models will do worse, since per-call overhead scales with scalar speed, not SIMD width)
    mults = {}
    for m in report.floor_multiples(doc):
        if m["threads"] == report.HUB_THREADS and m["format"] in report.BUNDLE_FORMATS:
            cur = mults.get(m["precision"])
            if cur is None or m["multiple"] < cur:
                mults[m["precision"]] = m["multiple"]
    for r in rows:
        mu = mults.get(r["precision"])
        r["projected_ms"] = None if mu is None else r["floor_ms_1core"] * mu
    a72 = floor.PI_CORES[0]
    return {
        "rows": rows,
        "assumptions": [
            f"Floor = MACs ({macs:,.0f}) ÷ (MAC/cycle/core × clock × cores); element-wise work "
            "(softmax, LayerNorm, GELU) is not in the MAC count.",
            f"{a72.board}: {a72.core} at {a72.clock_ghz} GHz (boards before 2020: 1.5 GHz, ×1.2 "
            f"slower), {a72.fp32_macs_per_cycle:g} fp32 MAC/cycle; {a72.note}.",
            "Raspberry Pi 5: Cortex-A76 at 2.4 GHz, 8 fp32 and 32 int8 (SDOT) MAC/cycle/core.",
            f"Sanity anchor: {floor.PI_ANCHOR} (~23 % of the A72's 4-core fp32 peak).",
            "'× this machine's multiple' scales the Pi floor by the best multiple a bundle format "
            "of that precision reached here at 1 thread: an extrapolation, not a measurement. "
            "Run edge-bench on the Pi (benchmarks/README.md) for real figures.",
        ],
    }


def _other_machine(out: Path, here: dict[str, Any]) -> str | None:
    """The other machine whose results ``out`` holds, in words, or None (none, or this one)."""
    from benchmarks import machine

    try:
        theirs = json.loads((out / "bench.json").read_text(encoding="utf-8"))["machine"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if machine.same_machine(theirs, here):
        return None
    return (f"{theirs.get('cpu_model')}, {theirs.get('logical_cpus')} CPUs, ISA "
            f"{' '.join(theirs.get('isa') or []) or '?'}")


def _write(doc: dict[str, Any], out: Path) -> Path:
    from benchmarks import report

    out.mkdir(parents=True, exist_ok=True)
    doc["plots"] = report.write_plots(doc, out / "plots")
    (out / "bench.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    report.write_markdown(doc, out / "bench.md")
    if out.parent.resolve() == RESULTS_DIR.resolve():
        report.write_index(RESULTS_DIR)
    return out / "bench.md"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "rhythms":
        from benchmarks.rhythms import main as rhythms_main

        return rhythms_main(argv[1:])
    if argv and argv[0] == "datasets":
        from benchmarks.datasets import main as datasets_main

        return datasets_main(argv[1:])
    if argv and argv[0] == "mutation":
        from benchmarks.mutation import main as mutation_main

        return mutation_main(argv[1:])
    if argv and argv[0] in ("render", "index", "floor-models"):
        name = argv[0]
        sub = _sub_parser(name).parse_args(argv[1:])
        from benchmarks import report

        if name == "render":
            print(report.render(sub.folder))
        elif name == "index":
            print(report.write_index(sub.results))
        else:
            from benchmarks.floor import build_floor_models

            for m in build_floor_models(sub.out):
                print(f"{sub.out / m.file}: {m.op} {m.shape}")
        return 0

    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    if args.bundle is None:
        build_parser().error("--bundle is required (e.g. --bundle edge/demo_bundle)")
    if not (args.bundle / "manifest.json").is_file():
        build_parser().error(f"{args.bundle} is not a bundle directory (no manifest.json); "
                             "make one with edge-export RUN --out DIR")
    if args.run is not None and not RunLayout(args.run).student_checkpoint.is_file():
        build_parser().error(f"{args.run} has no student.pt: is it an edge-train fit output?")
    from benchmarks import machine

    here = machine.describe_machine()
    out = args.out or RESULTS_DIR / machine.machine_label(here)
    other = _other_machine(out, here)
    if other and not args.force:  # checked before the long run, not after it
        build_parser().error(f"{out} holds results of another machine ({other}); pass "
                             "--out DIR for a new folder, or --force to replace them")
    doc = run_bench(args)
    path = _write(doc, out)
    t = doc["targets"]
    print(f"wrote {path}")
    print(f"hub format {t['chosen_format']}: "
          f"{_x(t['speedup_vs_teachers']['value'])} faster than the teachers, "
          f"{_x(t['floor_multiple']['value'])} the floor; "
          f"capacity {t['capacity']['value']} wearables/core; "
          f"int8/fp32 {_x(t['int8_vs_fp32']['value'])}, "
          f"preprocessing/inference {_x(t['preprocess_vs_inference']['value'])}, "
          f"daemon/compute {_x(t['daemon_vs_compute']['value'])}")
    return 0


def _x(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}x"


if __name__ == "__main__":
    raise SystemExit(main())
