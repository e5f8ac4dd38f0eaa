"""``edge-daemon label`` and ``edge-daemon personalize``: good input is stored and said in
one line; bad input is one line on stderr and exit status 2, nothing stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.personal.store import PersonalStore
from edge.sinks.sqlite import open_database
from tests.fakes.bundles import write_fake_bundle
from tests.fakes.inputs import small_contract


@pytest.fixture
def hub(tmp_path: Path) -> tuple[Path, Path]:
    write_fake_bundle(tmp_path / "bundle", small_contract(), model_id="m")
    return tmp_path / "bundle", tmp_path / "edge.db"


def _label(hub: tuple[Path, Path], *args: str) -> int:
    return main(["label", "--bundle", str(hub[0]), "--db", str(hub[1]), *args])


def test_label_a_span(hub: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert _label(hub, "--wearer", "anna", "--from", "-2h", "--to", "-1h", "--state", "stress") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "anna was stress" in out[0] and "kept on this hub only" in out[0]
    with PersonalStore(hub[1]) as store:
        (lb,) = store.labels("anna")
    assert lb.state == "stress" and lb.source == "manual"
    assert lb.t_to - lb.t_from == pytest.approx(3600, abs=2)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--wearer", "anna", "--from", "-2h", "--state", "anxious"],
            "baseline, stress, amusement",
        ),
        (["--wearer", "anna", "--from", "yesterday", "--state", "stress"], "--from 'yesterday'"),
        (["--wearer", "anna", "--from", "-1h", "--to", "-2h", "--state", "stress"], "before --to"),
        (
            ["--wearer", "anna", "--from", "-1h", "--to", "2099-01-01T00:00", "--state", "stress"],
            "future",
        ),
        (["--from", "-1h", "--state", "stress"], "give --wearer"),
        (["--wearer", "anna", "--from", "-1h", "--state", "stress", "--yes"], "--alert ID"),
        (["--alert", "1"], "--yes"),
        (["--alert", "7", "--yes"], "no such alert"),
    ],
)
def test_bad_input_is_one_line_and_stores_nothing(
    hub: tuple[Path, Path], args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    open_database(hub[1]).close()
    assert _label(hub, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    with PersonalStore(hub[1]) as store:
        assert store.labels() == []


def test_answer_an_alert(hub: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    conn = open_database(hub[1])
    with conn:
        conn.execute(
            "INSERT INTO events (resident, device, t, kind, detail) VALUES (?,?,?,?,?)",
            (
                "anna",
                "d",
                5000.0,
                "alert",
                json.dumps({"rule": "sustained_stress", "minutes": 10.0}),
            ),
        )
    conn.close()
    assert _label(hub, "--alert", "1", "--no") == 0
    assert "anna was baseline" in capsys.readouterr().out
    with PersonalStore(hub[1]) as store:
        (lb,) = store.labels()
    assert (lb.t_from, lb.t_to, lb.source) == (4400.0, 5000.0, "alert:1:no")


def test_personalize_with_no_labels_says_so(
    hub: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "personalize",
            "--bundle",
            str(hub[0]),
            "--db",
            str(hub[1]),
            "--trusted-key",
            str(hub[0] / "none.pem"),
        ]
    )
    # the fake bundle is unsigned: the daemon's trust refuses it in one line
    assert code == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
