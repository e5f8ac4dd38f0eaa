"""A daemon subprocess's stderr read on a thread (so the pipe never fills), polling it, and
stopping the daemon without racing that thread for the last lines."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import IO

__all__ = ["Lines", "stop_keeping_stderr", "wait_until"]


class Lines:
    """A subprocess's stderr, collected on a thread so the pipe never fills."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._t.start()

    def _read(self, stream: IO[str] | None) -> None:
        if stream is None:
            return
        # kill() closes the pipe when a test ends early; the reader just stops there
        with contextlib.suppress(ValueError, OSError):
            for line in stream:
                self.lines.append(line)
        with contextlib.suppress(ValueError, OSError):
            stream.close()  # at EOF: the pipe is ours to close

    def seen(self, *needles: str) -> bool:
        return any(all(n in line for n in needles) for line in list(self.lines))

    def count(self, needle: str) -> int:
        return sum(needle in line for line in list(self.lines))

    def text(self) -> str:
        """Everything, once the stream has ended (or after 30 s: a loaded machine may take
        seconds to hand over the last lines of a process that has exited)."""
        self._t.join(30)
        return "".join(self.lines)


async def wait_until(pred: Callable[[], bool], limit_s: float, what: str) -> None:
    """Poll ``pred`` (a subprocess's log or files: nothing to await on) up to ``limit_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def stop_keeping_stderr(proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """SIGTERM, then wait for the exit reading only stdout (stderr is the Lines thread's);
    killed after ``timeout``."""
    proc.send_signal(signal.SIGTERM)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        if proc.stdout is not None:
            proc.stdout.read()  # until the process closes it: the pipe never fills
            proc.stdout.close()
        proc.wait()
    finally:
        watchdog.cancel()
    assert proc.returncode != -signal.SIGKILL, f"daemon did not stop within {timeout} s"
