"""wearable-sim's command line: help and a short run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from firmware_bridge.sim.cli import main as cli_main


def test_cli_help_and_a_short_run(capsys: pytest.CaptureFixture[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "firmware_bridge.sim.cli", "--help"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert "--speed" in out.stdout and "--drop" in out.stdout and "examples" in out.stdout
    assert cli_main(["--synthetic-minutes", "0.2", "--speed", "inf", "--drop", "0.1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("/dev/pts/")
    assert "dropped=" in captured.err
    assert cli_main(["--recording", "/nonexistent.npz"]) == 2


def test_cli_poses_as_a_stock_heart_rate_strap(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--kind", "hr", "--synthetic-minutes", "0.5", "--speed", "inf"]) == 0
    err = capsys.readouterr().err
    assert "(hr@1Hz, rr@1Hz)" in err  # nothing but what the Heart Rate Service gives
