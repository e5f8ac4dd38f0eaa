"""Cross-check of the actigraphy kernel against the field's references, on real recordings.

``core.actigraphy`` against pyActigraphy (IS, IV, RA, L5, M10, their start times, Sadeh per
epoch) on the real Actiwatch recordings pyActigraphy ships in its test data, and the counts
against ``agcounts`` on deterministic raw signals. Writes ``results.json``, ``results.md``
and ``rhythms.png`` to ``benchmarks/results/rhythms/``.

The references never enter the hub's environment: pyActigraphy needs pandas < 3 and a stub
for its broken ``accelerometer`` dependency, so ``setup`` builds a separate virtual
environment (``runs/venv-rhythms``) and the reference values are extracted there in a
subprocess (``extract``); the comparison runs here, on the kernel.

    edge-bench rhythms setup                 # once: the reference environment (~2 min)
    edge-bench rhythms                       # extract, compare, write the results
    edge-bench rhythms fixture               # rebuild the CI fixture in tests/fixtures/

(``python -m benchmarks.rhythms ...`` is the same.) This module imports numpy and the standard
library at the top only: it also runs inside the reference environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

ROOT: Final = Path(__file__).resolve().parent.parent
OUT_DIR: Final = ROOT / "benchmarks" / "results" / "rhythms"
VENV: Final = ROOT / "runs" / "venv-rhythms"
FIXTURE_DIR: Final = ROOT / "tests" / "fixtures" / "actigraphy"
RECORDINGS: Final = (
    "example_01.AWD", "example_02.AWD", "example_03.AWD", "example_04.AWD", "example_05.AWD",
    "test_sample_awmk2.AWD",
)
FIXTURE_RECORDING: Final = "example_02.AWD"
FIXTURE_START: Final = "1918-01-24 00:00:00"
FIXTURE_PERIOD: Final = "4D"
REFERENCE_PINS: Final = ("pyActigraphy==1.2.2", "agcounts==0.2.6")
# pyActigraphy's run-time imports (its declared dependency `accelerometer` is stubbed)
REFERENCE_DEPS: Final = (
    "pandas<3", "numpy", "scipy", "joblib", "lmfit", "statsmodels", "plotly", "spm1d",
    "numba", "pyexcel", "pyexcel-ods3", "pyexcel-xlsx", "lxml",
)
TARGETS: Final = {"RA": 5.0, "L5": 5.0, "M10": 5.0, "IS": 8.0, "IV": 8.0}
START_TARGET_MIN: Final = 30.0
SADEH_TARGET: Final = 0.95
COUNT_RATES: Final = (30, 32, 50, 100)
COUNT_SECONDS: Final = 1800


# --- deterministic raw signals for the counts check (shared by both environments) --------


def raw_signal(fs: int, seconds: int = COUNT_SECONDS) -> np.ndarray:
    """Tri-axial 'acceleration' (g): rest, walking-like and fidgeting bouts, no random numbers."""
    t = np.arange(fs * seconds) / fs
    walk = (np.sin(2 * np.pi * t / 600.0) > 0.2).astype(float)
    fidget = (np.sin(2 * np.pi * t / 97.0) > 0.7).astype(float)
    x = 0.6 * walk * np.sin(2 * np.pi * 1.8 * t) + 0.1 * fidget * np.sin(2 * np.pi * 4.3 * t)
    y = 0.4 * walk * np.sin(2 * np.pi * 3.6 * t + 0.5) + 0.05 * np.sin(2 * np.pi * 0.21 * t)
    z = 1.0 + 0.3 * walk * np.cos(2 * np.pi * 1.8 * t) + 0.08 * fidget * np.sin(2 * np.pi * 7 * t)
    return np.stack([x, y, z], axis=1)


# --- the reference side (runs in the reference environment) ------------------------------


def _data_dir() -> Path:
    import pyActigraphy

    return Path(pyActigraphy.__file__).parent / "tests" / "data"


def _reference_one(raw: Any, name: str, *, with_epochs: bool = True) -> dict[str, Any]:
    from pyActigraphy.metrics.metrics import _lmx

    data = raw.data
    epoch_s = int(raw.frequency.total_seconds())
    l5_start, _ = _lmx(data, "5h", lowest=True)
    m10_start, _ = _lmx(data, "10h", lowest=False)
    doc: dict[str, Any] = {
        "name": name,
        "start": data.index[0].isoformat(),
        "epoch_s": epoch_s,
        "epochs": len(data),
        "pyactigraphy": {
            "IS": float(raw.IS(binarize=False)),
            "IV": float(raw.IV(binarize=False)),
            "RA": float(raw.RA(binarize=False)),
            "L5": float(raw.L5(binarize=False)),
            "M10": float(raw.M10(binarize=False)),
            "L5_start_s": float(l5_start.total_seconds()) % 86400,
            "M10_start_s": float(m10_start.total_seconds()) % 86400,
        },
    }
    if with_epochs:
        doc["activity"] = [float(v) for v in data.to_numpy()]
    if epoch_s == 60:
        doc["pyactigraphy"]["sadeh"] = [int(v) for v in raw.Sadeh().to_numpy()]
    return doc


def extract(names: Sequence[str]) -> dict[str, Any]:
    """Reference values of every recording and the agcounts counts (reference environment)."""
    import warnings

    import pandas as pd
    import pyActigraphy
    from pyActigraphy.io import read_raw_awd

    warnings.simplefilter("ignore")  # pyActigraphy's FutureWarnings on pandas 2
    recs = [_reference_one(read_raw_awd(str(_data_dir() / n)), n) for n in names]
    counts = {}
    try:
        from agcounts.extract import get_counts
    except ImportError:
        get_counts = None
    if get_counts is not None:
        for fs in COUNT_RATES:
            for ep in (30, 60):
                counts[f"{fs}/{ep}"] = get_counts(raw_signal(fs), fs, ep).tolist()
    return {
        "versions": {"pyActigraphy": pyActigraphy.__version__, "pandas": pd.__version__,
                     "numpy": np.__version__},
        "recordings": recs,
        "agcounts": counts,
    }


def extract_fixture() -> dict[str, Any]:
    """The CI fixture: 4 days of one recording and pyActigraphy's values on exactly those."""
    import warnings

    import pandas as pd
    import pyActigraphy
    from pyActigraphy.io import read_raw_awd

    warnings.simplefilter("ignore")
    raw = read_raw_awd(str(_data_dir() / FIXTURE_RECORDING), start_time=FIXTURE_START,
                       period=FIXTURE_PERIOD)
    doc = _reference_one(raw, FIXTURE_RECORDING)
    from agcounts.extract import get_counts

    doc["agcounts"] = {f"{fs}/{ep}": get_counts(raw_signal(fs), fs, ep).tolist()
                       for fs in COUNT_RATES for ep in (30, 60)}
    doc["produced_by"] = (
        "edge-bench rhythms fixture: pyActigraphy "
        f"{pyActigraphy.__version__} (pandas {pd.__version__}) on its test file "
        f"{FIXTURE_RECORDING}, start_time={FIXTURE_START}, period={FIXTURE_PERIOD}"
    )
    return doc


# --- the comparison (this environment, on the kernel) ---------------------------------------


def _rel(ours: float, ref: float) -> float:
    return 100.0 * (ours - ref) / ref if ref else float("nan")


def _minutes_apart(a_s: float, b_s: float) -> float:
    d = abs(a_s - b_s) % 86400
    return min(d, 86400 - d) / 60.0


def sadeh_pyactigraphy_style(activity: np.ndarray) -> np.ndarray:
    """Sadeh with pyActigraphy's two departures (NAT 50 < x, ln of the next epoch); 0 at edges.

    Only here, to show that the residual disagreement is exactly those departures.
    """
    a = np.asarray(activity, dtype=float)
    out = np.zeros(a.size, dtype=np.int8)
    win = np.lib.stride_tricks.sliding_window_view(a, 11)
    mean = win.mean(axis=1)
    nat = ((win > 50) & (win < 100)).sum(axis=1)
    sd = np.lib.stride_tricks.sliding_window_view(a, 6)[: a.size - 10].std(axis=1, ddof=1)
    nxt = np.append(a[1:], np.nan)[5 : a.size - 5]
    ps = 7.601 - 0.065 * mean - 1.08 * nat - 0.056 * sd - 0.703 * np.log(nxt + 1)
    out[5 : a.size - 5] = np.where(ps > 0, 1, 0)
    return out


def compare_recording(rec: dict[str, Any]) -> dict[str, Any]:
    """Our measures next to pyActigraphy's for one extracted recording."""
    from datetime import datetime

    from core.actigraphy import EpochSeries, hhmm, rhythm_measures, sadeh

    act = np.asarray(rec["activity"], dtype=float)
    series = EpochSeries(datetime.fromisoformat(rec["start"]), rec["epoch_s"], act)
    ref = rec["pyactigraphy"]
    ours = rhythm_measures(series)
    same_bins = rhythm_measures(series, hour_origin="start")
    n, p = same_bins.hours, 24
    row: dict[str, Any] = {
        "name": rec["name"], "epoch_s": rec["epoch_s"], "days": round(series.days, 2),
        "start": rec["start"], "measures": {}, "passed": True,
    }
    for key, target in TARGETS.items():
        o, r = getattr(ours, key), ref[key]
        entry = {"ours": o, "pyactigraphy": r, "rel_pct": _rel(o, r), "target_pct": target,
                 "same_bins": getattr(same_bins, key),
                 "same_bins_rel_pct": _rel(getattr(same_bins, key), r)}
        if key == "IS":  # pyActigraphy's sample-variance convention applied to ours
            conv = same_bins.IS * (n - 1) / n * p / (p - 1)
            entry["same_bins_ddof1_rel_pct"] = _rel(conv, r)
        if key == "IV":
            conv = same_bins.IV * (n - 1) / n
            entry["same_bins_ddof1_rel_pct"] = _rel(conv, r)
        entry["ok"] = bool(abs(entry["rel_pct"]) <= target)
        row["measures"][key] = entry
        row["passed"] &= entry["ok"]
    for key in ("L5_start", "M10_start"):
        o = getattr(ours, key)
        r = ref[f"{key}_s"]
        d = _minutes_apart(o, r)
        row["measures"][key] = {"ours": hhmm(o), "pyactigraphy": hhmm(r), "minutes_apart": d,
                                "target_min": START_TARGET_MIN, "ok": d <= START_TARGET_MIN}
        row["passed"] &= d <= START_TARGET_MIN
    if "sadeh" in ref:
        theirs = np.asarray(ref["sadeh"])
        mine = sadeh(act)
        scored = mine >= 0
        agree = float(np.mean(mine[scored] == theirs[scored]))
        emulated = sadeh_pyactigraphy_style(act)
        row["sadeh"] = {
            "agreement": agree, "epochs": int(scored.sum()), "target": SADEH_TARGET,
            "ok": agree >= SADEH_TARGET,
            "agreement_with_their_departures": float(np.mean(emulated == theirs)),
            "sleep_fraction_ours": float(np.mean(mine[scored] == 1)),
            "sleep_fraction_pyactigraphy": float(np.mean(theirs == 1)),
        }
        row["passed"] &= agree >= SADEH_TARGET
    return row


def compare_counts(reference: dict[str, list[list[int]]]) -> list[dict[str, Any]]:
    from core.actigraphy import activity_counts

    rows = []
    for key, ref in sorted(reference.items(), key=lambda kv: tuple(map(int, kv[0].split("/")))):
        fs, ep = map(int, key.split("/"))
        theirs = np.asarray(ref, dtype=np.int64).reshape(-1, 3)
        mine = activity_counts(raw_signal(fs), fs, ep)
        same_shape = mine.shape == theirs.shape
        equal = float(np.mean(np.all(mine == theirs, axis=1))) if same_shape else 0.0
        max_diff = int(np.abs(mine - theirs).max()) if same_shape and mine.size else None
        rows.append({"fs": fs, "epoch_s": ep, "epochs": int(theirs.shape[0]),
                     "epochs_identical": equal, "max_abs_diff": max_diff,
                     "total_counts": int(theirs.sum())})
    return rows


# --- reference environment ------------------------------------------------------------------


def _has_reference(python: str) -> bool:
    probe = "import pyActigraphy, pandas; assert int(pandas.__version__.split('.')[0]) < 3"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def _reference_python(explicit: str | None) -> str:
    candidates = [explicit] if explicit else [str(VENV / "bin" / "python"), sys.executable]
    for py in candidates:
        if py and Path(py).exists() and _has_reference(py):
            return py
    raise SystemExit(
        "edge-bench rhythms: no interpreter with pyActigraphy and pandas < 3; "
        "run `edge-bench rhythms setup` first (or pass --reference-python)"
    )


def _run_reference(python: str, what: str, out: Path, names: Sequence[str] = ()) -> Any:
    cmd = [python, "-m", "benchmarks.rhythms", what, *names, "--json-out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"edge-bench rhythms: the reference extraction failed:\n{res.stderr}")
    return json.loads(out.read_text())


def setup(venv: Path) -> None:
    """Create the reference environment: pyActigraphy without its broken dependency."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    subprocess.run([*pip, *REFERENCE_DEPS], check=True)
    subprocess.run([*pip, "--no-deps", *REFERENCE_PINS], check=True)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    stub = Path(site) / "accelerometer"
    stub.mkdir(exist_ok=True)
    (stub / "__init__.py").write_text(
        '"""Stand-in for the accelerometer package: pyActigraphy imports two names from it\n'
        'for its .bba reader only, which this benchmark does not use."""\n')
    body = 'def {0}(*args, **kwargs):\n    raise NotImplementedError("accelerometer stub")\n'
    (stub / "utils.py").write_text(body.format("date_parser"))
    (stub / "summarisation.py").write_text(body.format("imputeMissing"))
    print(f"reference environment ready: {venv}")


# --- report --------------------------------------------------------------------------------


def _pct(v: float) -> str:
    return f"{v:+.2f} %"


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    lines = [
        "# Actigraphy kernel against pyActigraphy and agcounts",
        "",
        f"Command: `{doc['command']}`  ",
        f"Created {doc['created']} on {doc['machine']}; reference: pyActigraphy "
        f"{doc['versions'].get('pyActigraphy')} (pandas {doc['versions'].get('pandas')}).",
        "",
        "Recordings: the real Actiwatch files pyActigraphy ships in `tests/data` (activity "
        "counts as recorded, no mask). Ours: `core.actigraphy` defaults (clock-hour bins for "
        "IS and IV). Targets: RA, L5, M10 within 5 %; IS, IV within 8 %; start times within "
        "30 min; Sadeh epoch agreement ≥ 0.95.",
        "",
        "| recording | epoch | days | IS | IV | RA | L5 | M10 | L5 start | M10 start | Sadeh agreement | targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["recordings"]:
        m = r["measures"]
        sadeh = r.get("sadeh")
        lines.append(
            f"| {r['name']} | {r['epoch_s']} s | {r['days']} | "
            + " | ".join(f"{m[k]['ours']:.4g} vs {m[k]['pyactigraphy']:.4g} ({_pct(m[k]['rel_pct'])})"
                         for k in ("IS", "IV", "RA", "L5", "M10"))
            + f" | {m['L5_start']['ours']} vs {m['L5_start']['pyactigraphy']}"
            f" | {m['M10_start']['ours']} vs {m['M10_start']['pyactigraphy']}"
            + (f" | {sadeh['agreement']:.4f} ({sadeh['epochs']} epochs)" if sadeh else " | – (not 60 s)")
            + f" | {'pass' if r['passed'] else 'FAIL'} |")
    bins_only = [r["name"] for r in doc["recordings"] if not r["passed"] and all(
        abs(m["same_bins_rel_pct"]) <= m["target_pct"]
        for m in (r["measures"][k] for k in TARGETS))
        and all(r["measures"][k]["ok"] for k in ("L5_start", "M10_start"))
        and r.get("sadeh", {"ok": True})["ok"]]
    if bins_only:
        lines += ["", f"{', '.join(bins_only)}: misses a target only through where the hour "
                  "bins fall; with pyActigraphy's bins every measure is within its target "
                  "(next table)."]
    lines += [
        "",
        "## Where the differences come from",
        "",
        "| recording | IS, same hour bins | IS, same bins + ddof=1 | IV, same hour bins | IV, same bins + ddof=1 | Sadeh with pyActigraphy's departures |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["recordings"]:
        m = r["measures"]
        sadeh = r.get("sadeh")
        lines.append(
            f"| {r['name']} | {_pct(m['IS']['same_bins_rel_pct'])} | "
            f"{_pct(m['IS']['same_bins_ddof1_rel_pct'])} | {_pct(m['IV']['same_bins_rel_pct'])} | "
            f"{_pct(m['IV']['same_bins_ddof1_rel_pct'])} | "
            + (f"{sadeh['agreement_with_their_departures']:.4f}" if sadeh else "–") + " |")
    lines += [
        "",
        "- **IS** follows van Someren (1999): population sums, `n·Σ(x̄_h−x̄)² / (p·Σ(x_i−x̄)²)`, "
        "each hour of the day weighted by how often it occurs (the same formula when every "
        "hour occurs equally often; it keeps IS within [0, 1] with partial days). "
        "pyActigraphy divides pandas sample variances (ddof = 1), which is ours × (n−1)/n × "
        "p/(p−1), about +4 %. Applying that factor to ours (column 'same bins + ddof=1') leaves "
        "the partial-hour and partial-day bins at the recording's ends.",
        "- **IV** likewise: pyActigraphy's is ours × (n−1)/n.",
        "- **Hour bins**: ours are clock hours (the same bin is the same hour of the resident's "
        "day, and the hub's daily windows start at midnight); pyActigraphy bins whole hours "
        "from the first epoch and keeps the partial last hour. On a recording that does not "
        "start on the hour this moves IV most (column 'same hour bins' uses pyActigraphy's "
        "bins): IV depends on where the hour edges fall relative to sleep onset and waking.",
        "- **L5, M10, RA** are the same computation (the epoch-resolution 24-h profile, the "
        "window wrapping midnight).",
        "- **Sadeh**: pyActigraphy counts NAT as 50 < x < 100 (the paper: 50 ≤ x < 100) and "
        "takes ln(x+1) of the *next* epoch; emulating those two departures gives the last "
        "column's agreement. Edge epochs (5 at each end) are unscored in ours and excluded.",
        "",
        "## Counts against agcounts",
        "",
        f"Deterministic raw signals ({COUNT_SECONDS} s of rest, walking-like and fidgeting "
        "bouts per rate, `raw_signal()` in `benchmarks/rhythms.py`) through "
        "`core.actigraphy.activity_counts` (numpy only) and agcounts "
        f"{doc['versions'].get('agcounts', '0.2.6')} `get_counts` (scipy).",
        "",
        "| rate | epoch | epochs | identical epochs | max abs diff | total counts |",
        "|---|---|---|---|---|---|",
    ]
    for c in doc["counts"]:
        lines.append(f"| {c['fs']} Hz | {c['epoch_s']} s | {c['epochs']} | "
                     f"{100 * c['epochs_identical']:.1f} % | {c['max_abs_diff']} | "
                     f"{c['total_counts']} |")
    lines += ["", "![relative differences](rhythms.png)", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_plot(doc: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (host extra): no plot", file=sys.stderr)
        return None
    recs = doc["recordings"]
    keys = list(TARGETS)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / len(recs)
    for i, r in enumerate(recs):
        vals = [r["measures"][k]["rel_pct"] for k in keys]
        ax.bar(np.arange(len(keys)) + i * width, vals, width, label=r["name"].split(".")[0])
    for j, k in enumerate(keys):
        t = TARGETS[k]
        ax.hlines([t, -t], j - 0.1, j + 0.9, colors="#cb181d", linestyles="--", linewidth=1)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2)
    ax.set_xticklabels(keys)
    ax.set_ylabel("ours vs pyActigraphy (%)")
    ax.set_title("rhythm measures (dashed: targets)")
    ax.legend(fontsize=7, ncols=2)
    sad = [r for r in recs if "sadeh" in r]
    ax2.bar([r["name"].split(".")[0].replace("example_", "ex") for r in sad],
            [r["sadeh"]["agreement"] for r in sad], color="#3182bd")
    ax2.axhline(SADEH_TARGET, color="#cb181d", linestyle="--", linewidth=1)
    ax2.set_ylim(0.9, 1.0)
    ax2.set_title("Sadeh epoch agreement")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    python = _reference_python(args.reference_python)
    with tempfile.TemporaryDirectory() as tmp:
        ref = _run_reference(python, "extract", Path(tmp) / "ref.json", args.recordings)
    doc = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["edge-bench rhythms", shlex.join(
            sys.argv[2:] if sys.argv[1:2] == ["rhythms"] else sys.argv[1:])]).strip(),
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
        "versions": {**ref["versions"], "agcounts": REFERENCE_PINS[1].split("==")[1]},
        "targets": {"rel_pct": TARGETS, "start_min": START_TARGET_MIN, "sadeh": SADEH_TARGET},
        "recordings": [compare_recording(r) for r in ref["recordings"]],
        "counts": compare_counts(ref["agcounts"]),
    }
    doc["passed"] = all(r["passed"] for r in doc["recordings"])
    return doc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-bench rhythms",
        description="Cross-check core.actigraphy against pyActigraphy (rhythm, Sadeh) and "
                    "agcounts (counts) on real recordings; writes results.{json,md} and a plot.",
        epilog="sub-commands: setup (build the reference environment), fixture (rebuild the "
               "CI fixture); extract is internal (runs in the reference environment).")
    p.add_argument("command", nargs="?", default="run",
                   choices=("run", "setup", "fixture", "extract", "extract-fixture"))
    p.add_argument("recordings", nargs="*", default=list(RECORDINGS),
                   help="pyActigraphy test files (default: " + ", ".join(RECORDINGS) + ")")
    p.add_argument("--out", type=Path, default=OUT_DIR, help=f"results folder (default {OUT_DIR})")
    p.add_argument("--reference-python", help="an interpreter with pyActigraphy (default: "
                   f"{VENV}/bin/python, else this one)")
    p.add_argument("--venv", type=Path, default=VENV, help="setup: where to build it")
    p.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not args.recordings:
        args.recordings = list(RECORDINGS)
    if args.command == "extract":
        args.json_out.write_text(json.dumps(extract(args.recordings)))
        return 0
    if args.command == "extract-fixture":
        args.json_out.write_text(json.dumps(extract_fixture()))
        return 0
    if args.command == "setup":
        setup(args.venv)
        return 0
    if args.command == "fixture":
        python = _reference_python(args.reference_python)
        with tempfile.TemporaryDirectory() as tmp:
            doc = _run_reference(python, "extract-fixture", Path(tmp) / "fx.json")
        write_fixture(doc, FIXTURE_DIR)
        print(f"wrote {FIXTURE_DIR}")
        return 0
    doc = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    write_plot(doc, args.out / "rhythms.png")
    write_markdown(doc, args.out / "results.md")
    for r in doc["recordings"]:
        m = r["measures"]
        print(f"{r['name']:24s} " + "  ".join(f"{k} {m[k]['rel_pct']:+.2f}%" for k in TARGETS)
              + (f"  Sadeh {r['sadeh']['agreement']:.4f}" if "sadeh" in r else "")
              + ("  pass" if r["passed"] else "  FAIL"))
    print(f"wrote {args.out / 'results.md'}")
    return 0 if doc["passed"] else 1


def write_fixture(doc: dict[str, Any], folder: Path) -> None:
    """``<name>.csv`` (time, activity, pyActigraphy's Sadeh), ``<name>.json`` (its measures)
    and ``agcounts_reference.json`` (agcounts' counts of :func:`raw_signal` per rate/epoch)."""
    from datetime import datetime, timedelta

    folder.mkdir(parents=True, exist_ok=True)
    stem = "pyactigraphy_" + doc["name"].split(".")[0].lower()
    t0 = datetime.fromisoformat(doc["start"])
    sadeh = doc["pyactigraphy"].pop("sadeh")
    with (folder / f"{stem}.csv").open("w", encoding="utf-8") as f:
        f.write("time,activity,pyactigraphy_sadeh\n")
        for i, (a, s) in enumerate(zip(doc["activity"], sadeh, strict=True)):
            t = t0 + timedelta(seconds=i * doc["epoch_s"])
            f.write(f"{t.isoformat()},{int(a)},{s}\n")
    counts = doc.pop("agcounts")
    meta = {k: v for k, v in doc.items() if k != "activity"}
    (folder / f"{stem}.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    (folder / "agcounts_reference.json").write_text(json.dumps({
        "produced_by": "edge-bench rhythms fixture: agcounts "
                       f"{REFERENCE_PINS[1].split('==')[1]} get_counts(raw_signal(fs), fs, epoch)"
                       " with raw_signal from benchmarks/rhythms.py",
        "seconds": COUNT_SECONDS,
        "counts": counts,
    }) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
