"""The hub never needs torch or onnx: the daemon and the engines run with those imports made to fail.

The CLI runs in a fresh interpreter whose import system refuses every host-only package
(torch, onnx, onnxscript, litert_torch, scipy, matplotlib, neurokit2, tensorflow, jax), and
Flower and Ray, which a hub has only with the ``fleet`` extra and loads only with ``--fleet``; it
must start, decide on the real engines and exit cleanly, and none of them may be loaded.
Likewise loading a real exported bundle (directory and archive, signed) and running every
format of it. The kernel's own import rules are in tests/unit/core/test_kernel_rules.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.daemon import REPO, db_rows, run_cli, toy_bundle

pytestmark = pytest.mark.slow

BLOCKED = ("torch", "onnx", "onnxscript", "litert_torch", "scipy", "matplotlib", "neurokit2",
           "tensorflow", "jax", "flwr", "ray")

PRELUDE = f"""
import atexit, importlib.abc, sys
BLOCKED = {BLOCKED!r}
attempts = []
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"{{name}} is blocked: the hub must not need it")
        return None
sys.meta_path.insert(0, Block())
def report():
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("NO_TORCH_REPORT " + __import__("json").dumps({{"loaded": loaded,
          "attempts": sorted(set(attempts))}}), file=sys.stderr)
atexit.register(report)
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The session's exported bundle (tests/fakes/runs.py; host only)."""
    from tests.fakes.runs import exported_bundle

    return exported_bundle(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


@pytest.mark.parametrize("backend", ["auto", "onnx", "tflite"])
def test_daemon_runs_with_torch_and_onnx_imports_failing(bundle: Path, tmp_path: Path,
                                                         backend: str) -> None:
    p = run_cli(["--device", "sim", "--bundle", str(bundle), "--backend", backend,
                 "--speed", "200", "--duration", "3", "--db", str(tmp_path / "edge.db"),
                 "--state-dir", str(tmp_path / "s"), "--status", "off"], prelude=PRELUDE)
    assert p.returncode == 0, p.stderr
    (line,) = [x for x in p.stderr.splitlines() if x.startswith("NO_TORCH_REPORT ")]
    report = json.loads(line.removeprefix("NO_TORCH_REPORT "))
    assert report["loaded"] == []
    rows = db_rows(tmp_path / "edge.db")
    assert len(rows) > 20
    if backend != "auto":
        assert f"engine {backend}:" in p.stderr


def test_the_blocker_really_blocks() -> None:
    """The prelude is what makes the test above able to fail."""
    p = run_cli(["--help"], prelude=PRELUDE + "\nimport torch\n")
    assert p.returncode != 0 and "torch is blocked" in p.stderr


HUB_SCRIPT = """
import builtins, sys
real_import = builtins.__import__
BLOCKED = ("torch", "onnx", "onnxscript", "litert_torch", "scipy", "matplotlib", "train", "export")

def guarded(name, *args, **kwargs):
    if name.split(".")[0] in BLOCKED:
        raise ImportError(f"hub must not import {name}")
    return real_import(name, *args, **kwargs)

builtins.__import__ = guarded
import numpy as np
from edge.bundle import load_bundle
from edge.engines import open_engine

for path in sys.argv[1:]:
    with load_bundle(path, trusted_keys=[sys.argv[1] + "/../keys/export.pub.pem"]) as b:
        with open_engine(b, "auto") as engine:
            y = engine.run(np.zeros((3, b.contract.input_length), np.float32))
        for backend, precision in (("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8")):
            with open_engine(b, backend, precision) as e:
                assert e.run(np.zeros((1, b.contract.input_length), np.float32)).shape == (1, 3)
    print("ran", engine.key, y.shape)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("leaked", leaked)
"""


def test_hub_path_never_imports_torch_or_onnx(exported: Any) -> None:
    """Load (dir and .tar, signed), auto-select and run every format with torch/onnx
    imports made to fail: the hub code path must not need them."""
    bundle = exported.bundle_dir
    proc = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT, str(bundle), str(exported.archive)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("ran ") for line in lines) == 2
    assert "leaked []" in lines
