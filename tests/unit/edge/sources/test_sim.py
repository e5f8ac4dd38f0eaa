"""edge.sources.sim: what the simulated wearables play, by kind (wrist service, strap, both)."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from edge.cli import _config_from_args, build_parser
from edge.sources.options import SimOptions
from edge.sources.sim import SimSource
from firmware_bridge.sim.synthetic import synthetic_recording


def kinds(src: SimSource) -> list[list[str]]:
    return [[s.kind for s in w.hello.sensors] for w in src.wearables]


def test_kinds_play_the_wrist_service_a_strap_or_one_of_each_in_turn() -> None:
    rec = synthetic_recording(120.0, seed=1)
    wrist = SimSource.from_options(SimOptions(devices=1), recording=rec)
    assert kinds(wrist) == [["bvp", "eda", "temp", "acc"]]
    strap = SimSource.from_options(SimOptions(kind="hr", devices=1), recording=rec)
    assert kinds(strap) == [["hr", "rr"]]  # beats simulated from the recording's labels
    mixed = SimSource.from_options(SimOptions(kind="mixed", devices=3), recording=rec)
    assert kinds(mixed) == [["bvp", "eda", "temp", "acc"], ["hr", "rr"],
                            ["bvp", "eda", "temp", "acc"]]


def test_the_kind_is_a_documented_option_with_its_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError) as e:
        SimOptions(kind="chest").validate()
    assert e.value.key == "sim.kind"
    args = build_parser().parse_args(["run", "--device", "sim", "--sim-kind", "hr",
                                      "--bundle", "a", "--bundle", "b"])
    cfg = _config_from_args(args)
    assert (cfg.sim.kind, cfg.bundle, cfg.bundles) == ("hr", "a", ["b"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    assert "--sim-kind {wrist,hr,mixed}" in capsys.readouterr().out
