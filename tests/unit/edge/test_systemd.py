"""edge/systemd: the unit reaches no network; the MQTT drop-in opens exactly the broker.

The files are parsed as systemd does for the settings that matter here (later assignments of
the same key add to earlier ones, an empty assignment resets). ``systemd-analyze verify``,
where installed, also checks every key is known in its section.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

UNIT = Path(__file__).resolve().parents[3] / "edge" / "systemd"


def _settings(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def test_the_unit_alone_has_no_network() -> None:
    unit = _settings(UNIT / "edge-daemon.service")
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert unit["IPAddressDeny"] == ["any"] and "IPAddressAllow" not in unit


def test_the_mqtt_drop_in_allows_one_address_and_hands_over_the_password() -> None:
    drop_in = _settings(UNIT / "mqtt.conf")
    assert drop_in["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    (allowed,) = drop_in["IPAddressAllow"]  # exactly one: the broker
    assert " " not in allowed and "/" not in allowed and allowed != "any"
    (credential,) = drop_in["LoadCredential"]
    name = credential.split(":", 1)[0]
    text = (UNIT / "mqtt.conf").read_text()
    # the configuration the drop-in documents reads the password where systemd puts it
    assert f'password_file = "/run/credentials/edge-daemon.service/{name}"' in text


def test_systemd_accepts_the_unit_with_its_drop_in(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:  # not a systemd machine: the parse above is the check
        return
    (tmp_path / "edge-daemon.service.d").mkdir()
    shutil.copy(UNIT / "edge-daemon.service", tmp_path)
    shutil.copy(UNIT / "mqtt.conf", tmp_path / "edge-daemon.service.d")
    p = subprocess.run([tool, "verify", "--man=no", str(tmp_path / "edge-daemon.service")],
                       capture_output=True, text=True, timeout=60, check=False,
                       env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"})
    problems = [line for line in p.stderr.splitlines()
                if "is not executable" not in line]  # the install path does not exist here
    assert problems == [], p.stderr
