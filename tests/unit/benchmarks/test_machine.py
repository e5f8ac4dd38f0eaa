"""benchmarks.machine: the machine description and its label."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import machine


def test_machine_description_has_what_the_report_prints() -> None:
    m = machine.describe_machine()
    for key in ("cpu_model", "arch", "logical_cpus", "clock", "isa", "libraries", "load_average"):
        assert key in m
    assert m["libraries"]["numpy"] == np.__version__
    label = machine.machine_label(m)
    assert label.startswith(m["arch"] + "-") and label.endswith("cpu")
    pi = {"cpu_model": "Cortex-A72 (Raspberry Pi 4 Model B Rev 1.4)", "arch": "aarch64",
          "logical_cpus": 4}
    assert machine.machine_label(pi) == "aarch64-cortex-a72-raspberry-pi-4-model-b-4cpu"
    assert machine.machine_label({**pi, "isa": ["asimd"]}) == (
        "aarch64-cortex-a72-raspberry-pi-4-model-b-neon-4cpu")


def test_cpus_with_one_name_but_other_int8_kernels_get_other_folders() -> None:
    epyc = {"cpu_model": "AMD EPYC", "arch": "x86_64", "logical_cpus": 2}
    vnni = {**epyc, "isa": ["sse4_2", "fma", "avx2", "avx512f", "avx512_vnni"]}
    avx2 = {**epyc, "isa": ["sse4_2", "fma", "avx2"]}
    assert machine.machine_label(vnni) == "x86_64-amd-epyc-avx512vnni-2cpu"
    assert machine.machine_label(avx2) == "x86_64-amd-epyc-avx2-2cpu"
    assert not machine.same_machine(vnni, avx2) and machine.same_machine(avx2, dict(avx2))
    pi5 = {"cpu_model": "Cortex-A76", "arch": "aarch64", "logical_cpus": 4,
           "isa": ["asimd", "asimddp"]}
    assert machine.machine_label(pi5).endswith("-dotprod-4cpu")


def test_bench_refuses_another_machines_folder_before_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.cli import main

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    out = tmp_path / "results"
    out.mkdir()
    theirs = {"cpu_model": "Some Other CPU", "arch": "x86_64", "logical_cpus": 64,
              "isa": ["avx512_vnni"]}
    (out / "bench.json").write_text(json.dumps({"machine": theirs}))
    with pytest.raises(SystemExit) as e:
        main(["--bundle", str(bundle), "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "holds results of another machine (Some Other CPU, 64 CPUs" in err and "--force" in err
    assert json.loads((out / "bench.json").read_text()) == {"machine": theirs}  # untouched
