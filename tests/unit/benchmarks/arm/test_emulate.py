"""benchmarks.arm.emulate: the bundle under aarch64 emulation gives the x86 classes (opt-in)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.arm
def test_arm64_emulation_gives_x86_logits(small_bundle: tuple[Path, Path]) -> None:
    """Opt-in (WEARABLE_EDGE_ARM=1); needs `python -m benchmarks.arm.emulate setup` first."""
    from benchmarks.arm import emulate

    _, bundle = small_bundle
    ok, result = emulate.check(bundle)
    assert set(result["arm"]) == set(emulate.CPUS)
    for cpu, res in result["arm"].items():
        assert {r["format"] for r in res["formats"]} == {"onnx_fp32", "tflite_fp32"}, cpu
        for r in res["formats"]:
            assert r["ok"], (cpu, r)
            assert r["same_classes"], (cpu, r)
    assert ok
