"""Graceful shutdown loses no decision already computed, nor any window already cut.

In-process: a daemon whose engine is deliberately slow (the real ONNX engine plus a delay),
fed by the simulator as fast as it can go, is asked to stop while windows wait in the
inference queue and decisions wait in an uncommitted database batch. Every window cut
must get its decision and every decision must reach the database.
In a subprocess: SIGTERM to the real CLI, and the same accounting from the outside.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.config import DaemonConfig, apply_overrides
from edge.daemon import Daemon
from edge.engines import open_engine
from edge.sinks import SqliteSink
from edge.sources.sim import SimSource
from firmware_bridge.sim import SimulatedWearable
from firmware_bridge.sim.synthetic import synthetic_recording
from tests.fakes.daemon import db_rows, start_cli, stop_cli, toy_bundle, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


class SlowEngine:
    """The real engine, made slower than the data: windows pile up in the queue."""

    def __init__(self, engine: object, delay_s: float) -> None:
        self.engine = engine
        self.delay_s = delay_s
        self.windows = 0

    def run(self, x: np.ndarray) -> np.ndarray:
        time.sleep(self.delay_s * len(x))
        self.windows += len(x)
        return self.engine.run(x)  # type: ignore[attr-defined, no-any-return]


async def test_stop_drains_queued_windows_and_flushes_the_batch(bundle: Path,
                                                                tmp_path: Path) -> None:
    b = load_bundle(bundle)
    cfg = apply_overrides(DaemonConfig(), {
        "state_dir": str(tmp_path / "state"), "device": "sim",
        "inference.queue_size": 64, "inference.max_batch": 4,
    })
    engine = SlowEngine(open_engine(b, "onnx", "fp32", 1), delay_s=0.01)
    wearable = SimulatedWearable(synthetic_recording(900.0, seed=1), speed=float("inf"))
    source = SimSource([wearable], class_names=b.class_names)
    db = tmp_path / "edge.db"
    sink = SqliteSink(db, commit_interval_s=600.0, batch_size=10_000)  # nothing commits early
    daemon = Daemon(cfg, bundle=b, engine=engine, source=source, sinks=[sink])

    async def stop_when_busy() -> int:
        while daemon.worker.outstanding < 20:  # noqa: ASYNC110 - polling a counter is the test
            await asyncio.sleep(0.01)
        queued = daemon.worker.outstanding
        assert not db_rows_exist(db)
        daemon.request_stop("test")
        return queued

    stopper = asyncio.create_task(stop_when_busy())
    summary = await asyncio.wait_for(daemon.run(), 300)
    queued_at_stop = await stopper
    assert queued_at_stop >= 20

    rows = db_rows(db)
    assert summary["stop_reason"] == "test"
    assert summary["windows"]["valid"] == summary["decisions"] == len(rows) == engine.windows
    assert daemon.worker.counters.get("dropped_queue_full", 0) == 0
    assert all(v == 0 for v in summary["drops"].values()), summary["drops"]
    idx = [r["window_index"] for r in rows]
    assert idx == list(range(idx[0], idx[0] + len(idx)))  # no hole: nothing lost in between


def db_rows_exist(db: Path) -> bool:
    try:
        return bool(db_rows(db))
    except sqlite3.Error:  # no file or no table yet: no rows either
        return False


def test_sigterm_loses_nothing_and_exits_zero(bundle: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "edge-daemon.toml"
    cfg.write_text("[sinks]\ncommit_interval_s = 600.0\nbatch_size = 100000\n")
    db = tmp_path / "edge.db"
    out_path = tmp_path / "stdout.jsonl"
    with out_path.open("w") as out:
        proc = start_cli(["--config", str(cfg), "--device", "sim", "--bundle", str(bundle),
                          "--speed", "100", "--json", "--db", str(db), "--state-dir",
                          str(tmp_path / "s"), "--summary-json", str(tmp_path / "summary.json")],
                         stdout=out)
        try:
            wait_for(lambda: out_path.read_text().count('"decision"') >= 40, 120,
                     "decisions on stdout")
            _, err = stop_cli(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    printed = [json.loads(x) for x in out_path.read_text().splitlines()]
    decisions = [x for x in printed if x["type"] == "decision"]
    rows = db_rows(db)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stop_reason"] == "SIGTERM received"
    assert len(rows) == len(decisions) == summary["decisions"] == summary["windows"]["valid"]
    assert [r["window_index"] for r in rows] == [d["window_index"] for d in decisions]
    assert summary["drops"]["windows_lost_at_shutdown"] == 0
