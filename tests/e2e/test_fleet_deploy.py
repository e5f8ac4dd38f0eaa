"""A care home's federation on loopback, as an operator runs it: ``edge-fleet serve`` with TLS
(a throw-away CA), one hub through ``edge-fleet join`` and one through ``edge-daemon --fleet``
(its labels and embeddings in its own database), two rounds, Flower's real deployment
runtime (SuperLink, SuperNodes, ``flwr run``). Then: the run finished, results and a signed
head update are written, the update reached both hubs' update folders in the federation's
last message and the daemon verified and swapped it in, nothing a hub sent could hold a
window, and stopping the hubs stops their SuperNodes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fakes.daemon import REPO, start_cli, stop_cli
from tests.fakes.mosquitto import free_port, make_tls
from tests.fakes.updates import hub_events

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DEMO_BUNDLE = REPO / "edge" / "demo_bundle"
DEMO_PUBLIC_KEY = REPO / "edge" / "keys" / "demo_signing_key.pub.pem"
DEMO_PRIVATE_KEY = REPO / "export" / "demo_signing_key.pem"
ROWS = 80  # confirmed windows per hub
SWAP_S = 60.0  # the daemon looks at its update folder every few seconds; a loaded machine is slow
WEARERS = ("anna", "bert")


def labelled(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, ROWS)
    emb = (rng.normal(0, 1, (ROWS, 48)) + np.eye(3, 48)[y] * 2).astype(np.float32)
    return emb, y.astype(np.int64)


def join_hub(root: Path) -> Path:
    """A hub whose training file was exported beforehand (``edge-fleet join --data``)."""
    from edge.fleet.local_data import LocalData

    emb, y = labelled(1)
    root.mkdir()
    wearer = np.array([WEARERS[i % 2] for i in range(ROWS)])
    LocalData(emb, y, wearer, np.arange(ROWS) * 30.0).save(root / "train.npz")
    return root


def daemon_hub(root: Path) -> tuple[Path, np.ndarray]:
    """A hub daemon's database with confirmed labels over cached embeddings of the demo
    bundle's body, as `edge-daemon label` and its windows leave them."""
    from edge.bundle import load_bundle
    from edge.personal.store import EmbeddingRow, PersonalStore

    bundle = load_bundle(DEMO_BUNDLE)
    emb, y = labelled(2)
    root.mkdir()
    t0 = time.time() - 6 * 3600
    with PersonalStore(root / "edge.db") as store:
        rows = [
            EmbeddingRow(
                "anna", bundle.model_id, bundle.model_version, t0 + 30 * i, t0 + 30 * i + 60, e
            )
            for i, e in enumerate(emb)
        ]
        store.add_embeddings(rows)
        for i, c in enumerate(y):  # one confirmed span per window (its middle)
            mid = t0 + 30 * i + 30
            store.add_label("anna", mid - 1, mid + 1, bundle.class_names[c], "manual")
    return root, emb


def fleet(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edge.fleet.cli", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # a zombie has stopped


def test_serve_join_and_the_daemon_federate_over_tls(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    port = free_port()
    out = tmp_path / "coordinator"
    hub_a = join_hub(tmp_path / "hub-a")
    hub_b, hub_b_emb = daemon_hub(tmp_path / "hub-b")
    serve = fleet(
        [
            "serve",
            "--bundle",
            str(DEMO_BUNDLE),
            "--hubs",
            "2",
            "--rounds",
            "2",
            "--local-steps",
            "20",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ssl-ca-certfile",
            str(tls.ca),
            "--ssl-certfile",
            str(tls.cert),
            "--ssl-keyfile",
            str(tls.key),
            "--sign-key",
            str(DEMO_PRIVATE_KEY),
            "--out",
            str(out),
        ],
        tmp_path / "serve.log",
    )
    join = fleet(
        [
            "join",
            "--superlink",
            f"127.0.0.1:{port}",
            "--data",
            str(hub_a / "train.npz"),
            "--state-dir",
            str(hub_a),
            "--root-certificates",
            str(tls.ca),
        ],
        tmp_path / "join.log",
    )
    daemon = start_cli(
        [
            "--device",
            "sim",
            "--duration",
            "280",
            "--status",
            "off",
            "--state-dir",
            str(hub_b),
            "--fleet",
            f"https://127.0.0.1:{port}",
            "--fleet-ca",
            str(tls.ca),
            "--trusted-key",  # the key serve signs the federation's head with
            str(DEMO_PUBLIC_KEY),
            "--summary-json",
            str(tmp_path / "hub-b-summary.json"),
        ],
        stdout=subprocess.DEVNULL,
    )
    swapped: list[dict[str, object]] = []
    try:
        code = serve.wait(timeout=240)
        deadline = time.monotonic() + SWAP_S
        while code == 0 and not swapped and time.monotonic() < deadline:
            swapped = hub_events(hub_b / "edge.db", "model_swapped")
            time.sleep(0.2)
    finally:
        if serve.poll() is None:
            serve.kill()
        _, daemon_err = stop_cli(daemon)
        join.send_signal(signal.SIGTERM)
        join_code = join.wait(timeout=60)
    serve_log = (tmp_path / "serve.log").read_text()
    assert code == 0, serve_log + (out / "run.log").read_text()[-3000:]

    results = json.loads((out / "results.json").read_text())
    assert results["finished"] and [r["round"] for r in results["rounds"]] == [1, 2]
    for r in results["rounds"]:
        assert len(set(r["hubs"])) == 2  # both hubs replied, under their pseudonyms
        # a reply is the head (48 × 3 + 3 float32), a weight and a pseudonym: far below
        # the bytes of one hub's embeddings, let alone one raw window
        assert r["bytes_up"] <= 2 * (4 * (48 * 3 + 3) + 1024) < hub_b_emb.nbytes
    coordinator_side = " ".join(p.read_text(errors="replace") for p in out.iterdir() if p.is_file())
    for name in (*WEARERS, "hub-a", "hub-b"):  # no wearer or hub name reached the coordinator
        assert not re.search(rf"\b{name}\b", coordinator_side), name

    from edge.bundle import load_bundle
    from edge.updates import check_head_compatible, load_head_update

    update = load_head_update(out / "head-update", [str(DEMO_PUBLIC_KEY)])
    check_head_compatible(update, load_bundle(DEMO_BUNDLE))
    assert results["head_update"]["delivery"] == {"hubs": 2, "written": 2, "errors": []}
    # nobody copied a file: the last message put it in the join hub's update folder ...
    (sent,) = (hub_a / "updates").iterdir()
    assert sent.name.startswith(update.version + "-")
    for f in ("update.json", "head.npz", "update.sig"):
        assert (sent / f).read_bytes() == (out / "head-update" / f).read_bytes()
    # ... and in the daemon's, which verified it against its trusted key and swapped it in
    assert swapped, daemon_err[-3000:]
    assert swapped[0]["detail"]["to_version"] == update.version, swapped
    assert not (hub_b / "updates" / "refused").exists() or not any(
        (hub_b / "updates" / "refused").iterdir()
    )

    pid = re.search(r"SuperNode pid (\d+)", daemon_err)
    assert pid, daemon_err[-3000:]
    assert gone(int(pid.group(1)))  # the daemon stopped its SuperNode
    assert "left the federation" in daemon_err
    assert join_code == 0 or join_code == -signal.SIGTERM, (tmp_path / "join.log").read_text()
    assert (hub_b / "fleet" / "train.npz").stat().st_mode & 0o077 == 0
    # the daemon's own report says what it gave the federation
    summary = json.loads((tmp_path / "hub-b-summary.json").read_text())
    from edge.fleet.local_data import LocalData

    exported = len(LocalData.load(hub_b / "fleet" / "train.npz"))
    assert summary["fleet"]["rows"] == exported > 0, summary.get("fleet")


def test_sigterm_stops_a_waiting_coordinator_with_exit_1_and_its_logs_kept(
    tmp_path: Path,
) -> None:
    tls = make_tls(tmp_path / "tls")
    port = free_port()
    out = tmp_path / "coordinator"
    tls_args = ["--ssl-ca-certfile", str(tls.ca), "--ssl-certfile", str(tls.cert),
                "--ssl-keyfile", str(tls.key)]  # fmt: skip
    serve = fleet(
        ["serve", "--bundle", str(DEMO_BUNDLE), "--hubs", "3", "--host", "127.0.0.1",
         "--port", str(port), *tls_args, "--no-sign", "--out", str(out)],
        tmp_path / "serve.log",
    )  # fmt: skip
    log = tmp_path / "serve.log"
    deadline = time.monotonic() + 120
    while "waiting for 3 hubs" not in log.read_text():
        assert serve.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=60) == 1
    assert "stopped by SIGTERM after 0 of 3 rounds" in log.read_text()
    assert (out / "superlink.log").is_file() and not (out / "head-update").exists()
    with pytest.raises(OSError):  # the SuperLink is gone with it
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
