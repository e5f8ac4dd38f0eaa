"""``edge-train``, the command line of training: synthetic WESAD data, teachers, distilled student.

    edge-train synth --subjects 10 --out runs/data --seed 7
    edge-train fit --dataset wesad --data runs/data --out runs/run1
    edge-train fit --dataset wesad --data runs/data --out runs/quick --quick
    edge-train fit --dataset arrays --data my.npz --out runs/arr

Heavy imports (torch, neurokit2, matplotlib) happen inside the subcommand that needs them,
so ``--help`` is instant. This module and ``train.ui`` (the progress bars) are the only ones
of ``train`` that write to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from train.progress import ProgressFn

__all__ = ["build_parser", "main"]

log = logging.getLogger("train.cli")

EPILOG = """\
examples:
  edge-train synth --subjects 10 --out runs/data --seed 7
  edge-train fit --dataset wesad --data runs/data --out runs/run1
  edge-train fit --dataset wesad --data runs/data --out runs/ci --quick
  edge-train fit --dataset wesad --data WESAD/ --out runs/bin --task binary --set student.steps=800
  edge-train fit --dataset arrays --data archive.npz --out runs/arr
  edge-train fit --dataset ts --data GunPoint/ --out runs/gunpoint
  edge-train fit --dataset wesad --data runs/data --out runs/3seeds --seeds 3 --track mlflow

A run directory holds metrics.json, report.md (+ plots/), config.toml, student.pt,
teachers/*.pt and windows/*.npz; `edge-export RUN` turns it into a hub bundle.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-train",
        description=(
            "Host-side training for wearable-edge: synthetic WESAD-format data, per-modality "
            "and fusion teachers (some see chest sensors the wristband lacks), a compact "
            "wrist-only student distilled from them, and an honest cross-validated report."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "synth",
        help="write a synthetic data set in the WESAD on-disk format (S*/S*.pkl)",
        description=(
            "Generate physiologically plausible synthetic subjects (wrist E4 + chest RespiBAN "
            "signals, WESAD protocol labels) into DIR/S<n>/S<n>.pkl; the WESAD loader reads "
            "them exactly like the real data set. Deterministic for a seed."
        ),
    )
    s.add_argument(
        "--subjects", type=int, default=10, metavar="N", help="number of subjects (default 10)"
    )
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    s.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    s.add_argument(
        "--minutes-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="scale every protocol segment's duration (1.0 = WESAD lengths; 0.2 for quick tests; "
        "the baseline keeps >= 5.5 min for calibration)",
    )
    s.add_argument(
        "--float64",
        action="store_true",
        help="store float64 arrays like the real WESAD files (twice the disk)",
    )
    s.add_argument(
        "--demo-npz",
        type=Path,
        metavar="FILE",
        help="also write the last subject's wrist recording here (.npz, for the simulator)",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")

    c = sub.add_parser(
        "compare",
        help="put finished runs side by side (e.g. the heart-rate and the full-wrist student)",
        description=(
            "Read each RUN's metrics.json and write OUT/comparison.{json,md,png}: per run the "
            "student alone, its best distilled variant, the deployed variant and the best "
            "teachers, macro-F1 mean ± sd over the run's seeds."
        ),
    )
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="edge-train fit run folders")
    c.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write")

    f = sub.add_parser(
        "fit",
        help="cross-validate teachers and students, then train the deployable student",
        description=(
            "Train one teacher per modality group plus a fusion teacher, the wrist-only student "
            "alone and distilled from the teachers (equal / confidence-adaptive weights, "
            "optional ULGM and hints), evaluate every model with the chosen cross-validation, "
            "write RUN/metrics.json and RUN/report.md, then train the deployable student on all "
            "subjects but the held-out one and write RUN/student.pt with its input contract."
        ),
        epilog=(
            "Config: train/configs/default.toml, then quick.toml with --quick, then --config "
            "FILE, then --set overrides (e.g. --set distill.alpha=0.3 --set "
            "student.variants=alone,kd_ca). The config used is written to RUN/config.toml."
        ),
    )
    f.add_argument(
        "--dataset",
        choices=("wesad", "arrays", "ts"),
        required=True,
        help="wesad: a directory of S*/S*.pkl (real or synthetic); arrays: one .npz with X, y"
        "[, groups, split]; ts: a UEA/UCR .ts file, its <Name>_TRAIN.ts/_TEST.ts pair or the "
        "folder holding them",
    )
    f.add_argument(
        "--data", type=Path, required=True, metavar="PATH", help="data directory, .npz or .ts"
    )
    f.add_argument("--out", type=Path, required=True, metavar="RUN",
                   help="run directory to write (new or empty; see --force)")
    f.add_argument("--force", action="store_true",
                   help="replace a non-empty --out (the old run is kept until the new one is "
                        "complete, and put back if training fails)")
    f.add_argument(
        "--config", type=Path, metavar="FILE.toml", help="a TOML config layered over the defaults"
    )
    f.add_argument(
        "--quick", action="store_true", help="CI-sized profile (train/configs/quick.toml)"
    )
    f.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set teachers.steps=100 (repeatable)",
    )
    f.add_argument("--seed", type=int, help="shorthand for --set seed=S")
    f.add_argument("--task", choices=("3class", "binary"), help="shorthand for --set data.task=...")
    f.add_argument(
        "--cv",
        choices=("auto", "loso", "forward", "fixed"),
        help="shorthand for --set cv.kind=... (default auto: the data's own train/test split "
        "if it has one, else leave-one-subject-out)",
    )
    f.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="evaluate with N seeds (seed .. seed+N-1): mean ± sd per model, distilled vs alone "
        "paired per fold and seed with a Wilcoxon signed-rank test; the deployed variant is "
        "chosen on the mean (default 1)",
    )
    f.add_argument(
        "--track",
        choices=("mlflow",),
        help="also log the run to MLflow (local ./mlruns or MLFLOW_TRACKING_URI; needs the "
        "'track' extra). Every run writes RUN/run.json either way",
    )
    f.add_argument(
        "--no-progress", action="store_true", help="no progress bars (also when not a TTY)"
    )
    return p


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[ProgressFn]:
    """rich bars on the terminal when ``enabled``, else a sink that ignores every event."""
    if not enabled:
        from train.progress import no_progress

        yield no_progress
        return
    from train.ui import RichProgress

    with RichProgress() as bars:
        yield bars


def _synth(args: argparse.Namespace, progress: bool) -> int:
    from train.synth import generate_dataset, write_demo_recording

    t0 = time.perf_counter()
    with _progress(progress) as report:
        paths = generate_dataset(
            args.out,
            args.subjects,
            args.seed,
            minutes_scale=args.minutes_scale,
            progress=report,
            dtype="float64" if args.float64 else "float32",
        )
    print(f"wrote {len(paths)} subjects to {args.out} in {time.perf_counter() - t0:.1f} s")  # noqa: T201
    if args.demo_npz is not None:
        print(f"demo recording: {write_demo_recording(paths[-1], args.demo_npz)}")  # noqa: T201
    return 0


def _fit(args: argparse.Namespace, progress: bool) -> int:
    from train.config import load_config
    from train.errors import TrainError
    from train.fit import fit
    from train.tracking import make_tracker

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.task is not None:
        overrides.append(f"data.task={args.task}")
    if args.cv is not None:
        overrides.append(f"cv.kind={args.cv}")
    cfg = load_config(args.config, quick=args.quick, overrides=overrides)
    if args.seeds < 1:
        raise TrainError(f"--seeds must be at least 1, got {args.seeds}")
    tracker = make_tracker(args.track)
    from core.outdir import fresh_output_dir

    # an existing run is never overwritten by accident; a failed fit leaves no folder behind
    with fresh_output_dir(args.out, force=args.force), _progress(progress) as report:
        result = fit(args.dataset, args.data, args.out, cfg, progress=report, seeds=args.seeds,
                     tracker=tracker)  # fmt: skip
    print(result.summary())  # noqa: T201
    return 0


def _compare(args: argparse.Namespace) -> int:
    from train.compare import render, write_comparison

    doc = write_comparison(args.runs, args.out)
    print(render(doc))  # noqa: T201
    print(f"wrote {args.out / 'comparison.md'}")  # noqa: T201
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    progress = sys.stderr.isatty() and not args.no_progress
    from core.errors import WearableEdgeError

    try:
        if args.command == "synth":
            return _synth(args, progress)
        if args.command == "compare":
            return _compare(args)
        return _fit(args, progress)
    except WearableEdgeError as e:
        # expected failures (bad config key, missing file, malformed data): one clear line
        print(f"edge-train {args.command}: error: {e}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # noqa: T201
        return 130


if __name__ == "__main__":
    sys.exit(main())
