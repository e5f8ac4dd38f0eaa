"""The exit status tells the truth (issue 17): `edge-daemon` as a subprocess, the shipped demo
bundle, runs of a few seconds. A finite run that lost a record or never got data exits 1
with one line that says what to check; a sink that cannot write fails the start."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from edge.cli import EXIT_FAILED, EXIT_OK
from tests.fakes.daemon import run_cli


def _last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def test_a_serial_port_that_does_not_exist_fails_a_timed_run_naming_it(tmp_path: Path) -> None:
    proc = run_cli(["--device", "serial", "--port", "/dev/ttyNOPE", "--duration", "2",
                    "--no-db", "--state-dir", str(tmp_path)])
    assert proc.returncode == EXIT_FAILED, proc.stderr
    line = _last_line(proc.stderr)
    assert "/dev/ttyNOPE: no such port; available:" in line
    assert "dialout" in line
    assert "lost" not in proc.stdout.split("drops:")[0]


def test_ble_without_an_adapter_hints_at_bluetoothd(tmp_path: Path) -> None:
    # the hint reads /sys/class/bluetooth; this machine (a container) has none
    if Path("/sys/class/bluetooth").exists() and any(Path("/sys/class/bluetooth").iterdir()):
        pytest.fail("this test needs a machine without a Bluetooth adapter")
    proc = run_cli(["--device", "ble", "--duration", "2", "--no-db",
                    "--state-dir", str(tmp_path)])
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert "no Bluetooth adapter: is bluetoothd running" in _last_line(proc.stderr)


def test_a_file_that_is_not_a_recording_is_refused_in_one_line(tmp_path: Path) -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    proc = run_cli(["--device", "replay", "--file", str(readme), "--no-db",
                    "--state-dir", str(tmp_path)])
    assert proc.returncode == EXIT_FAILED
    assert "not a recording" in _last_line(proc.stderr)
    assert "rejected frames" not in proc.stderr


def test_a_folder_as_the_database_fails_the_start_in_one_line(tmp_path: Path) -> None:
    proc = run_cli(["--device", "sim", "--duration", "2", "--speed", "60",
                    "--db", str(tmp_path), "--state-dir", str(tmp_path)])
    assert proc.returncode == EXIT_FAILED
    line = _last_line(proc.stderr)
    assert line.startswith("edge-daemon: cannot start:") and "is a folder" in line
    assert "summary" not in proc.stdout  # it never ran


def test_an_unwritable_database_place_fails_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = run_cli(["--device", "sim", "--duration", "2", "--speed", "60",
                    "--db", str(blocker / "edge.db"), "--state-dir", str(tmp_path)])
    assert proc.returncode == EXIT_FAILED
    assert "cannot write the database" in _last_line(proc.stderr)


def test_a_database_on_a_read_only_file_system_fails_the_start(tmp_path: Path) -> None:
    """A real read-only mount (tmpfs, ro; needs root, as the disk-full tests do)."""
    import subprocess

    mnt = tmp_path / "ro"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, f"cannot mount a read-only tmpfs (run as root): {r.stderr}"
    try:
        proc = run_cli(["--device", "sim", "--duration", "2", "--speed", "60",
                        "--db", str(mnt / "edge.db"), "--state-dir", str(tmp_path / "s")])
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
    assert proc.returncode == EXIT_FAILED
    line = _last_line(proc.stderr)
    assert "cannot write the database" in line and "Read-only file system" in line


# the database fails on every write after start-up (a card that turned read-only): every
# decision is kept, retried, and at the end counted as lost
_FAILING_DB = """
import sqlite3
from edge.sinks.sqlite import SqliteSink
def _fail(self, batch):
    raise sqlite3.OperationalError("attempt to write a readonly database")
SqliteSink._write_batch = _fail
"""


def test_a_database_failing_all_run_keeps_records_in_the_spill_file_and_exits_non_zero(
        tmp_path: Path) -> None:
    proc = run_cli(["--device", "sim", "--duration", "6", "--speed", "120",
                    "--state-dir", str(tmp_path), "--config", str(_fast_close(tmp_path))],
                   prelude=_FAILING_DB)
    assert proc.returncode == EXIT_FAILED, proc.stderr
    spill = tmp_path / "spill" / "sqlite.jsonl"
    assert "kept in its spill file (sqlite" in _last_line(proc.stderr)
    assert str(spill) in proc.stdout and "not lost" in proc.stdout
    with sqlite3.connect(tmp_path / "edge.db") as conn:  # created at start, then never written
        assert conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0
    # every decision the run printed is in the spill file, none lost
    kept = [json.loads(x) for x in spill.read_text().splitlines()]
    assert kept and all(r["sink"] == "sqlite" for r in kept)
    assert any("state" in r and "probabilities" in r for r in kept)


def test_a_run_that_lost_decisions_exits_non_zero_and_the_summary_says_so(tmp_path: Path) -> None:
    (tmp_path / "spill").write_text("")  # a file where the spill folder goes: nowhere to keep
    proc = run_cli(["--device", "sim", "--duration", "6", "--speed", "120",
                    "--state-dir", str(tmp_path), "--config", str(_fast_close(tmp_path))],
                   prelude=_FAILING_DB)
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert "records were lost" in _last_line(proc.stderr)
    assert "LOST:" in proc.stdout and "sink_sqlite_lost_at_close" in proc.stdout


def _fast_close(tmp_path: Path) -> Path:
    cfg = tmp_path / "fast-close.toml"
    cfg.write_text("[sinks]\nclose_timeout_s = 0.5\n")
    return cfg


def test_a_good_timed_run_exits_0_and_says_where_decisions_went(tmp_path: Path) -> None:
    proc = run_cli(["--device", "sim", "--duration", "4", "--speed", "120",
                    "--state-dir", str(tmp_path)])
    assert proc.returncode == EXIT_OK, proc.stderr
    assert f"decisions went to: {tmp_path / 'edge.db'}" in proc.stdout
    # output in words: no native chatter, the engine choice said once, events without dicts
    assert "XNNPACK" not in proc.stderr
    models = proc.stderr.count(" verified: ")  # one engine choice said per model, not two
    assert models >= 1 and proc.stderr.count("fastest acceptable format") == models, proc.stderr
    events = [x for x in proc.stderr.splitlines() if " edge.decisions: " in x]
    assert events and not any("{" in x for x in events)


def test_a_service_waiting_for_its_port_tells_systemd_what_to_check(tmp_path: Path) -> None:
    """No --duration: the daemon keeps retrying, and sd_notify STATUS= says why it waits."""
    import socket

    from tests.fakes.daemon import start_cli, stop_cli

    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    sock.settimeout(30.0)
    proc = start_cli(["--device", "serial", "--port", "/dev/ttyNOPE", "--no-db",
                      "--state-dir", str(tmp_path / "state"), "--status", "off"],
                     env={"NOTIFY_SOCKET": addr})
    try:
        said = []
        while not any(m.startswith("STATUS=waiting: ") for m in said):
            said += sock.recv(4096).decode().splitlines()  # times out: the test fails
    finally:
        _, err = stop_cli(proc)
        sock.close()
    status = next(m for m in said if m.startswith("STATUS=waiting: "))
    assert "/dev/ttyNOPE: no such port; available:" in status
    assert "waiting for data: serial port /dev/ttyNOPE" in err  # and once in the log
    assert proc.returncode == EXIT_OK  # stopped by its owner, nothing lost
