"""Where derived states go: SQLite, JSON lines and the log. Never a raw sample.

Every sink takes :class:`~edge.decisions.Decision` and :class:`~edge.decisions.Event`
records through a non-blocking :meth:`Sink.submit` from the event loop. Sinks that do I/O
run it on their own thread over a bounded buffer: a sink that fails (disk full, read-only
file system, a closed pipe) keeps its undelivered records, reports the fault, retries with
back-off, and drops the oldest record (counted) only when the buffer is full.

Names are resolved on first use, so that the configuration can hold a sink's typed options
(``edge.sinks.mqtt.options``) without importing the sinks (and, through them, the decisions
module, which itself reads the configuration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from core.lazy import lazy_attributes

if TYPE_CHECKING:
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

# public name -> the module that defines it
_HOME: Final = {
    "FaultCallback": "base",
    "Record": "base",
    "Sink": "base",
    "SinkStats": "base",
    "ThreadedSink": "base",
    "JsonLinesSink": "jsonl",
    "LogSink": "log",
    "SCHEMA_VERSION": "sqlite",
    "SqliteSink": "sqlite",
    "open_database": "sqlite",
}


__getattr__ = lazy_attributes(__name__, _HOME, globals())
