"""The log as a sink: state changes and events at INFO, every decision at DEBUG.

Synchronous (the logging module is already the process's shared channel); it writes
derived states only, like every sink.
"""

from __future__ import annotations

import logging

from edge.decisions import Decision, Event
from edge.sinks.base import Record, Sink
from edge.wording import event_line, who

__all__ = ["LogSink"]

log = logging.getLogger("edge.decisions")


class LogSink(Sink):
    name = "log"

    def __init__(self, *, decisions_at_info: bool = False) -> None:
        super().__init__()
        self.decisions_at_info = decisions_at_info

    @property
    def where(self) -> str:
        return "the log"

    def submit(self, record: Record) -> None:
        self.stats.inc("written")
        if isinstance(record, Event):
            level = logging.WARNING if record.kind in _WARN else logging.INFO
            log.log(level, "%s", event_line(record))
        elif isinstance(record, Decision):
            level = logging.INFO if self.decisions_at_info else logging.DEBUG
            if log.isEnabledFor(level):
                p = " ".join(f"{k}={v:.2f}" for k, v in record.probabilities.items())
                log.log(level, "%s window %d: %s (%s)", who(record.resident, record.device),
                        record.window_index, record.state, p)


_WARN = frozenset({"alert", "no_contact", "battery_low", "disconnected", "sink_fault",
                   "source_lost"})
