"""Install the daemon as a systemd service (``edge-daemon install-service``) and check a
configuration file without starting anything (``edge-daemon check-config``).

What an install writes, under ``root`` (``/`` for a real install, a folder with ``--root``):

- ``etc/systemd/system/edge-daemon.service``: the shipped unit (``edge/systemd/``) with
  ``ExecStart`` pointing at this install's ``edge-daemon`` and a fixed system user instead of
  a dynamic one, so that the files it owns keep their owner across restarts;
- ``etc/sysusers.d/wearable-edge.conf``: that user, in the dialout (serial adapters) and
  bluetooth (BlueZ's D-Bus policy) groups. A real install runs ``systemd-sysusers`` on it,
  which creates the user; under ``--root`` the file describes it for whoever builds the image;
- ``etc/wearable-edge/edge-daemon.toml`` from the shipped example, unless one is there;
- ``etc/wearable-edge/trusted-keys/``: the installer's own export key (``edge-export`` makes
  it), pinned, when there is one;
- ``var/lib/wearable-edge/``: the state directory (systemd's ``StateDirectory=`` makes it
  too; it is created here so a ``--root`` image is complete).

Library code: the CLI prints the lines these functions return.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from core.errors import WearableEdgeError
from edge.errors import EdgeError

__all__ = ["EXAMPLE_CONFIG", "SERVICE_USER", "InstallError", "InstallPlan", "check_config",
           "install_service"]

SYSTEMD_DIR: Final = Path(__file__).resolve().parent / "systemd"
UNIT_TEMPLATE: Final = SYSTEMD_DIR / "edge-daemon.service"
EXAMPLE_CONFIG: Final = SYSTEMD_DIR / "edge-daemon.example.toml"
SERVICE_USER: Final = "wearable-edge"
UNIT_PATH: Final = Path("etc/systemd/system/edge-daemon.service")
SYSUSERS_PATH: Final = Path("etc/sysusers.d/wearable-edge.conf")
CONFIG_PATH: Final = Path("etc/wearable-edge/edge-daemon.toml")
KEYS_DIR: Final = Path("etc/wearable-edge/trusted-keys")
STATE_DIR: Final = Path("var/lib/wearable-edge")
# ProtectHome=yes in the unit hides these from the service: an edge-daemon installed there
# (pipx as a normal user, a venv in a home folder) would not start
_HIDDEN_FROM_SERVICE: Final = ("/home/", "/root/", "/run/user/")


class InstallError(EdgeError):
    """The service cannot be installed as asked; the message says what to do instead."""


@dataclass
class InstallPlan:
    """What :func:`install_service` did, in words (one line per file or step)."""

    root: Path
    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def at(self, rel: Path) -> Path:
        return self.root / rel


def _unit_text(executable: Path) -> str:
    text = UNIT_TEMPLATE.read_text()
    text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={executable}", text, count=1)
    # a fixed user (sysusers.d) instead of DynamicUser: its uid owns /var/lib/wearable-edge
    # for good, and a technician can `sudo -u wearable-edge edge-daemon status`
    text = re.sub(r"(?m)^DynamicUser=yes$", f"User={SERVICE_USER}\nGroup={SERVICE_USER}", text)
    return text


def _sysusers_text() -> str:
    return (f"# the edge-daemon service's user (edge-daemon install-service)\n"
            f'u {SERVICE_USER} - "wearable-edge hub daemon" /{STATE_DIR} -\n'
            f"m {SERVICE_USER} dialout\n"
            f"m {SERVICE_USER} bluetooth\n")


def _write(plan: InstallPlan, rel: Path, text: str, mode: int) -> None:
    path = plan.at(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    plan.done.append(f"wrote {path}")


def install_service(root: Path | None = None, *, executable: Path,
                    export_key: Path | None = None) -> InstallPlan:
    """Write the service's files under ``root`` (None: the real system, as root, then create
    the user and reload systemd). Raises :class:`InstallError`."""
    real = root is None
    if real and os.geteuid() != 0:
        raise InstallError("installing the service needs root: sudo edge-daemon "
                           "install-service (or --root DIR to write the files into DIR)")
    plan = InstallPlan(Path("/") if root is None else root)
    if str(executable).startswith(_HIDDEN_FROM_SERVICE):
        plan.warnings.append(
            f"{executable} is under a home folder, which the service cannot see "
            "(ProtectHome=yes): install wearable-edge in /opt (README: Raspberry Pi)")
    try:
        _write(plan, UNIT_PATH, _unit_text(executable), 0o644)
        _write(plan, SYSUSERS_PATH, _sysusers_text(), 0o644)
        config = plan.at(CONFIG_PATH)
        if config.exists():
            plan.done.append(f"kept {config} (already there)")
        else:
            _write(plan, CONFIG_PATH, EXAMPLE_CONFIG.read_text(), 0o644)
        if export_key is not None and export_key.is_file():
            keys = plan.at(KEYS_DIR)
            keys.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(export_key, keys / export_key.name)
            plan.done.append(f"pinned {export_key} as a trusted bundle key in {keys}")
        state = plan.at(STATE_DIR)
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o700)
        plan.done.append(f"state directory {state}")
    except OSError as e:
        raise InstallError(f"cannot write {e.filename or plan.root}: {e.strerror or e}") from e
    if real:
        _activate(plan)
    else:
        plan.done.append(f"the service user is described in {plan.at(SYSUSERS_PATH)} "
                         "(systemd-sysusers creates it on the target)")
    return plan


def _activate(plan: InstallPlan) -> None:
    """On the real system: create the user, give it the state, tell systemd."""
    for cmd in (["systemd-sysusers", str(plan.at(SYSUSERS_PATH))],
                ["chown", f"{SERVICE_USER}:{SERVICE_USER}", str(plan.at(STATE_DIR))],
                ["systemctl", "daemon-reload"]):
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            err = getattr(e, "stderr", "") or str(e)
            raise InstallError(f"{' '.join(cmd)} failed: {err.strip()}") from e
        plan.done.append(f"ran {' '.join(cmd)}")


def check_config(path: Path) -> list[str]:
    """Validate the configuration at ``path`` and verify the bundles it names, starting
    nothing; lines that say what it sets up. Raises a WearableEdgeError naming the key."""
    from edge.config import load_config
    from edge.models import bundle_paths
    from edge.signing import load_trusted_bundle

    if not path.is_file():
        raise InstallError(f"{path}: no such file")
    try:
        cfg = load_config(path)
    except WearableEdgeError as e:
        raise InstallError(f"{path}: {e}") from e
    source = {"serial": f"serial port {cfg.serial.port} at {cfg.serial.baud} baud",
              "ble": "BLE " + (", ".join(cfg.ble.devices) or "(any wearable we can read)"),
              }.get(cfg.device, cfg.device)
    lines = [f"{path}: ok", f"  source: {source}"]
    for b in bundle_paths(cfg):
        with load_trusted_bundle(b, cfg) as bundle:
            signer = f"signed by {bundle.signed_by}" if bundle.signed_by else "UNSIGNED"
            lines.append(f"  model: {bundle.model_id} {bundle.model_version} ({b}, {signer})")
    lines.append(f"  database: {cfg.db_path} (the service: /{STATE_DIR}/edge.db)"
                 if not (cfg.db or cfg.state_dir) else f"  database: {cfg.db_path}")
    return lines
