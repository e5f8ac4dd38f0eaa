"""edge.hrv: the hub's public name for the kernel's HRV and RR cleaning (one implementation)."""

from __future__ import annotations

import doctest

import core.hrv
import core.rr
import edge.hrv


def test_edge_hrv_re_exports_the_kernel_and_nothing_else() -> None:
    assert edge.hrv.hrv_features is core.hrv.hrv_features
    assert edge.hrv.clean_rr is core.rr.clean_rr
    assert edge.hrv.CleanedRR is core.rr.CleanedRR
    assert edge.hrv.HRV_KEYS == ("MeanNN", "SDNN", "RMSSD", "SDSD", "pNN50", "LF", "HF", "LFHF")
    own = {n for n, v in vars(edge.hrv).items() if callable(v) and v.__module__ == "edge.hrv"}
    assert own == set()


def test_the_documented_example_runs() -> None:
    result = doctest.testmod(edge.hrv)
    assert result.attempted >= 4 and result.failed == 0
