"""Privacy: no raw sample leaves the daemon, no network socket, owner-only files.

One run of ``edge-daemon`` with every sink on (SQLite, JSON lines file, the log at DEBUG on
stderr, the live status line forced onto stdout, systemd STATUS= messages on a notify
socket, the end-of-run summary) on a wearable whose samples the test knows exactly. Every
output is then searched for those samples (:class:`LeakDetector`: runs of consecutive
samples written as text in any number format, or as int16/uint16/float32 bytes, and single
values as float64 bytes). Positive controls show the search finds them when they are there:
the same run with ``--record-raw`` (the raw frame file), and a daemon whose ingest is made
to log the samples it receives.

While the daemon runs, its sockets are listed from ``/proc/<pid>/fd`` and looked up in the
kernel's socket tables: only AF_UNIX (the asyncio self-pipe, sd_notify) may appear.
Finally every file the daemon created must be owner-only (files 0600, directories 0700)
even under the usual umask 022.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_bridge.sim import SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording
from tests.fakes.daemon import start_cli, toy_bundle, wait_for
from tests.fakes.leaks import LeakDetector
from tests.fakes.procnet import socket_families

pytestmark = pytest.mark.slow

SEED = 11  # the recording the in-process simulator plays (sim.recording) is rebuilt from it
DATA_S = 150.0  # 60 s enrollment + ~45 decisions at the toy contract's 2 s hop


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def recording_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from core.recording import save_recording

    return save_recording(synthetic_recording(DATA_S, seed=SEED),
                          tmp_path_factory.mktemp("rec") / "wrist.npz")


@pytest.fixture(scope="module")
def detector(recording_file: Path) -> LeakDetector:
    return LeakDetector(recording_file)


def test_the_detector_finds_samples_written_in_the_usual_ways(detector: LeakDetector,
                                                               recording_file: Path) -> None:
    from core.recording import load_recording

    rec = load_recording(recording_file)
    eda = rec.signals["eda"].values[400:410, 0]
    bvp = rec.signals["bvp"].values[1000:1010, 0]
    info = SimulatedWearable(rec.wrist_only()).hello.sensor_map()
    eda_wire = info[2].to_raw(eda[:, None])[:, 0]
    eda_phys = info[2].to_physical(eda_wire[:, None])[:, 0]
    bvp_phys = info[1].to_physical(info[1].to_raw(bvp[:, None]))[:, 0]
    leaks = [
        json.dumps([float(v) for v in eda_phys]).encode(),  # a JSON list
        repr(np.asarray(bvp_phys)).encode(),  # numpy's repr
        " ".join(f"{v:.1f}" for v in bvp_phys).encode(),  # a log line
        ",".join(str(int(v)) for v in eda_wire).encode(),  # wire integers as CSV
        b"\x01" * 7 + eda_wire.astype(np.uint16).tobytes(),  # a binary dump
    ]
    for leak in leaks:
        assert detector.find(b"state=stress p=0.93 " + leak + b" t=1700000000.5"), leak
    # and derived output is not mistaken for samples
    assert not detector.find(b'{"state":"stress","probabilities":{"baseline":0.0312,'
                             b'"stress":0.9401,"amusement":0.0287},"t":1795385347.21}')


def test_socket_lookup_sees_an_inet_socket() -> None:
    """Control for the socket check: a TCP socket of this process is found as tcp."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert socket_families(os.getpid()).get("tcp", 0) >= 1


class NotifyListener:
    """systemd's end of the notify socket: collects the datagrams on a thread."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.got: list[bytes] = []
        self._done = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                self.got.append(self.sock.recv(4096))
            except TimeoutError:
                continue

    def close(self) -> None:
        self._done.set()
        self._t.join(5)
        self.sock.close()


def run_every_sink(bundle: Path, tmp: Path, recording: Path, *, record_raw: bool = False,
                   prelude: str | None = None) -> dict[str, Any]:
    """The daemon with every sink on; its outputs (path -> bytes), sockets seen, the files
    it created."""
    out_dir = tmp / "out"  # created by the daemon (its JSON lines sink)
    notify_path = tmp / "notify.sock"
    notify = NotifyListener(notify_path)
    state = tmp / "state"
    args = ["--device", "sim", "--recording", str(recording), "--bundle", str(bundle),
            "--backend", "onnx", "--precision", "fp32", "--speed", "50",
            "--state-dir", str(state), "--jsonl", str(out_dir / "decisions.jsonl"),
            "--log-level", "debug", "--status", "on", "--health-interval", "0.5",
            "--summary-json", str(out_dir / "summary.json"), "--resident", "anna"]
    if record_raw:
        args += ["--record-raw", str(out_dir / "raw.bin")]
    old_umask = os.umask(0o022)  # the usual umask: the daemon must not rely on a strict one
    try:
        stdout = (tmp / "stdout.txt").open("w")
        proc = start_cli(args, prelude=prelude, stdout=stdout,
                         env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "1000000"})
    finally:
        os.umask(old_umask)
    sockets: list[dict[str, int]] = []
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: (out_dir / "decisions.jsonl").exists()
                 and b'"decision"' in (out_dir / "decisions.jsonl").read_bytes(), 120,
                 "the first decision")
        for _ in range(5):
            sockets.append(socket_families(proc.pid))
            time.sleep(0.2)
        # the recording is played once: the source ends and the daemon stops by itself
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
        proc.stderr.close()
        stdout.close()
        notify.close()
    err = "".join(err_lines)
    assert proc.returncode == 0, err
    outputs = {p: p.read_bytes() for p in sorted(state.rglob("*")) if p.is_file()}
    outputs.update({p: p.read_bytes() for p in sorted(out_dir.rglob("*")) if p.is_file()})
    outputs[tmp / "stdout.txt"] = (tmp / "stdout.txt").read_bytes()
    outputs[tmp / "stderr.txt"] = err.encode()
    outputs[notify_path] = b"\n".join(notify.got)
    created = [p for root in (state, out_dir) for p in [root, *root.rglob("*")]]
    return {"outputs": outputs, "sockets": sockets, "created": created, "notes": notify.got,
            "err": err}


def test_every_sink_on_no_raw_sample_no_socket_owner_only(
        bundle: Path, tmp_path: Path, recording_file: Path, detector: LeakDetector) -> None:
    run = run_every_sink(bundle, tmp_path, recording_file)
    outputs: dict[Path, bytes] = run["outputs"]
    names = {p.name for p in outputs}
    assert {"edge.db", "decisions.jsonl", "summary.json", "anna.json", "stdout.txt",
            "stderr.txt", "notify.sock"} <= names
    # every output is there and has content (the search below must have something to search)
    jsonl = outputs[tmp_path / "out" / "decisions.jsonl"].decode()
    assert jsonl.count('"decision"') > 30
    # with the live status line on, the log (rich) shares the terminal: stdout
    log = outputs[tmp_path / "stdout.txt"] + outputs[tmp_path / "stderr.txt"]
    assert b"DEBUG" in log and b"health:" in log and b"window" in log
    assert any(n.startswith(b"STATUS=") for n in run["notes"])
    assert b"windows" in outputs[tmp_path / "stdout.txt"]  # the live status line was drawn
    total = sum(len(v) for v in outputs.values())
    assert total > 50_000

    leaks = {str(p): detector.find(data) for p, data in outputs.items()}
    assert not any(leaks.values()), {k: v[:5] for k, v in leaks.items() if v}

    # no network: only unix sockets, every time we looked
    assert run["sockets"] and all(set(s) <= {"unix"} for s in run["sockets"]), run["sockets"]
    assert all(s.get("unix", 0) >= 1 for s in run["sockets"])  # the lookup did find sockets

    # owner-only, although the daemon ran under umask 022
    modes = {str(p): stat.S_IMODE(p.stat().st_mode) for p in run["created"]}
    bad = {p: oct(m) for p, m in modes.items()
           if m != (0o700 if Path(p).is_dir() else 0o600)}
    assert not bad, bad


def test_positive_control_record_raw_is_found(bundle: Path, tmp_path: Path,
                                               recording_file: Path,
                                               detector: LeakDetector) -> None:
    """With --record-raw the raw frames are written (owner-only) and the search finds them,
    while the other outputs of the same run stay clean."""
    run = run_every_sink(bundle, tmp_path, recording_file, record_raw=True)
    raw = tmp_path / "out" / "raw.bin"
    hits = detector.find(run["outputs"][raw])
    assert len(hits) > 100, len(hits)
    assert stat.S_IMODE(raw.stat().st_mode) == 0o600
    others = {str(p): detector.find(d) for p, d in run["outputs"].items() if p != raw}
    assert not any(others.values())


LEAKY_LOG = """
import logging
import edge.ingest as ingest
_push = ingest.DeviceIngest._push
def leaky(self, name, t, x, out):
    logging.getLogger("edge.ingest").debug("%s samples %s", name, x[:8, 0].tolist())
    return _push(self, name, t, x, out)
ingest.DeviceIngest._push = leaky
"""


def test_positive_control_a_leaking_log_is_found(bundle: Path, tmp_path: Path,
                                                  recording_file: Path,
                                                  detector: LeakDetector) -> None:
    """A daemon patched to log the samples it receives: the search finds them in stderr."""
    run = run_every_sink(bundle, tmp_path, recording_file, prelude=LEAKY_LOG)
    log = run["outputs"][tmp_path / "stdout.txt"] + run["outputs"][tmp_path / "stderr.txt"]
    assert b"samples [" in log
    assert len(detector.find(log)) > 100
