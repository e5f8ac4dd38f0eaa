"""A hub's side of a real care home's federation: its Flower SuperNode, checked and started.

``join`` (``edge-fleet join``) runs a Flower SuperNode in the foreground, pointed at the
coordinator's SuperLink, with the hub's training data and state directory as its node
config; the SuperNode runs :data:`edge.fleet.client.app` when the coordinator's run reaches
it. The daemon (``edge-daemon --fleet``, :mod:`edge.fleet.member`) starts the same command
as a supervised child. Both wrap Flower's own ``flower-supernode``, so TLS (and node
authentication) are Flower's; the coordinator's side is :mod:`edge.fleet.serve`.

The SuperNode keeps Flower's own state (the app it was sent) under ``STATE_DIR/flower``,
and its local runtime API on a free loopback port, so several SuperNodes can share a machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Final

from edge.errors import EdgeError

__all__ = [
    "DeployError",
    "add_join_arguments",
    "check_files",
    "flower_env",
    "flower_exe",
    "free_loopback_port",
    "join",
    "supernode_command",
]

FLOWER_HOME: Final = "flower"  # under a hub's state directory: Flower's own state (FLWR_HOME)


class DeployError(EdgeError):
    """A Flower command is missing, or the TLS files named do not exist."""


def add_join_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--superlink", required=True, help="the coordinator's HOST:PORT (9092)")
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="this hub's labelled embeddings (.npz: emb, y, wearer, start)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        required=True,
        help="this hub's state directory (its pseudonym key lives there)",
    )
    g = p.add_argument_group("TLS (Flower's)")
    g.add_argument(
        "--root-certificates", type=Path, help="the CA that signed the SuperLink's certificate"
    )
    g.add_argument("--insecure", action="store_true", help="no TLS: only on a private test network")


def flower_exe(cmd: str) -> str:
    """The path of Flower's command ``cmd``: beside this Python first (a venv that is not on
    PATH), then PATH. DeployError (one line, how to install it) when flwr is missing."""
    here = Path(sys.executable).with_name(cmd)
    exe = str(here) if here.exists() else shutil.which(cmd)
    if exe is None:
        raise DeployError(f"{cmd} not found: pip install 'wearable-edge[fleet]' (Flower)")
    return exe


def flower_env(home: Path) -> dict[str, str]:
    """The environment of a Flower process: its state in ``home`` (FLWR_HOME), and this
    Python's scripts first on PATH, since a SuperLink or SuperNode starts Flower's helper
    commands (``flower-superexec``, ``flwr-serverapp``, ``flwr-clientapp``) by name."""
    env = dict(os.environ)
    env["FLWR_HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def check_files(named: dict[str, Path | None]) -> None:
    """Every file named must exist: DeployError naming the flag otherwise."""
    for flag, path in named.items():
        if path is not None and not Path(path).is_file():
            raise DeployError(f"{flag} {path}: no such file")


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def supernode_command(
    superlink: str,
    data: Path,
    state_dir: Path,
    root_certificates: Path | None,
    update_dir: Path | None = None,
) -> list[str]:
    """``flower-supernode`` for this hub: TLS with ``root_certificates`` (None: no TLS); the
    coordinator's head update is written into ``update_dir`` (None: ``STATE_DIR/updates``,
    the daemon's default update folder)."""
    node = f'data="{Path(data).resolve()}" state-dir="{Path(state_dir).resolve()}"'
    if update_dir is not None:
        node += f' updates="{Path(update_dir).resolve()}"'
    tls = (
        ["--insecure"]
        if root_certificates is None
        else [
            "--root-certificates",
            str(Path(root_certificates).resolve()),
        ]
    )
    return [
        flower_exe("flower-supernode"),
        "--superlink",
        superlink,
        *tls,
        # the SuperNode's runtime API is for its own app processes only: loopback, any port
        "--host",
        "127.0.0.1",
        "--port",
        str(free_loopback_port()),
        "--node-config",
        node,
    ]


def join(args: argparse.Namespace) -> int:
    """Check the hub's data and key here (one line when wrong), then run the SuperNode."""
    from edge.fleet.local_data import LocalData
    from edge.fleet.processes import on_stop_signals
    from edge.fleet.pseudonym import load_or_create_key

    if not args.insecure and args.root_certificates is None:
        raise DeployError("TLS needs --root-certificates CA.pem (or --insecure on a test network)")
    check_files({"--root-certificates": None if args.insecure else args.root_certificates})
    cmd = supernode_command(
        args.superlink,
        args.data,
        args.state_dir,
        None if args.insecure else args.root_certificates,
    )
    LocalData.load(args.data)
    load_or_create_key(args.state_dir)
    proc = subprocess.Popen(cmd, env=flower_env(Path(args.state_dir) / FLOWER_HOME))
    # SIGTERM (systemd, a test) reaches the SuperNode too, instead of orphaning it
    with on_stop_signals(proc.send_signal):
        return proc.wait()
