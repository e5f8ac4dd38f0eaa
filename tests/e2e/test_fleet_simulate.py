"""edge-fleet simulate end to end: a tiny care home (2 hubs of 2 residents, 2 rounds) on
synthetic WESAD, through a real student and Flower's real simulation runtime (Ray), with
central DP and its no-DP twin, hubs training in the default public subspace. Runs as a subprocess, as a user runs the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.recordings import cached_synth_root

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_simulate_with_dp_writes_rounds_hubs_and_plots(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = cached_synth_root(tmp_path_factory, n_subjects=5, minutes_scale=0.6, seed=3)
    out = tmp_path / "fleet"
    cmd = [
        sys.executable,
        "-m",
        "edge.fleet.cli",
        "simulate",
        "--data",
        str(data),
        "--hubs",
        "2",
        "--rounds",
        "2",
        "--pretrain-subjects",
        "1",
        "--pretrain-steps",
        "5",
        "--local-steps",
        "20",
        "--dp-epsilon",
        "8",
        "--seed",
        "1",
        "--out",
        str(out),
        "--no-progress",
    ]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=560)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads((out / "results.json").read_text())
    assert r["command"].startswith("edge-fleet simulate --data")
    assert r["config"]["dp"] == "central" and r["config"]["hubs"] == 2
    # the default: hubs send the head's coefficients in a public subspace, not the head
    k, classes = r["config"]["subspace"], len(r["layout"]["class_names"])
    assert k > 0 and r["layout"]["numbers_sent_per_hub"] == k * classes
    assert r["layout"]["public_windows"] > 0 and r["dp"]["clip_norm"] == r["config"]["clip_norm"]
    rounds = r["rounds"]
    assert [x["round"] for x in rounds] == [1, 2]
    eps = [x["epsilon"] for x in rounds]
    assert 0 < eps[0] < eps[1] <= 8.0
    assert all(x["bytes_up"] > 0 and 0 <= x["global_macro_f1"] <= 1 for x in rounds)
    twin = r["no_dp_twin"]
    assert [x["epsilon"] for x in twin["rounds"]] == [None, None]
    assert len(r["hubs"]) == 2
    for h in r["hubs"]:
        assert h["hub"].startswith("hub-") and len(h["residents"]) == 2
        assert all(w.startswith("wearer-") for w in h["residents"])
        assert 0 <= h["personalized_macro_f1"] <= 1 and 0 <= h["baseline_macro_f1"] <= 1
    # desensitized: no subject id of the data set appears anywhere in the results
    text = (out / "results.json").read_text()
    residents = [s.name for s in data.iterdir() if s.is_dir()]
    pretrain = set(r["layout"]["pretrain_subjects"])
    assert not [s for s in residents if s not in pretrain and f'"{s}"' in text]
    assert (out / "rounds.png").stat().st_size > 10_000 and (
        out / "hubs.png"
    ).stat().st_size > 10_000
    assert "personalized" in p.stdout and "B up per round" in p.stdout
