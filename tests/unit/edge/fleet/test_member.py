"""edge.fleet.member: the hub's training file from its database, and its SuperNode as a child
the daemon starts, restarts and stops (a stand-in command here; the real one in
tests/e2e/test_fleet_deploy.py)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.fleet import deploy, member
from edge.fleet.hub_options import FleetJoinOptions
from edge.fleet.local_data import LocalData
from edge.fleet.member import FleetMember, check_fleet_ready, export_local_data
from edge.personal.store import EmbeddingRow, PersonalStore

DEMO_BUNDLE = Path(__file__).resolve().parents[4] / "edge" / "demo_bundle"


@pytest.fixture(scope="module")
def bundle() -> Any:
    return load_bundle(DEMO_BUNDLE)


def fill(db: Path, bundle: Any, n: int = 10) -> np.ndarray:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, 48)).astype(np.float32)
    t0 = time.time() - 3600
    with PersonalStore(db) as store:
        store.add_embeddings([
            EmbeddingRow("anna", bundle.model_id, bundle.model_version, t0 + 60 * i,
                         t0 + 60 * i + 60, e)
            for i, e in enumerate(emb)
        ])  # fmt: skip
        store.add_label("anna", t0, t0 + 60 * n / 2, "stress", "manual")
        store.add_embeddings(
            [  # another model's window: not this body's, not exported
                EmbeddingRow("anna", "other", "v0", t0, t0 + 60, emb[0])
            ]
        )
    return emb


def test_the_training_file_holds_the_confirmed_windows_owner_only(
    tmp_path: Path, bundle: Any
) -> None:
    emb = fill(tmp_path / "edge.db", bundle)
    dest = tmp_path / "fleet" / "train.npz"
    n = export_local_data(tmp_path / "edge.db", bundle, dest)
    data = LocalData.load(dest)
    assert n == len(data) == 5  # the windows whose middle the label covers
    assert np.allclose(data.emb, emb[:5]) and set(data.y) == {1}
    assert dest.stat().st_mode & 0o077 == 0 and dest.parent.stat().st_mode & 0o077 == 0


def test_no_labels_no_file(tmp_path: Path, bundle: Any) -> None:
    with PersonalStore(tmp_path / "edge.db"):
        pass
    assert export_local_data(tmp_path / "edge.db", bundle, tmp_path / "t.npz") == 0
    assert not (tmp_path / "t.npz").exists()


def test_refusals_are_one_line(tmp_path: Path) -> None:
    opts = FleetJoinOptions(url="https://h:9092", root_certificates=str(tmp_path / "ca.pem"))
    with pytest.raises(deploy.DeployError, match="drop --no-db"):
        check_fleet_ready(opts, database=False)
    with pytest.raises(deploy.DeployError, match=r"--fleet-ca .*ca\.pem: no such file"):
        check_fleet_ready(opts, database=True)


def stand_in(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    monkeypatch.setattr(deploy, "supernode_command", lambda *a: [sys.executable, "-c", code])


async def until(cond: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_supernode_runs_beside_the_daemon_and_stops_with_it(
    tmp_path: Path, bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(tmp_path / "edge.db", bundle)
    stand_in(monkeypatch, "import time; time.sleep(120)")
    m = FleetMember(FleetJoinOptions(url="http://h:9092"), db_path=tmp_path / "edge.db",
                    state_dir=tmp_path, bundle=bundle)  # fmt: skip
    m.start()
    await until(lambda: m.health()["joined"])
    proc = m.proc
    assert proc is not None and m.health()["rows"] == 5
    await m.stop()
    assert proc.returncode is not None and not m.health()["joined"]


async def test_an_exited_supernode_is_started_again(
    tmp_path: Path, bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(tmp_path / "edge.db", bundle)
    stand_in(monkeypatch, "raise SystemExit(3)")
    monkeypatch.setattr(member, "RESTART_S", (0.05, 0.1))
    m = FleetMember(FleetJoinOptions(url="http://h:9092"), db_path=tmp_path / "edge.db",
                    state_dir=tmp_path, bundle=bundle)  # fmt: skip
    m.start()
    await until(lambda: m.restarts >= 2)
    await m.stop()


async def test_a_hub_without_labels_does_not_join(
    tmp_path: Path, bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(monkeypatch, "import time; time.sleep(120)")
    m = FleetMember(FleetJoinOptions(url="http://h:9092"), db_path=tmp_path / "edge.db",
                    state_dir=tmp_path, bundle=bundle)  # fmt: skip
    m.start()
    await asyncio.sleep(0.5)
    assert m.proc is None and m.health()["rows"] == 0
    await m.stop()


def test_the_daemons_side_of_the_fleet_needs_no_host_package() -> None:
    from tests.unit.edge.fleet.test_hub_side import run

    p = run(["edge.fleet.member", "edge.fleet.hub_options", "edge.fleet.processes", "edge.config"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert "leaked []" in p.stdout


def test_a_daemon_without_flower_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from edge.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "flwr" else real(name, *a)
    )
    code = main(["--device", "sim", "--duration", "1", "--status", "off", "--state-dir",
                 str(tmp_path), "--fleet", "http://127.0.0.1:9"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and "pip install 'wearable-edge[fleet]'" in err and err.count("\n") == 0


async def test_the_supernode_is_told_the_daemons_update_folder(
    tmp_path: Path, bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(tmp_path / "edge.db", bundle)
    told: list[list[str]] = []
    real = deploy.supernode_command

    def command(*a: Any) -> list[str]:
        told.append(real(*a))
        return [sys.executable, "-c", "import time; time.sleep(120)"]

    monkeypatch.setattr(deploy, "supernode_command", command)
    m = FleetMember(FleetJoinOptions(url="http://h:9092"), db_path=tmp_path / "edge.db",
                    state_dir=tmp_path, bundle=bundle, update_dir=tmp_path / "u")  # fmt: skip
    m.start()
    await until(lambda: bool(told))
    await m.stop()
    node_config = told[0][told[0].index("--node-config") + 1]
    assert f'updates="{(tmp_path / "u").resolve()}"' in node_config
