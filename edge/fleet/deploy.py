"""A real care home's federation on Flower's deployment runtime: a hub's ``join``.

``join`` starts a Flower SuperNode on a hub, pointed at the coordinator's SuperLink, with the
hub's exported training data and state directory as its node config; the SuperNode runs
:data:`edge.fleet.client.app`. It wraps Flower's own ``flower-supernode``, so TLS (and node
authentication) are Flower's. The coordinator's side (a SuperLink and ``flwr run`` of an app
whose ServerApp calls :func:`edge.fleet.server.run_rounds`) is not wrapped yet.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from edge.errors import EdgeError

__all__ = ["DeployError", "add_join_arguments", "join"]


class DeployError(EdgeError):
    """A Flower command is missing, or the TLS files named do not exist."""


def add_join_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--superlink", required=True, help="the coordinator's HOST:9092")
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
    _tls_arguments(p)


def _tls_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("TLS (Flower's)")
    g.add_argument(
        "--root-certificates", type=Path, help="the CA that signed the SuperLink's certificate"
    )
    g.add_argument("--insecure", action="store_true", help="no TLS: only on a private test network")


def _flower(cmd: str) -> str:
    exe = shutil.which(cmd) or str(Path(sys.executable).with_name(cmd))
    if not Path(exe).exists():
        raise DeployError(f"{cmd} not found: pip install 'wearable-edge[fleet]'")
    return exe


def _tls(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    if args.insecure:
        return ["--insecure"]
    given = {n: getattr(args, n.replace("-", "_")) for n in names}
    missing = [n for n, v in given.items() if v is None]
    if missing:
        raise DeployError(f"TLS needs --{', --'.join(missing)} (or --insecure on a test network)")
    for n, v in given.items():
        if not Path(v).is_file():
            raise DeployError(f"--{n} {v}: no such file")
    return [a for n, v in given.items() for a in (f"--{n}", str(v))]


def join(args: argparse.Namespace) -> int:
    """Check the hub's data and key here (one line when wrong), then run the SuperNode."""
    from edge.fleet.local_data import LocalData
    from edge.fleet.pseudonym import load_or_create_key

    tls = _tls(args, ("root-certificates",))
    LocalData.load(args.data)
    load_or_create_key(args.state_dir)
    cmd = [
        _flower("flower-supernode"),
        "--superlink",
        args.superlink,
        *tls,
        "--node-config",
        f'data="{args.data.resolve()}" state-dir="{args.state_dir.resolve()}"',
    ]
    return subprocess.call(cmd)
