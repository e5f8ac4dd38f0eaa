"""An output folder a command may write into: refused when it holds something (unless
``force``), and left as it was found when the command fails.

``edge-train fit --out`` and ``edge-export --out`` use it: an existing run or bundle is never
overwritten by accident, and a failed command leaves no half-written folder behind. With
``force`` the old folder is moved aside first and put back if the command fails, so a failed
replacement loses nothing; it is deleted only once the new one is complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import OutputDirError

__all__ = ["fresh_output_dir"]


@contextmanager
def fresh_output_dir(path: str | os.PathLike[str], *, force: bool = False,
                     flag: str = "--out") -> Iterator[Path]:
    """Yield ``path`` ready to be written; see the module docstring. Raises OutputDirError."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{out} is a file, not a folder: choose another {flag}", path=str(out))
    holds = out.is_dir() and any(out.iterdir())
    if holds and not force:
        raise OutputDirError(f"{out} is not empty: choose another {flag}, or add --force to "
                             "replace it", path=str(out))
    aside = out.with_name(f".{out.name}.replaced-{os.getpid()}") if holds else None
    if aside is not None:
        out.rename(aside)  # same folder: a rename, nothing copied
    existed = out.is_dir()  # an empty folder the user made stays
    try:
        yield out
    except BaseException:
        if out.exists():
            shutil.rmtree(out)
        if existed:
            out.mkdir()
        if aside is not None:
            aside.rename(out)
        raise
    if aside is not None:
        shutil.rmtree(aside)
