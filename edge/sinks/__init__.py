"""Where derived states go: SQLite, JSON lines and the log. Never a raw sample.

Every sink takes :class:`~edge.decisions.Decision` and :class:`~edge.decisions.Event`
records through a non-blocking :meth:`Sink.submit` from the event loop. Sinks that do I/O
run it on their own thread over a bounded buffer: a sink that fails (disk full, read-only
file system, a closed pipe) keeps its undelivered records, reports the fault, retries with
back-off, and drops the oldest record (counted) only when the buffer is full.
"""

from edge.sinks.base import FaultCallback, Record, Sink, SinkStats, ThreadedSink
from edge.sinks.jsonl import JsonLinesSink
from edge.sinks.log import LogSink
from edge.sinks.sqlite import SCHEMA_VERSION, SqliteSink, open_database

__all__ = [
    "SCHEMA_VERSION",
    "FaultCallback",
    "JsonLinesSink",
    "LogSink",
    "Record",
    "Sink",
    "SinkStats",
    "SqliteSink",
    "ThreadedSink",
    "open_database",
]
