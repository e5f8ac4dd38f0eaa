"""``edge-export``: turn a training run into a model bundle a hub can verify and run."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from export.pipeline import ALL_FORMATS, DEFAULT_CALIB_SIZE, ExportOptions

__all__ = ["main"]

EPILOG = """\
examples:
  edge-export runs/demo-run --out bundles/demo
  edge-export runs/demo-run --out bundles/demo --archive --sign keys/export.pem
  edge-export runs/demo-run --out b --formats tflite_int8,onnx_fp32 --calib-method percentile
  edge-export --keygen keys/export      # writes keys/export.pem (private) + keys/export.pub.pem

The bundle holds manifest.json (hashes, input contract, quantization, metrics), the model
files, quant_report.md/.json and plots/. Read quant_report.md before deploying int8.
A hub trusts a signed bundle when configured with the .pub.pem file.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-export",
        description=(
            "Export a trained student (RUN from `edge-train fit`) to ONNX and TFLite in fp32 and "
            "int8, measure every format against the PyTorch model on held-out people, and write "
            "a verified bundle with a quantization report."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", nargs="?", type=Path, help="training run directory (has student.pt)")
    p.add_argument("--out", type=Path, help="bundle directory to create (must be empty)")
    p.add_argument(
        "--formats",
        default=",".join(ALL_FORMATS),
        help=f"comma-separated subset of {', '.join(ALL_FORMATS)} (default: all)",
    )
    p.add_argument(
        "--calib-size",
        type=int,
        default=DEFAULT_CALIB_SIZE,
        metavar="N",
        help=f"training windows used to calibrate int8 ranges (default {DEFAULT_CALIB_SIZE})",
    )
    p.add_argument(
        "--calib-method",
        choices=("auto", "minmax", "entropy", "percentile"),
        default="auto",
        help="ONNX Runtime calibration method; auto (default) measures all three on the "
        "calibration windows and keeps the one that agrees best with fp32",
    )
    p.add_argument(
        "--exclude-ops",
        default=None,
        metavar="OPS",
        help="ONNX op types to keep in float, e.g. LayerNormalization,Softmax; StdPool names "
        "the conv stems' std-pooling chain (square, mean, +eps, sqrt); 'none' keeps none; "
        "default: measure candidate sets and keep the best",
    )
    p.add_argument("--sign", type=Path, metavar="KEY", help="Ed25519 PEM private key: write manifest.sig")
    p.add_argument("--archive", action="store_true", help="also write OUT.tar (one file to copy to a hub)")
    p.add_argument("--model-id", default=None,
                   help="model name in the manifest (default: wearable-edge-student, or "
                        "wearable-edge-hr-student for a model of RR intervals)")
    p.add_argument("--model-version", default=None, help="default: export date + weights hash")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--keygen",
        type=Path,
        metavar="PREFIX",
        help="generate an Ed25519 key pair PREFIX.pem / PREFIX.pub.pem and exit",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every step")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)  # the CLI's own stdout
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.keygen is not None:
        from export.signing import generate_keypair

        priv = args.keygen.with_suffix(".pem")
        pub = args.keygen.with_suffix(".pub.pem")
        kid = generate_keypair(priv, pub)
        out.print(f"private key {priv} (keep it secret), public key {pub}, key id {kid}")
        return 0
    if args.run is None or args.out is None:
        _parser().error("RUN and --out are required (or use --keygen)")

    exclude: list[str] | None = None
    if args.exclude_ops is not None:
        exclude = [] if args.exclude_ops.lower() == "none" else [
            s.strip() for s in args.exclude_ops.split(",") if s.strip()
        ]
    options = ExportOptions(
        formats=[s.strip() for s in args.formats.split(",") if s.strip()],
        calib_size=args.calib_size,
        calib_method=args.calib_method,
        exclude_ops=exclude,
        sign_key=args.sign,
        archive=args.archive,
        model_id=args.model_id,
        model_version=args.model_version,
        plots=not args.no_plots,
    )

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from core.errors import WearableEdgeError
    from export.pipeline import export_run

    console = Console(stderr=True)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            current: list[int] = []

            def step(name: str) -> None:
                if current:
                    progress.update(current[0], completed=1, total=1)
                current[:] = [progress.add_task(name, total=None)]

            result = export_run(args.run, args.out, options, step=step)
            if current:
                progress.update(current[0], completed=1, total=1)
    except WearableEdgeError as e:
        console.print(f"[red]edge-export failed:[/red] {e}")
        return 1

    report = result.report
    out.print(f"bundle: {result.bundle_dir}")
    if result.archive:
        out.print(f"archive: {result.archive}")
    if result.key_id:
        out.print(f"signed with key id {result.key_id}")
    out.print(f"recommended: {report['recommended']}")
    for key, row in report["formats"].items():
        size = "" if row["size_bytes"] is None else f"{row['size_bytes'] / 1024:7.1f} KB"
        ok = "" if key == "torch_fp32" else ("ok" if row["verdict"]["acceptable"] else "NOT ACCEPTABLE")
        out.print(f"  {key:12s} macro-F1 {row['macro_f1']:.3f}  agreement {row['agreement_vs_fp32']:.2%}"
                  f"  {row['latency_ms']:.3f} ms  {size}  {ok}")
    out.print(f"report: {result.bundle_dir / 'quant_report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
