"""edge-fleet's command line: refusals are one line and exit 2, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.fleet.cli import EXIT_INPUT, build_parser, main


def test_join_without_tls_or_insecure_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "join",
            "--superlink",
            "127.0.0.1:9092",
            "--data",
            str(tmp_path / "d.npz"),
            "--state-dir",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == EXIT_INPUT and err.count("\n") == 0 and "--root-certificates" in err


def test_join_with_a_missing_certificate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "join",
            "--superlink",
            "h:9092",
            "--data",
            "d.npz",
            "--state-dir",
            str(tmp_path),
            "--root-certificates",
            str(tmp_path / "ca.pem"),
        ]
    )
    assert code == EXIT_INPUT and "no such file" in capsys.readouterr().err


def test_simulate_refuses_a_bad_embeddings_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "e.npz").write_text("not an npz")
    code = main(
        [
            "simulate",
            "--embeddings",
            str(tmp_path / "e.npz"),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert code == EXIT_INPUT and "not a residents embeddings file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # a failed command leaves no folder


def test_help_names_every_command() -> None:
    text = build_parser().format_help()
    assert all(c in text for c in ("simulate", "join"))
