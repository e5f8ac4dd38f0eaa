"""``.npz`` files checked before they are read: a zip's directory says how large each array
inflates to, so a "zip bomb" (a few KB that inflate to gigabytes) is refused up front
instead of filling a Pi's memory. And written whole or not at all.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Final

import numpy as np

from core.errors import InputTooLargeError

__all__ = ["MAX_NPZ_BYTES", "MAX_NPZ_MEMBERS", "check_npz_size", "save_npz_whole"]

# a week of a wrist's signals in float32 is ~0.5 GB; past 2 GiB inflated it is not ours,
# or not something a hub (or a host's loader, which holds it whole) should try
MAX_NPZ_BYTES: Final = 2 * 1024**3
MAX_NPZ_MEMBERS: Final = 10_000  # our files hold tens of arrays


def check_npz_size(path: str | os.PathLike[str], *, max_bytes: int = MAX_NPZ_BYTES,
                   max_members: int = MAX_NPZ_MEMBERS) -> int:
    """The inflated size of the ``.npz`` at ``path``; InputTooLargeError when it is over
    ``max_bytes`` or holds more than ``max_members`` arrays. A file that is not a zip is
    left to the reader, which says so in its own words."""
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return 0
    if len(infos) > max_members:
        raise InputTooLargeError(f"holds {len(infos)} arrays (more than {max_members})",
                                 path=str(p))
    total = sum(i.file_size for i in infos)
    if total > max_bytes:
        raise InputTooLargeError(f"inflates to {total / 2**20:.0f} MiB, more than the "
                                 f"{max_bytes / 2**20:.0f} MiB this reader accepts", path=str(p))
    return total


def save_npz_whole(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """``arrays`` into the ``.npz`` at ``path``, written aside and renamed in: a reader sees
    the old file or the new one, never half of one."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(p)
