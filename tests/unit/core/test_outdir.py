"""core.outdir: an output folder is never overwritten by accident nor left half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import OutputDirError
from core.outdir import fresh_output_dir


def test_a_non_empty_folder_is_refused_without_force(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("{}")
    with (pytest.raises(OutputDirError, match="not empty: choose another --out, or add --force"),
          fresh_output_dir(tmp_path / "run")):
        pass
    assert (tmp_path / "run" / "metrics.json").read_text() == "{}"


def test_a_failed_command_leaves_no_folder_behind(tmp_path: Path) -> None:
    out = tmp_path / "new"
    with pytest.raises(RuntimeError), fresh_output_dir(out) as o:
        o.mkdir()
        (o / "half.onnx").write_bytes(b"x")
        raise RuntimeError("export failed")
    assert not out.exists()
    empty = tmp_path / "empty"  # a folder the user made stays, empty
    empty.mkdir()
    with pytest.raises(RuntimeError), fresh_output_dir(empty) as o:
        (o / "half").write_text("x")
        raise RuntimeError("export failed")
    assert empty.is_dir() and not any(empty.iterdir())


def test_force_replaces_and_puts_the_old_folder_back_when_the_command_fails(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "old").write_text("old run")
    with pytest.raises(RuntimeError), fresh_output_dir(out, force=True) as o:
        o.mkdir()
        (o / "new").write_text("half")
        raise RuntimeError("fit failed")
    assert [p.name for p in out.iterdir()] == ["old"]
    with fresh_output_dir(out, force=True) as o:
        o.mkdir()
        (o / "new").write_text("complete")
    assert [p.name for p in out.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing set aside is left


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputDirError, match="is a file"), fresh_output_dir(tmp_path / "f"):
        pass
