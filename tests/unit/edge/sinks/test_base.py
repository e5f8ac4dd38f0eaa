"""edge.sinks.base: the threaded writer keeps a bounded buffer, drops the oldest counted, and
says at close what it could not write."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from edge.sinks import ThreadedSink
from edge.sinks.base import Record
from tests.fakes.records import decision


class _Flaky(ThreadedSink):
    """Fails its first ``n`` writes with an OSError (what a pulled USB stick looks like)."""

    name = "flaky"

    def __init__(self, n: int, **kw: float | int) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.failures_left = n
        self.written: list[Record] = []
        self.lock = threading.Lock()

    def _write_batch(self, batch: Sequence[Record]) -> None:
        with self.lock:
            if self.failures_left:
                self.failures_left -= 1
                raise OSError(5, "Input/output error")
            self.written.extend(batch)


def test_failing_sink_buffer_is_bounded_and_drops_oldest_counted() -> None:
    sink = _Flaky(10**9, buffer_max=50, batch_size=10, interval_s=0.0, retry_max_s=0.05)
    sink.start()
    for i in range(80):
        sink.submit(decision(i))
    assert sink.stats.snapshot()["dropped_buffer_full"] == 30
    assert sink.pending() <= 50
    with sink.lock:
        sink.failures_left = 0
    assert sink.flush(10.0)
    sink.close(5.0)
    # the 30 oldest were dropped (counted); the newest 50 arrived, in order
    assert [d.window_index for d in sink.written] == list(range(30, 80))  # type: ignore[union-attr]


def test_close_reports_what_could_not_be_written() -> None:
    sink = _Flaky(10**9, buffer_max=100, batch_size=10, interval_s=0.0, retry_max_s=0.05)
    sink.start()
    for i in range(7):
        sink.submit(decision(i))
    assert sink.close(0.3) == 7
    assert sink.stats.snapshot()["lost_at_close"] == 7
