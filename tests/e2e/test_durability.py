"""Durability: SIGKILL under load leaves a consistent database holding every decision it had
committed; SIGTERM (after such a crash) loses nothing already computed.

The daemon runs as a user runs it (two simulated wearables at 100x, commits every 0.2 s, a
JSON lines file flushed per decision as the independent witness of what was computed). The
test reads the database while the daemon writes it (WAL lets a reader in), kills the daemon
with SIGKILL right after a read, and checks:

- ``PRAGMA integrity_check`` is ``ok`` and the schema is intact;
- every row the test had read before the kill is still there, unchanged and in order
  (nothing after a commit is lost);
- the decisions in the database are a prefix of the decisions emitted (JSON lines): the
  database never holds a decision that was not computed, nor skips one.

Three kills in a row on the same files (each restart recovers the WAL), then a SIGTERM run
whose every decision must reach the database.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.daemon import db_rows, start_cli, stop_cli, toy_bundle, wait_for
from tests.fakes.records import json_lines

pytestmark = pytest.mark.slow

KILLS = 3
KEY = ("resident", "window_index", "state", "t")  # what identifies a decision in both outputs


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


def key(d: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(round(d[k], 3) if k == "t" else d[k] for k in KEY)


def committed(db: Path) -> list[tuple[Any, ...]]:
    """The decisions a reader sees right now (committed transactions only)."""
    try:
        return [(r["id"], *key(r)) for r in db_rows(db)]
    except sqlite3.Error:  # not created yet
        return []


def emitted(jsonl: Path) -> list[tuple[Any, ...]]:
    """Decisions in a JSON lines file; a line cut by the kill is not one."""
    return [key(d) for d in json_lines(jsonl.read_text()) if d.get("type") == "decision"]


def start(bundle: Path, tmp: Path, run: int) -> Any:
    cfg = tmp / "edge-daemon.toml"
    cfg.write_text("[sinks]\ncommit_interval_s = 0.2\nbatch_size = 32\n")
    return start_cli(["--config", str(cfg), "--device", "sim", "--sim-devices", "2",
                      "--bundle", str(bundle), "--backend", "onnx", "--precision", "fp32",
                      "--speed", "100", "--db", str(tmp / "edge.db"),
                      "--state-dir", str(tmp / "state"), "--jsonl", str(tmp / f"run{run}.jsonl"),
                      "--status", "off", "--log-level", "warning",
                      "--summary-json", str(tmp / f"summary{run}.json")])


def integrity(db: Path) -> None:
    conn = sqlite3.connect(db)  # a writer's open replays the WAL the killed process left
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"decisions", "events"} <= tables
    finally:
        conn.close()


def test_sigkill_under_load_keeps_every_commit_then_sigterm_loses_nothing(
        bundle: Path, tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    before: list[tuple[Any, ...]] = []  # rows of the earlier runs
    ledger = []
    for run in range(KILLS):
        proc = start(bundle, tmp_path, run)
        try:
            # under load: wait until this run has committed a good number of decisions
            want = len(before) + 60 * (run + 1)
            wait_for(lambda n=want: len(committed(db)) >= n, 120, "decisions committed")
            seen = committed(db)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        integrity(db)
        after = committed(db)
        # nothing committed is lost, nothing earlier is disturbed
        assert after[:len(seen)] == seen
        assert after[:len(before)] == before
        # this run's rows: a prefix of what it computed
        mine = [r[1:] for r in after[len(before):]]
        computed = emitted(tmp_path / f"run{run}.jsonl")
        assert mine == computed[:len(mine)], (len(mine), len(computed))
        ledger.append({"run": run, "committed_seen_before_kill": len(seen) - len(before),
                       "rows_after_kill": len(mine), "emitted": len(computed)})
        before = after

    # the last run ends with SIGTERM: every decision it computed reaches the database
    proc = start(bundle, tmp_path, KILLS)
    try:
        wait_for(lambda: len(committed(db)) >= len(before) + 60, 120, "decisions committed")
        time.sleep(0.3)  # some decisions computed but not yet committed
        _, err = stop_cli(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    integrity(db)
    after = committed(db)
    assert after[:len(before)] == before
    mine = [r[1:] for r in after[len(before):]]
    computed = emitted(tmp_path / f"run{KILLS}.jsonl")
    summary = json.loads((tmp_path / f"summary{KILLS}.json").read_text())
    assert mine == computed
    assert len(mine) == summary["decisions"] == summary["windows"]["valid"]
    assert summary["drops"]["windows_lost_at_shutdown"] == 0
    assert all(v == 0 for k, v in summary["drops"].items() if "sink" in k)
    ledger.append({"run": KILLS, "rows_after_sigterm": len(mine), "emitted": len(computed)})
    print("durability:", ledger)
