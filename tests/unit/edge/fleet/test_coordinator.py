"""edge.fleet.coordinator: the federation's settings survive the trip through a run config;
the final head update reaches every hub's update folder, and a hub that did not take it is
counted in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.app import Context, Message, RecordDict

from edge.fleet.coordinator import deliver, options_from_run_config, run_config
from edge.fleet.delivery import MESSAGE_TYPE
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


@pytest.fixture(autouse=True)
def in_a_server_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Flower sets in a ServerApp's process, which a message it creates reads."""
    from flwr.supercore.task_identity import TaskIdentity

    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value)


class HubsGrid:
    """A grid whose hubs are real ClientApps (one per node config); ``silent`` nodes never reply."""

    def __init__(
        self, node_configs: dict[int, dict[str, str]], silent: frozenset[int] = frozenset()
    ):
        from edge.fleet.client import make_client_app

        self.nodes = node_configs
        self.silent = silent
        self.app = make_client_app(lambda ctx: pytest.fail("a delivery trains nothing"))
        self.sent: list[Message] = []

    def get_node_ids(self) -> list[int]:
        return [*self.nodes, *self.silent]

    def send_and_receive(self, messages: list[Message], *, timeout: float) -> list[Message]:
        replies = []
        for m in messages:
            self.sent.append(m)
            n = m.metadata.dst_node_id
            if n in self.silent:
                continue
            ctx = Context(run_id=1, node_id=n, node_config=self.nodes[n], state=RecordDict(),
                          run_config={})  # fmt: skip
            replies.append(self.app(m, ctx))
        return replies


def test_the_update_reaches_every_hub_and_silence_is_counted(tmp_path: Path) -> None:
    from edge.signing import DEMO_PUBLIC_KEY
    from edge.update_check import load_head_update
    from tests.unit.edge.fleet.test_delivery import signed_update

    update = signed_update(tmp_path)
    hubs = {1: {"state-dir": str(tmp_path / "a")}, 2: {"updates": str(tmp_path / "b-updates")}}
    grid = HubsGrid(hubs, silent=frozenset({3}))
    got = deliver(grid, update, timeout=5.0)  # type: ignore[arg-type]
    assert got == {"hubs": 3, "written": 2, "errors": ["1 hubs did not reply within 5 s"]}
    assert {m.metadata.message_type for m in grid.sent} == {MESSAGE_TYPE}
    for folder in (tmp_path / "a" / "updates", tmp_path / "b-updates"):
        (written,) = folder.iterdir()
        assert load_head_update(written, [str(DEMO_PUBLIC_KEY)]).version == "fleet-1"


def test_a_hub_that_cannot_write_it_says_why_in_one_line(tmp_path: Path) -> None:
    from tests.unit.edge.fleet.test_delivery import signed_update

    update = signed_update(tmp_path)
    (tmp_path / "file").write_text("not a folder")
    grid = HubsGrid({1: {"updates": str(tmp_path / "file" / "updates")}})
    got = deliver(grid, update, timeout=5.0)  # type: ignore[arg-type]
    assert got["written"] == 0 and len(got["errors"]) == 1
    assert "cannot write into the hub's update folder" in got["errors"][0]
    assert "\n" not in got["errors"][0] and str(tmp_path) not in got["errors"][0]


def test_the_signing_key_and_bundle_ride_in_the_run_config(tmp_path: Path) -> None:
    cfg = run_config(FleetOptions(), hubs=1, initial_head=tmp_path / "h.npz", out_dir=tmp_path,
                     round_timeout=1.0)  # fmt: skip
    assert cfg["bundle"] == cfg["sign-key"] == ""  # TOML: no null; "" is none
    cfg = run_config(FleetOptions(), hubs=1, initial_head=tmp_path / "h.npz", out_dir=tmp_path,
                     round_timeout=1.0, bundle=Path("b"), sign_key=Path("k.pem"))  # fmt: skip
    assert Path(cfg["bundle"]).is_absolute() and cfg["sign-key"].endswith("k.pem")
