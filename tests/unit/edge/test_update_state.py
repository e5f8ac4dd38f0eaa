"""edge.update_state: what serves after model updates round-trips through one JSON file written
by rename; a damaged file is refused in one line."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from edge.update_check import UpdateError
from edge.update_state import STATE_SCHEMA, Served, UpdateState, read_state, write_state


def _state() -> UpdateState:
    return UpdateState(
        {
            "m": Served("applied/v1", "1", "abc", "applied/round-1", "round-1"),
            "hr": Served("", "0", "def"),
        },
        [
            {
                "model_id": "m",
                "update": "head",
                "version": "round-2",
                "path": "round-2",
                "digest": "d2",
            }
        ],
    )


def test_written_state_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "active.json"
    write_state(path, _state())
    back = read_state(path)
    assert back == _state()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it says which updates a home runs
    assert [p.name for p in tmp_path.iterdir()] == ["active.json"]  # no temporary left
    assert json.loads(path.read_text())["schema_version"] == STATE_SCHEMA


def test_a_rewrite_replaces_the_whole_state(tmp_path: Path) -> None:
    path = tmp_path / "active.json"
    write_state(path, _state())
    write_state(path, UpdateState({"m": Served("", "0", "abc")}))
    assert read_state(path) == UpdateState({"m": Served("", "0", "abc")})


def test_no_file_is_an_empty_state(tmp_path: Path) -> None:
    assert read_state(tmp_path / "active.json") == UpdateState()


def test_a_failed_write_leaves_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "active.json"
    write_state(path, _state())

    def boom(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("edge.atomic_json.os.fsync", boom)
    with pytest.raises(OSError, match="No space"):
        write_state(path, UpdateState())
    assert read_state(path) == _state()
    assert [p.name for p in tmp_path.iterdir()] == ["active.json"]


@pytest.mark.parametrize(
    "text",
    [
        '{"schema_version": 1, "models": {"m": {"bundle": "applied/v1"',  # cut short
        '{"schema_version": 99, "models": {}}',  # another schema
        '{"schema_version": 1, "models": {"m": {"colour": "red"}}}',  # another layout
        '{"schema_version": 1, "models": []}',
        "[1, 2, 3]",
        "\xff\xfe garbage",
    ],
)
def test_a_damaged_state_is_refused_in_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "active.json"
    path.write_text(text, encoding="latin-1")
    with pytest.raises(UpdateError) as e:
        read_state(path)
    assert e.value.reason == "malformed"
    assert str(e.value).startswith(f"{path}: the model update state is damaged")
    assert "\n" not in str(e.value)


def test_rolled_back_updates_are_known_by_their_files(tmp_path: Path) -> None:
    state = _state()
    assert state.was_rolled_back("m", "head", "d2")
    assert not state.was_rolled_back("m", "bundle", "d2")  # another kind
    assert not state.was_rolled_back("hr", "head", "d2")  # another model
    assert not state.was_rolled_back("m", "head", "d3")
    assert not state.was_rolled_back("m", "head", "")  # files that cannot be read
