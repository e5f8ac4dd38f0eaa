"""The sink contract and the threaded, bounded, retrying writer the I/O sinks share."""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from edge.decisions import Decision, Event

__all__ = ["FaultCallback", "Record", "Sink", "SinkStats", "ThreadedSink"]

log = logging.getLogger(__name__)

Record = Decision | Event
# (sink name, error text or None when the sink recovered); called from the sink's thread
FaultCallback = Callable[[str, str | None], None]

RETRY_MIN_S: Final = 0.5  # first retry soon: most write failures are momentary (a busy lock)
PERIODIC_S: Final = 3600.0  # retention and housekeeping hourly: rows expire in days, not seconds


class SinkStats:
    """Thread-safe counters: written, dropped (buffer full), failures, retries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: Counter[str] = Counter()

    def inc(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counters[key] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)


class Sink(abc.ABC):
    """A destination for decisions and events."""

    name: str = "sink"

    def __init__(self) -> None:
        self.stats = SinkStats()

    def start(self) -> None:  # noqa: B027 - most sinks need no start; a default no-op is right
        """Begin accepting records (open files, start the writer thread)."""

    def preflight(self) -> None:  # noqa: B027 - sinks without a file have nothing to check
        """Before the run: raise :class:`~edge.errors.SinkError` (one line) when the sink
        cannot write at all (a read-only directory, a folder where a file should be), so
        start-up fails instead of every record being lost at the end. Blocking: call it
        before the event loop runs."""

    @property
    def where(self) -> str:
        """Where this sink's records go, in words (the summary says it)."""
        return self.name

    @abc.abstractmethod
    def submit(self, record: Record) -> None:
        """Accept one record without blocking the caller (the event loop)."""

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted is written or ``timeout`` passes; True if written."""
        return True

    def close(self, timeout: float) -> int:
        """Write what is pending (within ``timeout``), release resources; return records lost."""
        return 0

    def pending(self) -> int:
        return 0

    def health(self) -> dict[str, Any]:
        return {"pending": self.pending(), **self.stats.snapshot()}



class ThreadedSink(Sink):
    """A sink whose blocking writes run on one thread over a bounded buffer.

    Subclasses implement :meth:`_write_batch` (and optionally :meth:`_open` /
    :meth:`_close_resources`); an exception of a type in :attr:`transient_errors` is a
    *fault*: the batch stays buffered, the fault is logged once and reported through
    ``on_fault``, and the write is retried with exponential back-off up to ``retry_max_s``.
    """

    transient_errors: tuple[type[BaseException], ...] = (OSError,)

    def __init__(
        self,
        *,
        buffer_max: int,
        batch_size: int,
        interval_s: float,
        retry_max_s: float,
        on_fault: FaultCallback | None = None,
        spill_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.buffer_max = buffer_max
        # where records go, as JSON lines, when the buffer is full (the sink failing for long)
        # and at shutdown when the sink is still failing: kept, not lost; None = dropped
        self.spill_path = Path(spill_path) if spill_path is not None else None
        self._overflow: list[Record] = []  # evicted from the buffer, to spill on the writer
        self.batch_size = batch_size
        self.interval_s = interval_s  # how long records may wait to be batched (0 = at once)
        self.retry_max_s = retry_max_s
        self.on_fault = on_fault
        self._buf: deque[Record] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._opened = False
        self.fault: str | None = None  # the current fault's text, None when healthy
        self._in_flight = 0  # records (still buffered) the writer is writing now
        self._flush_requested = False  # write now, without waiting for a full batch
        self._spilled_said = False

    # -- subclass hooks -------------------------------------------------------------------
    def _open(self) -> None:
        """Open files/connections on the writer thread; may raise a transient error."""

    @abc.abstractmethod
    def _write_batch(self, batch: Sequence[Record]) -> None:
        """Write all of ``batch`` durably or raise; called on the writer thread."""

    def _close_resources(self) -> None:
        """Release files/connections on the writer thread (also after a fault, to reopen)."""

    def _periodic(self) -> None:
        """Called on the writer thread between batches (retention, checkpoints)."""

    def health(self) -> dict[str, Any]:
        h = super().health()
        if h.get("spilled"):
            h["spill_path"] = str(self.spill_path)
        return h

    # -- the loop-side API -----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)
        self._thread.start()

    def submit(self, record: Record) -> None:
        with self._cond:
            victim: Record | None = None
            if len(self._buf) < self.buffer_max:
                self._buf.append(record)
            elif self._in_flight < len(self._buf):
                # the oldest record the writer is not writing right now (evicting one in
                # flight would make the writer retire an unwritten record after its batch)
                victim = self._buf[self._in_flight]
                del self._buf[self._in_flight]
                self._buf.append(record)
            else:
                victim = record
            if victim is not None:
                if self.spill_path is not None:
                    self._overflow.append(victim)  # written by the writer thread, not here
                else:
                    self.stats.inc("dropped_buffer_full")
            self.stats.inc("submitted")
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._buf)  # records being written are still in the buffer

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._buf or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float) -> int:
        with self._cond:
            self._stopping = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
        with self._cond:
            left = list(self._buf) + self._overflow
            self._buf.clear()
            self._overflow = []
        lost = len(left) - self._spill(left)
        if lost:
            self.stats.inc("lost_at_close", lost)
            log.error("sink %s: %d records could not be written before shutdown", self.name, lost)
        return lost

    # -- the writer thread ---------------------------------------------------------------------
    def _wait_for_work(self) -> None:
        """Under the lock: block until a batch is due, a flush/close asks, or periodic work."""
        if self._stopping or len(self._buf) >= self.batch_size:
            return
        if not self._buf:
            self._cond.wait(1.0)  # woken by submit; the timeout runs the periodic hook
        if not self._buf or self.interval_s <= 0:
            return
        due = time.monotonic() + self.interval_s
        while not (self._stopping or self._flush_requested or len(self._buf) >= self.batch_size):
            left = due - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _run(self) -> None:
        backoff = RETRY_MIN_S
        last_periodic = time.monotonic()
        while True:
            self._drain_overflow()
            try:
                if not self._opened:  # first thing, so a bad path is reported at start
                    self._open()
                    self._opened = True
                with self._cond:
                    self._wait_for_work()
                    if self._stopping and (not self._buf or time.monotonic() >= self._deadline):
                        break
                    batch = [self._buf[i] for i in range(min(len(self._buf), self.batch_size))]
                    self._in_flight = len(batch)
                if batch:
                    self._write_batch(batch)
                if time.monotonic() - last_periodic > PERIODIC_S:
                    last_periodic = time.monotonic()
                    self._periodic()
            except self.transient_errors as e:
                self._fail(e)
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
                    if self._stopping and time.monotonic() >= self._deadline:
                        break
                    # wait out the back-off; close() wakes us to retry once more before exit
                    wait = backoff
                    if self._stopping:
                        wait = min(backoff, max(0.0, self._deadline - time.monotonic()))
                    self._cond.wait(wait)
                backoff = min(backoff * 2, self.retry_max_s)
                continue
            if self.fault is not None:
                log.warning("sink %s recovered; writing again", self.name)
                self.fault = None
                backoff = RETRY_MIN_S
                self._report(None)
            with self._cond:
                if batch:
                    self.stats.inc("written", len(batch))
                    self.stats.inc("batches")
                for _ in batch:
                    self._buf.popleft()
                self._in_flight = 0
                if not self._buf:
                    self._flush_requested = False
                self._cond.notify_all()
        try:
            self._close_resources()
        except self.transient_errors as e:
            log.warning("sink %s: closing failed: %s", self.name, e)

    def _drain_overflow(self) -> None:
        with self._cond:
            batch, self._overflow = self._overflow, []
        if batch:
            lost = len(batch) - self._spill(batch)
            if lost:
                self.stats.inc("dropped_buffer_full", lost)

    def _spill(self, records: Sequence[Record]) -> int:
        """Append ``records`` to the spill file; how many were kept (0 without one)."""
        if self.spill_path is None or not records:
            return 0
        try:
            self.spill_path.parent.mkdir(parents=True, exist_ok=True)
            with self.spill_path.open("a", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps({"sink": self.name, **r.to_dict()}, default=str) + "\n")
        except OSError as e:
            log.error("sink %s: could not spill %d records to %s: %s", self.name, len(records),
                      self.spill_path, e)
            return 0
        self.stats.inc("spilled", len(records))
        if not self._spilled_said:
            self._spilled_said = True
            log.warning("sink %s: its buffer is full; records go to %s until it writes again",
                        self.name, self.spill_path)
        return len(records)

    def _fail(self, e: BaseException) -> None:
        text = f"{type(e).__name__}: {e}"
        self.stats.inc("write_failures")
        first = self.fault is None
        self.fault = text
        if first:
            log.error("sink %s failed (%s); keeping records and retrying", self.name, text)
            self._report(text)
        else:
            log.debug("sink %s still failing: %s", self.name, text)
        # already failing; a fresh open is attempted on the next retry
        with contextlib.suppress(*self.transient_errors):
            self._close_resources()
        self._opened = False

    def _report(self, text: str | None) -> None:
        if self.on_fault is not None:
            try:
                self.on_fault(self.name, text)
            except RuntimeError as e:  # the loop may already be closed at shutdown
                log.debug("sink %s: fault callback failed: %s", self.name, e)
