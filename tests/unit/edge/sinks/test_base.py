"""edge.sinks.base: the threaded writer keeps a bounded buffer, drops the oldest counted, and
says at close what it could not write."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

from edge.sinks import ThreadedSink
from edge.sinks.base import Record
from tests.fakes.records import decision


class _Flaky(ThreadedSink):
    """Fails its first ``n`` writes with an OSError (what a pulled USB stick looks like)."""

    name = "flaky"

    def __init__(self, n: int, **kw: float | int | Path) -> None:
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


def test_with_a_spill_file_nothing_is_lost_while_the_sink_fails(tmp_path: Path) -> None:
    spill = tmp_path / "spill" / "flaky.jsonl"
    sink = _Flaky(10**9, buffer_max=50, batch_size=10, interval_s=0.0, retry_max_s=0.05,
                  spill_path=spill)
    sink.start()
    for i in range(80):
        sink.submit(decision(i))
    assert sink.pending() <= 50
    assert sink.close(0.3) == 0  # still failing at shutdown: everything goes to the file
    stats = sink.stats.snapshot()
    assert stats.get("dropped_buffer_full", 0) == 0 and stats.get("lost_at_close", 0) == 0
    kept = [json.loads(line) for line in spill.read_text().splitlines()]
    assert sorted(r["window_index"] for r in kept) == list(range(80))
    assert {r["sink"] for r in kept} == {"flaky"} and stats["spilled"] == 80
    assert sink.health()["spill_path"] == str(spill)


def test_eviction_never_takes_a_record_the_writer_is_writing() -> None:
    class _Slow(_Flaky):
        def _write_batch(self, batch: Sequence[Record]) -> None:
            started.set()
            release.wait(5.0)
            super()._write_batch(batch)

    started, release = threading.Event(), threading.Event()
    sink = _Slow(0, buffer_max=10, batch_size=10, interval_s=0.0, retry_max_s=0.05)
    for i in range(10):
        sink.submit(decision(i))
    sink.start()
    assert started.wait(5.0)  # the whole buffer is in flight now
    for i in range(10, 13):  # nothing may be evicted from the batch being written
        sink.submit(decision(i))
    release.set()
    assert sink.flush(5.0)
    sink.close(1.0)
    written = [d.window_index for d in sink.written]  # type: ignore[union-attr]
    assert written == list(range(10)) and sink.stats.snapshot()["dropped_buffer_full"] == 3
