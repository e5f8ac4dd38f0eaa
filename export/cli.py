"""``edge-export``: turn a training run into a model bundle a hub can verify and run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from export.pipeline import ALL_FORMATS, DEFAULT_CALIB_SIZE, ExportOptions

__all__ = ["main"]

EPILOG = """\
examples:
  edge-export runs/demo-run --out bundles/demo     # signed with this host's key (made once)
  edge-export runs/demo-run --out bundles/demo --archive --sign keys/export.pem
  edge-export sign bundles/demo                    # (re)sign an existing bundle, host key
  edge-export sign edge/demo_bundle --key export/demo_signing_key.pem
  edge-export runs/demo-run --out b --formats tflite_int8,onnx_fp32 --calib-method percentile
  edge-export --keygen keys/export      # writes keys/export.pem (private) + keys/export.pub.pem

The bundle holds manifest.json (hashes, input contract, quantization, metrics), the model
files, quant_report.md/.json and plots/. Read quant_report.md before deploying int8.
Bundles are signed by default with ~/.config/wearable-edge/bundle-signing.pem (made on
first use); a hub runs only signed bundles and trusts the public half when it is in
/etc/wearable-edge/trusted-keys/ or named by --trusted-key (the same user on the same
machine is trusted without that).
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
    p.add_argument("--out", type=Path, help="bundle directory to create (new or empty; see --force)")
    p.add_argument("--force", action="store_true",
                   help="replace a non-empty --out (the old bundle is kept until the new one is "
                        "complete, and put back if the export fails)")
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
    p.add_argument("--sign", type=Path, metavar="KEY",
                   help="Ed25519 PEM private key to sign with (default: this host's key, "
                        "~/.config/wearable-edge/bundle-signing.pem, made on first use)")
    p.add_argument("--no-sign", action="store_true",
                   help="write no manifest.sig (a hub then refuses the bundle unless it runs "
                        "with --allow-unsigned)")
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


def _sign_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-export sign",
        description="Sign an existing bundle directory: write BUNDLE/manifest.sig over its "
                    "manifest (which holds every model file's sha256).")
    p.add_argument("bundle", type=Path, help="bundle directory (has manifest.json)")
    p.add_argument("--key", type=Path, metavar="FILE",
                   help="Ed25519 PEM private key (default: this host's key, made on first use)")
    return p


def _sign(argv: Sequence[str]) -> int:
    from core.errors import WearableEdgeError
    from edge.bundle import load_bundle
    from export.signing import host_signing_key, sign_bundle

    args = _sign_parser().parse_args(argv)
    try:
        key, made = (args.key, False) if args.key else host_signing_key()
        with load_bundle(args.bundle):  # sign only what verifies: hashes and files intact
            pass
        kid = sign_bundle(args.bundle, key)
    except WearableEdgeError as e:
        print(f"edge-export sign: {e}", file=sys.stderr)  # noqa: T201 - a CLI's error line
        return 1
    if made:
        print(f"made this host's signing key {key} (its public half: "  # noqa: T201
              f"{key.with_name('bundle-signing.pub.pem')})")
    print(f"signed {args.bundle} with key id {kid} ({key})")  # noqa: T201
    return 0


# What the libraries export uses say about themselves (ONNX Runtime's quantizer on the root
# logger, torch's exporter, torchao, LiteRT's converter in C++) is for their developers; a
# person exporting a bundle reads our steps and verdicts. -v lets it all through.
_CHATTY_ENV: Final = {"TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_minloglevel": "2",
                      "ABSL_MIN_LOG_LEVEL": "2", "TORCH_CPP_LOG_LEVEL": "ERROR"}


class _OursOrSerious(logging.Filter):
    """Keep our own records and any library's errors; drop libraries' info and warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return record.name.split(".")[0] in ("export", "train", "core", "edge", "edge-export")


def quiet_third_parties() -> None:
    """Silence third-party log lines below ERROR, and the C++ loggers that read the
    environment at import (set before litert/torch are imported, which happens later)."""
    for k, v in _CHATTY_ENV.items():
        os.environ.setdefault(k, v)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_OursOrSerious())
    # torch's loggers have their own handler (no propagation to ours): quiet them by level
    for name in ("torch.onnx", "torch.export", "torch._export", "torchao", "onnxscript",
                 "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(torch|torchao|onnxscript|onnxruntime|litert_torch)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sign"]:
        return _sign(argv[1:])
    args = _parser().parse_args(argv)
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)  # the CLI's own stdout
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        quiet_third_parties()
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
    sign_key, made_key = args.sign, False
    if sign_key is None and not args.no_sign:
        from core.errors import WearableEdgeError
        from export.signing import host_signing_key

        try:
            sign_key, made_key = host_signing_key()
        except WearableEdgeError as e:
            out.print(f"edge-export failed: {e}")
            return 1
        if made_key:
            out.print(f"made this host's signing key {sign_key} (once; keep it)")
    options = ExportOptions(
        formats=[s.strip() for s in args.formats.split(",") if s.strip()],
        calib_size=args.calib_size,
        calib_method=args.calib_method,
        exclude_ops=exclude,
        sign_key=sign_key,
        archive=args.archive,
        model_id=args.model_id,
        model_version=args.model_version,
        plots=not args.no_plots,
    )

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from core.errors import WearableEdgeError
    from core.outdir import fresh_output_dir
    from export.pipeline import export_run

    console = Console(stderr=True, soft_wrap=True)  # an error is one line, never wrapped
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            current: list[int] = []

            def step(name: str) -> None:
                if current:
                    progress.update(current[0], completed=1, total=1)
                current[:] = [progress.add_task(name, total=None)]

            with fresh_output_dir(args.out, force=args.force):  # nothing left on failure
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
