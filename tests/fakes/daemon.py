"""Helpers for the daemon's end-to-end tests: a real exported bundle, the CLI in a subprocess.

:func:`toy_bundle` trains the toy student (``tests.fakes.runs.build_run``) and exports it
with the real ``edge-export`` pipeline, every format a daemon can run (ONNX fp32 + int8,
TFLite fp32 + int8: a format left out here is a format no daemon test ever runs), once per
pytest session, cached under the session's base temporary directory. It stands in for the demo bundle until that ships, and
keeps the daemon tests fast: the toy contract has 4 s windows, a 2 s hop and a 60 s
enrollment, so a few minutes of simulated data exercise everything.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

__all__ = ["REPO", "TOY_FORMATS", "db_rows", "run_cli", "start_cli", "stop_cli", "toy_bundle"]

REPO: Final = Path(__file__).resolve().parents[2]
TOY_FORMATS: Final = ("onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8")


def toy_bundle(base: Path) -> Path:
    """The session's exported toy bundle directory (built on first use)."""
    root = base / "daemon-toy-bundle"
    bundle = root / "bundle"
    if (bundle / "manifest.json").is_file():
        return bundle
    from export.pipeline import ExportOptions, export_run
    from export.signing import DEMO_PRIVATE_KEY
    from tests.fakes.runs import build_run

    # built aside and renamed into place: a build cut short (a test timeout) leaves no
    # half-written bundle for the next test to trip over
    partial = root / "bundle.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(root / "run", ignore_errors=True)
    run = build_run(root / "run")
    # signed with the demo key, which a hub trusts by default: the daemon requires a signature
    export_run(run.path, partial, ExportOptions(formats=TOY_FORMATS, latency_runs=5, plots=False,
                                                compare_methods=False,
                                                sign_key=DEMO_PRIVATE_KEY))
    partial.rename(bundle)
    return bundle


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def _cmd(args: list[str], prelude: str | None) -> list[str]:
    if prelude is None:
        return [sys.executable, "-m", "edge.cli", *args]
    code = prelude + "\nimport sys\nfrom edge.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return [sys.executable, "-c", code, *args]


def run_cli(args: list[str], *, timeout: float = 240.0, prelude: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``edge-daemon ARGS`` in a subprocess, to completion; stdout/stderr captured."""
    return subprocess.run(_cmd(args, prelude), cwd=REPO, env=_env(env), capture_output=True,
                          text=True, timeout=timeout, check=False)


def start_cli(args: list[str], *, prelude: str | None = None, env: dict[str, str] | None = None,
              stdout: Any = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(_cmd(args, prelude), cwd=REPO, env=_env(env), stdout=stdout,
                            stderr=subprocess.PIPE, text=True)


def stop_cli(proc: subprocess.Popen[str], sig: int = signal.SIGTERM,
             timeout: float = 60.0) -> tuple[str, str]:
    """Send ``sig`` and wait (killing it after ``timeout``); stdout and stderr."""
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"daemon did not stop within {timeout} s; stderr:\n{err}") from None
    return out or "", err or ""


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def db_rows(db: Path, table: str = "decisions") -> list[dict[str, Any]]:
    """Every row of ``table`` as a dict (JSON columns decoded), in insertion order."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
    finally:
        conn.close()
    for r in rows:
        for k in ("probabilities", "p_instant", "raw", "detail"):
            if k in r:
                r[k] = json.loads(r[k])
    return rows


def received_streams(raw: Path) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Per device of a ``--record-raw`` file: its first HELLO and the samples it sent, as
    ``core.signal.Stream`` per sensor kind (physical units, device seconds), in arrival
    order: duplicates and late packets are left in, as the daemon received them."""
    import numpy as np

    from core.signal import Stream
    from edge.sources.replay import read_raw_recording
    from firmware_bridge.protocol import Hello, Samples

    hellos: dict[str, Any] = {}
    chunks: dict[str, dict[int, list[Any]]] = {}
    for _, dev, msg in read_raw_recording(raw):
        assert dev is not None
        if isinstance(msg, Hello):
            hellos.setdefault(dev, msg)
        elif isinstance(msg, Samples):
            chunks.setdefault(dev, {}).setdefault(msg.sensor_id, []).append(msg)
    out = {}
    for dev, hello in hellos.items():
        streams = {}
        for sid, info in hello.sensor_map().items():
            packets = chunks.get(dev, {}).get(sid, [])
            if not packets:
                continue
            t = np.concatenate([p.t_device_us * 1e-6 + np.arange(p.count) / info.rate_hz
                                for p in packets])
            values = info.to_physical(np.concatenate([p.raw for p in packets]))
            streams[info.kind] = Stream(t, values, rate_hz=info.rate_hz)
        out[dev] = (hello, streams)
    return out
