"""benchmarks.machine: the machine description and its label."""

from __future__ import annotations

import numpy as np

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
