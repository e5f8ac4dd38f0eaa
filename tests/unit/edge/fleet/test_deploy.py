"""edge.fleet.deploy: the SuperNode command a hub runs, Flower's environment, one-line refusals."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from edge.fleet.deploy import (
    DeployError,
    check_files,
    flower_env,
    flower_exe,
    supernode_command,
)


def test_a_missing_flower_command_is_one_line_saying_what_to_install() -> None:
    with pytest.raises(DeployError) as e:
        flower_exe("flower-no-such-command")
    assert "pip install 'wearable-edge[fleet]'" in str(e.value) and "\n" not in str(e.value)


def test_flower_commands_are_found_beside_this_python() -> None:
    assert Path(flower_exe("flower-supernode")).parent == Path(sys.executable).parent


def test_flower_processes_keep_their_state_where_told_and_find_their_helpers(
    tmp_path: Path,
) -> None:
    env = flower_env(tmp_path / "flower")
    assert env["FLWR_HOME"] == str(tmp_path / "flower")
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def test_the_supernode_verifies_the_coordinator_with_the_ca(tmp_path: Path) -> None:
    cmd = supernode_command("coord.lan:9092", Path("d.npz"), tmp_path, tmp_path / "ca.pem")
    assert cmd[cmd.index("--superlink") + 1] == "coord.lan:9092"
    assert cmd[cmd.index("--root-certificates") + 1] == str((tmp_path / "ca.pem").resolve())
    assert "--insecure" not in cmd
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"  # its runtime API: loopback only
    config = cmd[cmd.index("--node-config") + 1]
    assert f'data="{Path("d.npz").resolve()}"' in config
    assert f'state-dir="{tmp_path.resolve()}"' in config


def test_without_a_ca_the_supernode_runs_without_tls(tmp_path: Path) -> None:
    cmd = supernode_command("h:9092", tmp_path / "d.npz", tmp_path, None)
    assert "--insecure" in cmd and "--root-certificates" not in cmd


def test_two_supernodes_on_one_machine_get_different_runtime_ports(tmp_path: Path) -> None:
    a = supernode_command("h:9092", tmp_path / "d.npz", tmp_path, None)
    b = supernode_command("h:9092", tmp_path / "d.npz", tmp_path, None)
    assert a[a.index("--port") + 1] != b[b.index("--port") + 1]


def test_a_missing_file_names_its_flag(tmp_path: Path) -> None:
    check_files({"--a": None, "--b": Path(__file__)})
    with pytest.raises(DeployError, match=r"^--ca .*ca\.pem: no such file$"):
        check_files({"--ca": tmp_path / "ca.pem"})
