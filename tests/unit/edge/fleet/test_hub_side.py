"""A hub joins a federation with numpy and flwr only: the hub's fleet modules import with
torch, onnx, matplotlib, Ray and our host packages made to fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]

SCRIPT = """
import builtins, sys
real_import = builtins.__import__
BLOCKED = ("torch", "onnx", "onnxscript", "scipy", "matplotlib", "ray", "train", "export")

def guarded(name, *args, **kwargs):
    if name.split(".")[0] in BLOCKED:
        raise ImportError(f"hub must not import {name}")
    return real_import(name, *args, **kwargs)

builtins.__import__ = guarded
MODULES = sys.argv[1:]
for m in MODULES:
    __import__(m)
leaked = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
print("leaked", leaked)
"""

HUB_MODULES = [
    "edge.personal.head",
    "edge.fleet.client",
    "edge.fleet.dp",
    "edge.fleet.server",
    "edge.fleet.pseudonym",
    "edge.fleet.deploy",
    "edge.fleet.cli",
]


def run(modules: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *modules],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_hub_side_of_the_fleet_needs_no_host_package() -> None:
    p = run(HUB_MODULES)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "leaked []" in p.stdout


def test_the_guard_really_blocks() -> None:
    p = run(["train.fleet_data"])
    assert p.returncode != 0 and "hub must not import" in p.stderr
