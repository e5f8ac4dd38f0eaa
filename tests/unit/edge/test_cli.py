"""edge.cli: the MQTT and alert settings, and the `history` and `status` commands.

Everything here runs in-process through :func:`edge.cli.main` and stops before a daemon
would start (a bad setting) or starts none (`history`, `status`); the daemon's own runs are
end-to-end tests (tests/e2e).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from edge import cli
from edge.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, build_parser, main
from edge.config import DaemonConfig
from edge.decisions import Decision, Event
from edge.sinks import SqliteSink
from edge.status_file import write_status


def _config_of(argv: list[str]) -> DaemonConfig:
    return cli._config_from_args(build_parser().parse_args(cli._argv_with_command(argv)))


def test_mqtt_flag_sets_the_broker_url() -> None:
    cfg = _config_of(["--device", "sim", "--mqtt", "mqtts://hub@192.168.1.10:8883"])
    assert cfg.mqtt.enabled and cfg.mqtt.url == "mqtts://hub@192.168.1.10:8883"
    b = cfg.mqtt.broker()
    assert (b.host, b.port, b.username, b.tls) == ("192.168.1.10", 8883, "hub", True)
    assert not _config_of(["--device", "sim"]).mqtt.enabled  # off unless asked for


@pytest.mark.parametrize(("url", "says"), [
    ("http://broker", "is not an MQTT URL"),
    ("mqtt://hub:s3cr3t-pw@broker", "contains a password"),
    ("mqtt://broker:99999", "port"),
])
def test_a_bad_mqtt_url_is_one_line_naming_the_key_and_never_the_password(
        url: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--device", "sim", "--mqtt", url]) == EXIT_USAGE
    err = capsys.readouterr().err
    # the flag the user typed, not the config key it sets (issue 17)
    assert err.count("\n") == 1 and "edge-daemon: --mqtt: " in err and says in err
    assert "s3cr3t" not in err


def test_a_bad_flag_value_names_the_flag_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--device", "sim", "--duration", "-1"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "edge-daemon: --duration: -1.0 must be >= 0\n"
    with pytest.raises(SystemExit) as exit_:
        main(["--threads", "abc"])
    assert exit_.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threads: invalid int value: 'abc'" in err
    assert "usage:" not in err


def test_a_bad_key_in_the_config_file_names_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "edge-daemon.toml"
    path.write_text("duration = -1\n")
    assert main(["--config", str(path)]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith(f"edge-daemon: {path}: config key 'duration': ")


def test_a_file_that_is_not_a_bundle_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    readme = Path(__file__).resolve().parents[3] / "README.md"
    assert main(["--device", "sim", "--bundle", str(readme), "--no-db"]) == EXIT_FAILED
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("edge-daemon:")]
    assert "not a bundle" in line and "method gz" not in err  # not tarfile's five lines


@pytest.mark.parametrize(("toml", "key", "says"), [
    ("[mqtt]\nurl = 'mqtt://b'\nqos = 0\n", "mqtt.qos", "would lose messages"),
    ("[mqtt]\nurl = 'mqtt://b'\nca_file = '/etc/ca.pem'\n", "mqtt.ca_file", "use mqtts://"),
    ("[mqtt]\nurl = 'mqtt://b'\npassword_file = '/etc/pw'\n", "mqtt.url", "needs a user name"),
    ("[mqtt]\npassword = 'x'\n", "mqtt.password", "unknown key"),
    ("[alerts]\ncooldown_min = -1\n", "alerts.cooldown_min", "must be >= 0"),
    ("[alerts.wearers.anna]\nhub_unhealthy_min = 1\n", "alerts.wearers.anna.hub_unhealthy_min",
     "not a per-wearer threshold"),
    ("[alerts.wearers.anna]\nbattery_low_pct = 120\n", "alerts.wearers.anna.battery_low_pct",
     "percentage"),
    ("[decisions]\nsustained_stress_s = 600\n", "decisions.sustained_stress_s",
     "set sustained_stress_min (minutes) under [alerts]"),
    ("[residents]\n'AA:BB' = 'hub'\n", "residents.AA:BB", "names the hub itself"),
    ("[mqtt]\nretired = ['anna', '']\n", "mqtt.retired[1]", "is not a resident id"),
])
def test_config_sections_are_validated_naming_the_key(
        toml: str, key: str, says: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(toml)
    assert main(["--config", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"'{key}'" in err and says in err, err


def test_mqtt_and_alerts_sections_load(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text("[mqtt]\nurl = 'mqtt://hub@10.0.0.2'\npassword_env = 'EDGE_MQTT_PW'\n"
                    "hub_id = 'care-home-1'\n[alerts]\nsustained_stress_min = 15\n"
                    "[alerts.wearers.anna]\nsustained_stress_min = 5\n")
    cfg = _config_of(["--config", str(path)])
    assert cfg.mqtt.resolved_hub_id() == "care-home-1"
    assert cfg.alerts.threshold("anna", "sustained_stress_min") == 5.0
    assert cfg.alerts.threshold("bob", "sustained_stress_min") == 15.0
    # the command line wins over the file
    cfg = _config_of(["--config", str(path), "--mqtt", "mqtt://hub@10.0.0.3"])
    assert cfg.mqtt.url == "mqtt://hub@10.0.0.3" and cfg.mqtt.password_env == "EDGE_MQTT_PW"


# -- history ---------------------------------------------------------------------------------
def _database(path: Path, t0: float) -> None:
    sink = SqliteSink(path, retention_days=0, commit_interval_s=0.05)
    sink.start()
    p = {"baseline": 0.1, "stress": 0.8, "amusement": 0.1}
    for i in range(30):
        sink.submit(Decision("anna", "AA:BB", t0 + 5.0 * i, "stress", p, p, "m", i, i + 60, i))
    sink.submit(Event("anna", "AA:BB", t0 + 100.0, "alert",
                      {"rule": "sustained_stress", "minutes": 10.0,
                       "message": "anna has been stressed for 10 min"}))
    assert sink.flush(10.0)
    sink.close(5.0)


def test_history_in_words_and_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "edge.db"
    _database(db, time.time() - 3600.0)
    assert main(["history", "--db", str(db)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("History of the last 24 h 00 min")
    assert "anna (wearable AA:BB): 30 decisions" in out
    assert "stressed 100% (2 min)" in out
    assert "ALERT: anna has been stressed for 10 min" in out

    assert main(["history", "--db", str(db), "--json", "--since", "all"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    (anna,) = data["wearers"]
    assert anna["decisions"] == 30 and data["since"] is None
    assert [e["kind"] for e in anna["events"]] == ["alert"]

    assert main(["history", "--db", str(db), "--wearer", "bob"]) == EXIT_OK
    assert "nothing stored in this period for 'bob'" in capsys.readouterr().out
    assert main(["history", "--db", str(db), "--since", "30m"]) == EXIT_OK  # an hour ago: out
    assert "nothing stored in this period" in capsys.readouterr().out


def test_history_errors_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--db", str(tmp_path / "none.db")]) == EXIT_FAILED
    assert "no database at" in capsys.readouterr().err
    db = tmp_path / "edge.db"
    _database(db, time.time())
    assert main(["history", "--db", str(db), "--since", "yesterday"]) == EXIT_FAILED
    assert "give a duration such as 30m, 24h or 7d" in capsys.readouterr().err


# -- status ----------------------------------------------------------------------------------
def _status(updated: float, **changes: object) -> dict[str, object]:
    s: dict[str, object] = {
        "pid": os.getpid(), "running": True, "updated": updated, "started": updated - 60.0,
        "interval_s": 5.0, "realtime": True, "source": "sim", "model": "m", "engine": "onnx",
        "decisions": 3, "stop_reason": "", "hub": {"problems": [], "sinks": {}},
        "wearers": [{"resident": "anna", "device": "sim-0", "note": "", "connected": None,
                     "battery_pct": None, "heart_rate_bpm": None, "alerts": [],
                     "last_decision": {"t": updated - 1.0, "state": "baseline", "p": 0.9}}],
    }
    s.update(changes)
    return s


def test_status_of_a_running_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_status(tmp_path / "status.json", _status(time.time()))
    assert main(["status", "--state-dir", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("edge-daemon is running") and "anna (wearable sim-0): baseline" in out
    assert main(["status", "--state-dir", str(tmp_path), "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "running" and data["stale"] is False


def test_status_of_a_hung_stopped_or_absent_daemon_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == EXIT_FAILED
    assert "no status file at" in capsys.readouterr().err
    write_status(tmp_path / "status.json", _status(time.time() - 120.0))
    assert main(["status", "--state-dir", str(tmp_path)]) == EXIT_FAILED
    assert "NOT RESPONDING" in capsys.readouterr().out
    write_status(tmp_path / "status.json", _status(time.time(), running=False,
                                                   stop_reason="SIGTERM received"))
    assert main(["status", "--state-dir", str(tmp_path)]) == EXIT_FAILED
    assert "stopped at" in capsys.readouterr().out


def test_status_and_history_find_the_service_state_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`sudo edge-daemon status` on a hub: root's own state directory is empty; the
    service's (StateDirectory=wearable-edge) is where the daemon writes."""
    service = tmp_path / "var-lib-wearable-edge"
    monkeypatch.setattr(cli, "SERVICE_STATE_DIR", service)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "home-state"))
    write_status(service / "status.json", _status(time.time()))
    _database(service / "edge.db", time.time() - 60.0)
    assert main(["status"]) == EXIT_OK
    assert "edge-daemon is running" in capsys.readouterr().out
    assert main(["history"]) == EXIT_OK
    assert "anna (wearable AA:BB): 30 decisions" in capsys.readouterr().out
    # a state directory given explicitly is never second-guessed
    assert main(["status", "--state-dir", str(tmp_path / "elsewhere")]) == EXIT_FAILED
