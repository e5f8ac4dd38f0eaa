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
    assert all(c in text for c in ("simulate", "serve", "join"))


DEMO_BUNDLE = Path(__file__).resolve().parents[4] / "edge" / "demo_bundle"


def serve(tmp_path: Path, *extra: str) -> list[str]:
    return ["serve", "--bundle", str(DEMO_BUNDLE), "--hubs", "2", "--out", str(tmp_path / "out"),
            *extra]  # fmt: skip


def refused(code: int, capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert code == EXIT_INPUT and err.count("\n") == 0, err
    return err


def test_serve_without_tls_or_insecure_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(main(serve(tmp_path)), capsys)
    assert "--ssl-ca-certfile, --ssl-certfile, --ssl-keyfile" in err and "--insecure" in err
    assert not (tmp_path / "out").exists()  # refused before the output folder is touched


def test_serve_with_a_missing_certificate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ca.pem").write_text("x")
    tls = ["--ssl-ca-certfile", str(tmp_path / "ca.pem"), "--ssl-certfile",
           str(tmp_path / "cert.pem"), "--ssl-keyfile", str(tmp_path / "ca.pem")]  # fmt: skip
    err = refused(main(serve(tmp_path, *tls)), capsys)
    assert f"--ssl-certfile {tmp_path / 'cert.pem'}: no such file" in err
    assert not (tmp_path / "out").exists()


def test_serve_refuses_no_hubs_and_a_bundle_without_a_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = serve(tmp_path, "--insecure")
    args[args.index("--hubs") + 1] = "0"
    assert "--hubs: at least 1" in refused(main(args), capsys)
    (tmp_path / "empty").mkdir()
    args = serve(tmp_path, "--insecure")
    args[args.index("--bundle") + 1] = str(tmp_path / "empty")
    assert str(tmp_path / "empty") in refused(main(args), capsys)
    assert not (tmp_path / "out").exists()  # a failed command leaves no folder


def test_serve_refuses_bad_federation_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(main(serve(tmp_path, "--insecure", "--rounds", "0")), capsys)
    assert "rounds" in err
    local = serve(tmp_path, "--insecure", "--dp-epsilon", "8", "--dp", "local")
    assert "--dp local is not available" in refused(main(local), capsys)
    assert not (tmp_path / "out").exists()


def test_join_with_bad_data_is_refused_before_flower_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d.npz").write_text("not an npz")
    code = main(["join", "--superlink", "h:9092", "--data", str(tmp_path / "d.npz"),
                 "--state-dir", str(tmp_path), "--insecure"])  # fmt: skip
    assert "not a readable .npz" in refused(code, capsys)
