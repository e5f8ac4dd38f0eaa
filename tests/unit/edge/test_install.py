"""edge-daemon install-service and check-config (issue 17): the Pi install, into a temporary
root, checked by systemd itself (`systemd-analyze verify`, Debian's systemd package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import EXIT_OK, EXIT_USAGE, main
from edge.config import load_config
from edge.install import EXAMPLE_CONFIG, InstallError, install_service

REPO = Path(__file__).resolve().parents[3]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


def test_install_into_a_root_writes_what_systemd_accepts(tmp_path: Path) -> None:
    key = tmp_path / "config" / "wearable-edge" / "bundle-signing.pub.pem"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN PUBLIC KEY-----\n")
    root = tmp_path / "root"
    p = _cli("install-service", "--root", str(root), env={"XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert p.returncode == 0, p.stderr
    unit = root / "etc/systemd/system/edge-daemon.service"
    text = unit.read_text()
    exe = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert exe.split()[0].removeprefix("ExecStart=").endswith("/edge-daemon")
    assert "--config /etc/wearable-edge/edge-daemon.toml" in exe
    assert "User=wearable-edge" in text and "DynamicUser" not in text
    users = (root / "etc/sysusers.d/wearable-edge.conf").read_text().splitlines()
    assert "m wearable-edge dialout" in users and "m wearable-edge bluetooth" in users
    assert any(u.startswith("u wearable-edge ") for u in users)
    config = root / "etc/wearable-edge/edge-daemon.toml"
    assert config.read_text() == EXAMPLE_CONFIG.read_text()
    assert (root / "etc/wearable-edge/trusted-keys/bundle-signing.pub.pem").is_file()
    assert (root / "var/lib/wearable-edge").stat().st_mode & 0o077 == 0

    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze is needed (apt-get install systemd)"
    v = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True, text=True,
                       timeout=60, check=False,
                       env={"SYSTEMD_UNIT_PATH": f"{unit.parent}:", "PATH": "/usr/bin:/bin"})
    assert v.returncode == 0 and v.stderr == "", v.stderr


def test_a_second_install_keeps_the_edited_config(tmp_path: Path) -> None:
    install_service(tmp_path, executable=Path("/opt/wearable-edge/.venv/bin/edge-daemon"))
    config = tmp_path / "etc/wearable-edge/edge-daemon.toml"
    config.write_text('device = "ble"\n')
    plan = install_service(tmp_path, executable=Path("/opt/wearable-edge/.venv/bin/edge-daemon"))
    assert config.read_text() == 'device = "ble"\n'
    assert any(line.startswith("kept ") for line in plan.done)


def test_an_executable_in_a_home_folder_is_warned_about(tmp_path: Path) -> None:
    plan = install_service(tmp_path, executable=Path("/home/pi/.local/bin/edge-daemon"))
    assert any("ProtectHome" in w for w in plan.warnings)


def test_a_real_install_by_a_normal_user_says_to_use_sudo(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(InstallError, match="needs root: sudo edge-daemon install-service"):
        install_service(None, executable=Path("/opt/wearable-edge/.venv/bin/edge-daemon"))


def test_the_shipped_example_config_loads() -> None:
    cfg = load_config(EXAMPLE_CONFIG)
    assert cfg.device == "serial" and cfg.serial.port == "/dev/ttyUSB0"


def test_check_config_says_ok_or_names_the_key_with_a_did_you_mean(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE_CONFIG)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"{EXAMPLE_CONFIG}: ok") and "signed by" in out
    bad = tmp_path / "edge-daemon.toml"
    bad.write_text('devcie = "serial"\n')
    assert main(["check-config", str(bad)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "did you mean 'device'" in err and str(bad) in err
