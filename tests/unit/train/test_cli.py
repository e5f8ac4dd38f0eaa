"""train.cli: help, and errors that name the key or the file without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.cli import main


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["fit", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--set" in out and "RUN" in out


def test_cli_bad_override_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["fit", "--dataset", "arrays", "--data", str(tmp_path / "x.npz"), "--out",
         str(tmp_path / "run"), "--set", "teachers.steps=lots", "--no-progress"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "teachers.steps" in err and "integer" in err


def test_cli_missing_data_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["fit", "--dataset", "wesad", "--data", str(tmp_path / "nothing"), "--out",
         str(tmp_path / "run"), "--quick", "--no-progress"]
    )  # fmt: skip
    assert code == 2
    assert "nothing" in capsys.readouterr().err
