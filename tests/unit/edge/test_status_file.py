"""edge.status_file: the live status a daemon writes and `edge-daemon status` reads."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from edge.status_file import StatusError, read_status, status_lines, write_status

T0 = 1_700_000_000.0
UTC = dt.UTC


def _status(**changes: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "pid": os.getpid(), "running": True, "updated": T0, "started": T0 - 3600.0,
        "interval_s": 5.0, "realtime": True, "source": "ble", "model": "student-x",
        "engine": "tflite:int8", "decisions": 720, "stop_reason": "",
        "wearers": [{
            "resident": "anna", "device": "AA:BB", "note": "", "connected": True,
            "battery_pct": 57.0, "heart_rate_bpm": 71, "alerts": ["sustained_stress"],
            "last_decision": {"t": T0 - 4.0, "state": "stress", "p": 0.82},
        }],
        "hub": {"problems": [], "alerts": [], "drops": {},
                "sinks": {"sqlite": {"pending": 0, "fault": None},
                          "mqtt": {"pending": 0, "fault": None, "connected": True,
                                   "outbox": 3}}},
    }
    s.update(changes)
    return s


def test_written_atomically_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / "status.json"
    write_status(path, _status())
    write_status(path, _status(decisions=721))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temporary left
    r = read_status(path, now=T0 + 2.0)
    assert r.running and not r.stale and r.alive is True and r.age_s == 2.0
    assert r.data["decisions"] == 721 and r.to_json()["verdict"] == "running"


def test_a_running_daemon_in_words() -> None:
    from edge.status_file import StatusReport

    r = StatusReport(Path("s"), _status(), T0 + 2.0, 2.0, False, True)
    text = "\n".join(status_lines(r, tz=UTC))
    assert text.startswith(f"edge-daemon is running (pid {os.getpid()}, up 60 min; ")
    assert ("anna (wearable AA:BB): stress (p 0.82), decided 4 s ago; connected, battery 57 %, "
            "heart rate 71 bpm") in text
    assert "ALERT active: sustained stress" in text
    assert "Hub: healthy" in text and "mqtt connected (3 waiting)" in text


def test_stale_dead_and_stopped_are_told_apart(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    write_status(path, _status())
    hung = read_status(path, now=T0 + 60.0)  # 12 intervals without an update, process alive
    assert hung.stale and not hung.running
    assert status_lines(hung)[0].startswith("edge-daemon is NOT RESPONDING")
    write_status(path, _status(pid=2**22 + 12345))  # beyond pid_max: no such process
    dead = read_status(path, now=T0 + 1.0)
    assert dead.alive is False and not dead.running
    assert "gone without saying so" in status_lines(dead)[0]
    write_status(path, _status(running=False, stop_reason="SIGTERM received",
                               hub={"problems": ["output mqtt failing (x)"],
                                    "sinks": {"mqtt": {"connected": False, "outbox": 0}}}))
    stopped = read_status(path, now=T0 + 86400.0)
    lines = status_lines(stopped, tz=UTC)
    assert not stopped.running and not stopped.stale  # a clean stop is not a hang
    assert lines[0] == ("edge-daemon is not running: it stopped at 2023-11-14 22:13:20 "
                        "(SIGTERM received)")
    assert "Hub: PROBLEM: output mqtt failing (x)" in lines
    assert "NOT CONNECTED" not in "\n".join(lines)  # a stopped daemon is connected to nothing


def test_missing_or_foreign_files_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StatusError, match="no daemon has run with this state directory"):
        read_status(tmp_path / "status.json")
    (tmp_path / "status.json").write_text("not json")
    with pytest.raises(StatusError, match="not a status file"):
        read_status(tmp_path / "status.json")
    (tmp_path / "status.json").write_text(json.dumps({"running": True}))
    with pytest.raises(StatusError, match="no update time"):
        read_status(tmp_path / "status.json")
