"""What every atheris harness shares: the seed corpus, libFuzzer's arguments, a scratch dir.

A harness calls :func:`main` with its one-input function and a few valid inputs as seeds;
the valid inputs, the bundle checks and the reference frame decoder come from tests/fakes/,
the same ones the property tests use.
``python tests/fuzz/fuzz_x.py [libFuzzer flags]`` fuzzes with the corpus in
``runs/fuzz/x/corpus`` (created from the seeds on the first run, grown by every run);
``python tests/fuzz/fuzz_x.py crash-file ...`` replays saved inputs once, as libFuzzer does.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

import atheris

__all__ = ["REPO", "main", "scratch_dir"]

REPO: Final = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: the harnesses import the shared tests/fakes
    sys.path.insert(0, str(REPO))


def _work_dir(name: str) -> Path:
    return Path(os.environ.get("FUZZ_WORK_DIR", REPO / "runs" / "fuzz")) / name


def scratch_dir(name: str) -> Path:
    """An empty directory for the files a harness writes per input (reused, not leaked)."""
    path = _work_dir(name) / "scratch"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def main(name: str, test_one_input: Callable[[bytes], None], seeds: Iterable[bytes]) -> None:
    """Seed the corpus if it is empty, then hand over to libFuzzer (never returns)."""
    args = sys.argv[1:]
    if not any(not a.startswith("-") for a in args):  # no corpus or replay files given
        corpus = _work_dir(name) / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        if not any(corpus.iterdir()):
            for i, seed in enumerate(seeds):
                (corpus / f"seed-{i:03d}").write_bytes(seed)
        args.append(str(corpus))
    atheris.Setup([sys.argv[0], *args], test_one_input)
    atheris.Fuzz()
