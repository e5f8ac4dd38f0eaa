"""edge-export's command line: help, key generation, a bad run reported without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_cli_help_and_keygen(tmp_path: Path) -> None:
    help_text = subprocess.run([sys.executable, "-m", "export.cli", "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=120, check=True).stdout
    for flag in ("--out", "--formats", "--calib-size", "--calib-method", "--exclude-ops",
                 "--sign", "--archive", "--keygen"):
        assert flag in help_text
    out = subprocess.run([sys.executable, "-m", "export.cli", "--keygen", str(tmp_path / "k")],
                         cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    assert "key id" in out
    assert (tmp_path / "k.pem").stat().st_mode & 0o077 == 0  # private key is owner-only
    assert (tmp_path / "k.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_cli_reports_a_bad_run_without_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "export.cli", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "b")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "edge-export failed" in proc.stderr and "Traceback" not in proc.stderr
