"""The hub never needs torch or onnx: the daemon runs with those imports made to fail.

The CLI runs in a fresh interpreter whose import system refuses every host-only package
(torch, onnx, onnxscript, litert_torch, scipy, matplotlib, neurokit2, tensorflow, jax); it
must start, decide on the real engines and exit cleanly, and none of them may be loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.daemon import db_rows, run_cli, toy_bundle

pytestmark = pytest.mark.slow

BLOCKED = ("torch", "onnx", "onnxscript", "litert_torch", "scipy", "matplotlib", "neurokit2",
           "tensorflow", "jax")

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
