"""JSON lines: one object per decision or event, on stdout (``--json``) or appended to a file.

Each line is ``Decision.to_dict()`` / ``Event.to_dict()`` (``"type": "decision" | "event"``).
Lines are flushed as soon as they are written so a pipe reader (``jq``, a bridge to a care
system) sees each decision when it is made. A file is created owner-only (0600).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from edge.errors import SinkError
from edge.sinks.base import FaultCallback, Record, ThreadedSink

__all__ = ["JsonLinesSink"]


class JsonLinesSink(ThreadedSink):
    """Writes on its own thread, so a slow pipe reader never stalls the event loop."""

    name = "jsonl"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        stream: TextIO | None = None,
        buffer_max: int = 20000,
        retry_max_s: float = 30.0,
        on_fault: FaultCallback | None = None,
        spill_path: str | os.PathLike[str] | None = None,
    ) -> None:
        # interval 0: a line goes out as soon as it is made (a live consumer is waiting)
        super().__init__(
            buffer_max=buffer_max, batch_size=256, interval_s=0.0, retry_max_s=retry_max_s,
            on_fault=on_fault,
            spill_path=spill_path,
        )
        self.path = None if path is None else Path(path)
        self._stream = stream
        self._file: TextIO | None = None
        if self.path is not None:
            self.name = f"jsonl:{self.path.name}"

    @property
    def where(self) -> str:
        return "stdout" if self.path is None else str(self.path)

    def preflight(self) -> None:
        if self.path is None:
            return
        if self.path.is_dir():
            raise SinkError(f"the JSON lines file {self.path} is a folder; give a file path "
                            "(--jsonl)", sink=self.name, path=str(self.path))
        try:
            self._open()
        except OSError as e:
            raise SinkError(f"cannot write the JSON lines file {self.path}: "
                            f"{e.strerror or e} (--jsonl)", sink=self.name,
                            path=str(self.path)) from e
        finally:
            self._close_resources()

    def _open(self) -> None:
        if self.path is None:
            return
        if not self.path.parent.exists():
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def _out(self) -> TextIO:
        if self._file is not None:
            return self._file
        return self._stream if self._stream is not None else sys.stdout

    def _write_batch(self, batch: Sequence[Record]) -> None:
        out = self._out()
        out.write("".join(json.dumps(r.to_dict(), separators=(",", ":")) + "\n" for r in batch))
        out.flush()

    def _close_resources(self) -> None:
        if self._file is not None:
            f, self._file = self._file, None
            f.close()
