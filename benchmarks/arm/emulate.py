"""Opt-in aarch64 check: the hub install on an emulated arm64 Python gives x86's logits.

Functional, not a timing. ``setup`` builds, once, an arm64 Debian root with Python 3.11
(``debootstrap --foreign`` downloads and unpacks the arm64 packages; nothing arm64 runs
during it) and installs the hub's dependencies into it from PyPI as aarch64 wheels (``pip
install --target --platform manylinux*_aarch64``, run by the host's pip). ``check`` then runs
the same script under ``qemu-aarch64-static -L ROOT`` and on the host: every format of a
bundle on the same seeded windows, and compares the logits.

    python -m benchmarks.arm.emulate setup                 # root, ~1 GB, a few minutes
    python -m benchmarks.arm.emulate check --bundle B      # prints the comparison, exit 1 on mismatch

Tolerances: fp32 formats must agree to ``FP32_ATOL`` (different SIMD kernels sum in different
orders); int8 formats to one output quantization step and the same class (x86 VNNI and Arm
requantize with different rounding). Bit-identical results are reported as such.

Emulated CPUs: the Pi 4's Cortex-A72 (no int8 dot product) and the Pi 5's Cortex-A76 (SDOT),
so the check exercises the kernels a Pi actually selects. Not qemu's default ``max`` CPU: it
advertises SVE2/I8MM/SME, XNNPACK then picks int8 kernels that qemu 7.2 mis-executes, and
tflite_int8 logits come out wrong (the same wheel gives x86's logits on A72/A76 models).

Why pinned runtimes: Debian 12's qemu-user (7.2) crashes (SIGSEGV at import or interpreter
creation) on onnxruntime >= 1.28 and ai-edge-litert >= 2.2, whose start-up CPU probing uses
what that emulator does not implement; the newest releases that run under it are pinned
(:data:`EMULATION_PINS`), still within pyproject's bounds. Real Arm hardware is not affected
by this; run edge-bench on a Pi for the current releases (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = ["ARM_ROOT", "CPUS", "EMULATION_PINS", "arm_python", "check", "compare", "run_logits", "setup"]

REPO: Final = Path(__file__).resolve().parents[2]
ARM_ROOT: Final = Path(os.environ.get("WEARABLE_EDGE_ARM_ROOT", "/var/tmp/wearable-edge-arm64"))
SUITE: Final = "bookworm"  # Debian 12: Python 3.11, the project's minimum, as on Raspberry Pi OS 12
MIRROR: Final = "http://deb.debian.org/debian"
PYTHON: Final = "usr/bin/python3.11"
SITE: Final = "opt/hub-site"  # where the aarch64 wheels are unpacked inside the root
# Newest releases that start under qemu-user 7.2 (see the module docstring); bisected.
EMULATION_PINS: Final = {"onnxruntime": "1.27.0", "ai-edge-litert": "2.1.6"}
WHEEL_PLATFORMS: Final = ("manylinux_2_17_aarch64", "manylinux2014_aarch64",
                          "manylinux_2_27_aarch64", "manylinux_2_28_aarch64")
CPUS: Final = ("cortex-a72", "cortex-a76")  # Raspberry Pi 4 and Pi 5 cores (qemu -cpu names)
FP32_ATOL: Final = 1e-4  # logits are O(1-10); reassociated fp32 sums differ by ~1e-6 relative
N_WINDOWS: Final = 8  # seeded windows compared per format
SEED: Final = 0
CHILD_TIMEOUT_S: Final = 1800.0  # emulated imports take ~10 s; a generous bound, not a wait

# Runs on both sides (the host venv, and the emulated arm64 Python): stdlib + numpy + edge.
_LOGITS_SCRIPT: Final = """
import json, platform, sys
import numpy as np
from edge.bundle import load_bundle
from edge.engines import open_file
bundle = load_bundle(sys.argv[1])
n, seed = int(sys.argv[2]), int(sys.argv[3])
x = np.clip(np.random.default_rng(seed).standard_normal((n, bundle.contract.input_length)),
            -10, 10).astype(np.float32)
out = {"machine": platform.machine(), "versions": {}, "logits": {}, "errors": {}}
for key in sorted(bundle.files):
    try:
        with open_file(bundle, key, threads=1) as engine:
            out["logits"][key] = engine.run(x).tolist()
    except Exception as e:  # reported, compared as a failure by the host
        out["errors"][key] = f"{type(e).__name__}: {e}"
import importlib.metadata as md
for dist in ("numpy", "onnxruntime", "ai-edge-litert", "tflite-runtime"):
    try:
        out["versions"][dist] = md.version(dist)
    except md.PackageNotFoundError:
        pass
print("\\n" + json.dumps(out))
"""


def arm_python(root: Path = ARM_ROOT, cpu: str = CPUS[0]) -> list[str]:
    """The command that runs the emulated arm64 interpreter on a ``cpu`` model."""
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if qemu is None:
        raise FileNotFoundError("qemu-aarch64-static not found: run `python -m "
                                "benchmarks.arm.emulate setup` (apt-get install qemu-user-static)")
    if not (root / PYTHON).is_file():
        raise FileNotFoundError(f"no arm64 Python at {root / PYTHON}: run `python -m "
                                "benchmarks.arm.emulate setup`")
    return [qemu, "-cpu", cpu, "-L", str(root), str(root / PYTHON)]


def _hub_requirements() -> list[str]:
    """pyproject's base dependencies (the hub install), with the emulation pins applied."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    out = []
    for d in deps:
        name = d.split(";")[0].strip()
        base = name.split(">")[0].split("=")[0].split("<")[0].strip()
        out.append(f"{base}=={EMULATION_PINS[base]}" if base in EMULATION_PINS else name)
    return out


def _run(cmd: Sequence[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(list(cmd), check=True)


def setup(root: Path = ARM_ROOT) -> None:
    """Install qemu-user-static and debootstrap (apt), build the arm64 root, add the wheels."""
    missing = [p for p, exe in (("qemu-user-static", "qemu-aarch64-static"),
                                ("debootstrap", "debootstrap")) if shutil.which(exe) is None]
    if missing:
        _run(["apt-get", "install", "-y", "-q", *missing])
    if not (root / PYTHON).is_file():
        if not (root / "debootstrap").is_dir():
            _run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
                  "--include=python3.11,libpython3.11-stdlib,python3-minimal", SUITE, str(root),
                  MIRROR])
        # the second stage would run arm64 maintainer scripts; Python needs only the files
        for deb in sorted((root / "var/cache/apt/archives").glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    site = root / SITE
    _run([sys.executable, "-m", "pip", "install", "-q", "--upgrade", "--target", str(site),
          "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
          "--only-binary=:all:", *(a for p in WHEEL_PLATFORMS for a in ("--platform", p)),
          *_hub_requirements()])
    print(f"arm64 root ready at {root}")


def run_logits(bundle: Path, *, emulated: bool, root: Path = ARM_ROOT,
               cpu: str = CPUS[0]) -> dict[str, Any]:
    """Logits of every format on the seeded windows, on the host or under qemu."""
    cmd = (arm_python(root, cpu) if emulated else [sys.executable])
    cmd = [*cmd, "-c", _LOGITS_SCRIPT, str(bundle), str(N_WINDOWS), str(SEED)]
    env = dict(os.environ)
    paths = [str(root / SITE), str(REPO)] if emulated else [str(REPO)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S,
                          check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{'arm64' if emulated else 'host'} run exited {proc.returncode}: {tail}")
    return json.loads(lines[-1])


def compare(host: dict[str, Any], arm: dict[str, Any], bundle: Path) -> list[dict[str, Any]]:
    """One row per format: max |difference|, tolerance, same classes, verdict."""
    from edge.bundle import load_bundle

    b = load_bundle(bundle)
    rows = []
    for key in sorted(b.files):
        entry = b.entry(key)
        row: dict[str, Any] = {"format": key}
        if key in arm.get("errors", {}) or key in host.get("errors", {}):
            row.update(ok=False, error=arm["errors"].get(key) or host["errors"].get(key))
            rows.append(row)
            continue
        x, y = np.asarray(host["logits"][key]), np.asarray(arm["logits"][key])
        diff = float(np.abs(x - y).max())
        if entry.precision == "int8":
            # one step of the output's quantization (int8 output), else of a typical logit
            step = entry.output.scale if entry.output.scale else 0.05
            tol = float(step) * 1.0001
        else:
            tol = FP32_ATOL
        same = bool((x.argmax(1) == y.argmax(1)).all())
        row.update(max_abs_diff=diff, tolerance=tol, bit_identical=bool(np.array_equal(x, y)),
                   same_classes=same, ok=diff <= tol and same)
        rows.append(row)
    return rows


def check(bundle: Path, root: Path = ARM_ROOT,
          cpus: Sequence[str] = CPUS) -> tuple[bool, dict[str, Any]]:
    """Compare every format's logits on each emulated ``cpus`` model with this machine's."""
    host = run_logits(bundle, emulated=False, root=root)
    report: dict[str, Any] = {"host": {"machine": host["machine"], "versions": host["versions"]},
                              "arm": {}}
    ok = True
    for cpu in cpus:
        arm = run_logits(bundle, emulated=True, root=root, cpu=cpu)
        if arm.get("machine") != "aarch64":
            raise RuntimeError(f"the emulated Python reports {arm.get('machine')!r}, not aarch64")
        rows = compare(host, arm, bundle)
        report["arm"][cpu] = {"versions": arm["versions"], "formats": rows}
        ok = ok and bool(rows) and all(r["ok"] for r in rows)
    return ok, report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.arm.emulate",
        description="aarch64 emulation check: the hub install under qemu-user gives x86's logits.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup", help="install qemu-user-static, build the arm64 root and wheels")
    s.add_argument("--root", type=Path, default=ARM_ROOT)
    c = sub.add_parser("check", help="compare every format's logits, arm64 vs this machine")
    c.add_argument("--bundle", type=Path, default=REPO / "edge" / "demo_bundle")
    c.add_argument("--root", type=Path, default=ARM_ROOT)
    c.add_argument("--json", type=Path, help="also write the comparison here")
    args = p.parse_args(argv)
    if args.cmd == "setup":
        setup(args.root)
        return 0
    ok, report = check(args.bundle, args.root)
    print(f"host ({report['host']['machine']}): {report['host']['versions']}")
    for cpu, res in report["arm"].items():
        print(f"arm64 {cpu}: {res['versions']}")
        for r in res["formats"]:
            if "error" in r:
                print(f"  {r['format']:12s} FAILED: {r['error']}")
                continue
            print(f"  {r['format']:12s} max|Δ| {r['max_abs_diff']:.3g} (tol {r['tolerance']:.3g})"
                  f"{' bit-identical' if r['bit_identical'] else ''}"
                  f"{'' if r['same_classes'] else ' CLASSES DIFFER'}"
                  f" -> {'ok' if r['ok'] else 'MISMATCH'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
