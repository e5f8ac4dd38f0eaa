"""atheris harness: bundle archives (``load_bundle`` on a ``.tar``, edge.bundle).

Input byte 0: even -> the rest is the archive file as is (plain tar, or gzip/bz2/xz if the
bytes say so); odd -> the rest is gzip-compressed first, so tar-level mutations also reach
the compressed path. Extraction goes to a private ``tempfile`` directory that must be empty
again after every input: nothing may escape it (path traversal, links) or be left behind.
Allowed outcomes: a loaded bundle or ``EdgeError``.
"""

from __future__ import annotations

import gzip
import sys
import tarfile
import tempfile

import atheris
from _common import main, scratch_dir

with atheris.instrument_imports(include=["edge", "tarfile"]):
    from tests.fakes.bundles import bundle_archive, exercise_bundle, write_small_bundle

SCRATCH = scratch_dir("archive")
TMP = SCRATCH / "tmp"
TMP.mkdir()
tempfile.tempdir = str(TMP)  # where load_bundle extracts
ARCHIVE = SCRATCH / "bundle.tar"
ROOT = SCRATCH / "src" / "bundle"
write_small_bundle(ROOT)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    rest = data[1:]
    ARCHIVE.write_bytes(rest if data[0] % 2 == 0 else gzip.compress(rest, mtime=0))
    exercise_bundle(ARCHIVE)
    left = list(TMP.iterdir())
    assert not left, f"left behind or escaped: {left}"


def _seeds() -> list[bytes]:
    link = tarfile.TarInfo("bundle/evil")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    up = tarfile.TarInfo("../evil")
    return [b"\x00" + bundle_archive(ROOT), b"\x01" + bundle_archive(ROOT),
            b"\x00" + bundle_archive(ROOT, "w:gz"), b"\x00" + bundle_archive(ROOT, extra=link),
            b"\x00" + bundle_archive(ROOT, extra=up)]


if __name__ == "__main__":
    main("archive", test_one_input, _seeds())
    sys.exit(0)
