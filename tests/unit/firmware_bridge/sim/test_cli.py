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
