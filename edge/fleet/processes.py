"""Flower's commands as child processes of ours: started with a log file, stopped on our signals.

A SuperLink or SuperNode starts helpers of its own (``flower-superexec`` and the app
processes), which watch their parent and leave with it; so stopping the one child we
started, by its id, stops the whole tree.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Final

__all__ = ["Child", "on_stop_signals", "wait_listening"]

log = logging.getLogger(__name__)

STOP_GRACE_S: Final = 15.0  # a SuperLink stops its helpers before it exits


class Child:
    """One command, its output appended to ``log_path``."""

    def __init__(self, name: str, cmd: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = Path(log_path)
        self._log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            list(cmd), env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def stop(self, grace: float = STOP_GRACE_S) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s: killed", self.name, grace)
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)

    def tail(self, lines: int = 5) -> str:
        """The last lines of its log, for a one-line error."""
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(t.strip() for t in text[-lines:])


def wait_listening(
    host: str,
    port: int,
    child: Child,
    within_s: float,
    give_up: Callable[[], bool] = lambda: False,
) -> None:
    """Until ``host:port`` accepts a connection or ``give_up()``; RuntimeError when ``child``
    exits first or the time is up."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and not give_up():
        if child.poll() is not None:
            raise RuntimeError(f"{child.name} exited ({child.poll()}): {child.tail()}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
            return
        time.sleep(0.25)
    if give_up():
        return
    raise RuntimeError(f"{child.name} is not listening on {host}:{port} after {within_s:.0f} s")


@contextlib.contextmanager
def on_stop_signals(stop: Callable[[signal.Signals], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``stop`` (instead of ending this process at once) while inside."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop(signal.Signals(signum))

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
