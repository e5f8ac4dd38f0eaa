"""core.npz: an .npz is measured before it is read (a zip bomb is refused up front)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.errors import InputTooLargeError, RecordingError
from core.npz import check_npz_size
from core.recording import load_recording


def _bomb(path: Path, inflated: int) -> Path:
    # zeros compress ~1000:1: a small file whose directory says it inflates to `inflated`
    chunk = b"\0" * (1 << 20)
    with (zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z,
          z.open("header.npy", "w", force_zip64=True) as f):
        for _ in range(inflated >> 20):
            f.write(chunk)
    return path


def test_a_small_npz_is_measured(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.zeros(1000, np.float32))
    assert check_npz_size(tmp_path / "a.npz") >= 4000


def test_a_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.npz", 64 << 20)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(InputTooLargeError, match="inflates to 64 MiB"):
        check_npz_size(bomb, max_bytes=32 << 20)


def test_a_recording_reader_refuses_a_bomb_as_a_recording_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.npz

    bomb = _bomb(tmp_path / "bomb.npz", 8 << 20)
    monkeypatch.setattr(core.npz, "MAX_NPZ_BYTES", 4 << 20)
    monkeypatch.setattr(check_npz_size, "__kwdefaults__",
                        {"max_bytes": 4 << 20, "max_members": core.npz.MAX_NPZ_MEMBERS})
    with pytest.raises(RecordingError, match="inflates to 8 MiB"):
        load_recording(bomb)


def test_save_npz_whole_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    from core.npz import save_npz_whole

    path = tmp_path / "head.npz"
    save_npz_whole(path, W=np.zeros((2, 3)))
    save_npz_whole(path, W=np.ones((4, 3)), b=np.arange(3.0))
    with np.load(path) as z:
        assert sorted(z.files) == ["W", "b"] and z["W"].shape == (4, 3)
        assert z["b"].tolist() == [0.0, 1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["head.npz"]
