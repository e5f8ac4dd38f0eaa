"""edge.fleet.coordinator: the federation's settings survive the trip through a run config."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.fleet.coordinator import options_from_run_config, run_config
from edge.fleet.options import FleetOptions


@pytest.mark.parametrize(
    "opts",
    [
        FleetOptions(),
        FleetOptions(rounds=5, local_steps=7, prox_mu=0.1, seed=3),
        FleetOptions(dp="central", dp_epsilon=8.0, dp_delta=1e-6, clip_norm=0.25),
        FleetOptions(dp="local", dp_epsilon=4.0),
    ],
)
def test_options_round_trip_through_the_run_config(opts: FleetOptions, tmp_path: Path) -> None:
    cfg = run_config(opts, hubs=3, initial_head=tmp_path / "h.npz", out_dir=tmp_path,
                     round_timeout=60.0)  # fmt: skip
    assert None not in cfg.values()  # a TOML run config has no null
    assert options_from_run_config(cfg) == opts
    assert cfg["hubs"] == 3 and Path(cfg["out-dir"]).is_absolute()
