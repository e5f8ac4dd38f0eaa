"""The benchmark tests: smoke tests of edge-bench's code paths with tiny run counts.

No timing assertions: speed goals live in benchmarks/results/ (see benchmarks/README.md).
Figures measured here are only checked for being present, finite and consistent.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="package")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real RUN (tests/fakes/runs.py) with one teacher, exported to a real bundle (once for
    every benchmark test module)."""
    torch = pytest.importorskip("torch")
    from export.pipeline import ExportOptions, export_run
    from export.signing import DEMO_PRIVATE_KEY
    from tests.fakes.runs import build_run
    from train.teachers import TeacherConfig, build_teacher

    root = tmp_path_factory.mktemp("bench")
    run = build_run(root / "run", steps=100)
    cfg = TeacherConfig.from_contract(run.contract, stem_rate_hz=4.0)
    teacher = build_teacher(cfg.to_dict())
    (root / "run" / "teachers").mkdir()
    torch.save({"model_args": cfg.to_dict(), "contract": run.contract.to_dict(),
                "state_dict": teacher.state_dict()}, root / "run" / "teachers" / "wrist.pt")
    export_run(root / "run", root / "bundle",
               ExportOptions(formats=["onnx_fp32", "tflite_fp32"], plots=False,
                             compare_methods=False, latency_runs=3,
                             sign_key=DEMO_PRIVATE_KEY))  # the hub trusts it by default
    return root / "run", root / "bundle"
