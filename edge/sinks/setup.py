"""The sinks a daemon's configuration asks for, opened and checked before the run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

from edge.config import DaemonConfig
from edge.sinks.base import Sink
from edge.sinks.jsonl import JsonLinesSink
from edge.sinks.log import LogSink
from edge.sinks.sqlite import SqliteSink

__all__ = ["open_sinks"]


def open_sinks(cfg: DaemonConfig, *, stdout: TextIO, calibrate: bool,
                on_fault: Callable[[str, str | None], None],
                class_names: Sequence[str] = ()) -> list[Sink]:
    """The sinks ``cfg.sinks`` (and ``--json``, ``--mqtt``) ask for; a calibration run logs
    only. Raises ConfigError for a bad MQTT setting (URL, password source, TLS file)."""
    s = cfg.sinks
    if calibrate:
        return [LogSink()]
    sinks: list[Sink] = []
    # a sink failing for longer than its buffer lasts keeps the overflow here (JSON lines)
    spill = cfg.state_path / "spill"
    if s.sqlite:
        sinks.append(SqliteSink(cfg.db_path, retention_days=s.retention_days, max_mb=s.max_db_mb,
                                buffer_max=s.buffer_max, batch_size=s.batch_size,
                                commit_interval_s=s.commit_interval_s, retry_max_s=s.retry_max_s,
                                on_fault=on_fault, spill_path=spill / "sqlite.jsonl"))
    if cfg.json:
        sinks.append(JsonLinesSink(stream=stdout, buffer_max=s.buffer_max,
                                   retry_max_s=s.retry_max_s, on_fault=on_fault))
    if s.jsonl_path:
        sinks.append(JsonLinesSink(s.jsonl_path, buffer_max=s.buffer_max,
                                   retry_max_s=s.retry_max_s, on_fault=on_fault,
                                   spill_path=spill / "jsonl.jsonl"))
    if s.log_decisions:
        sinks.append(LogSink())
    if cfg.mqtt.enabled:
        from edge.sinks.mqtt import MqttSink

        # the outbox is a table of the hub's database, there even with --no-db: what waits
        # for the broker must survive a restart
        sinks.append(MqttSink(cfg.mqtt, db_path=cfg.db_path, class_names=class_names,
                              stress_class=cfg.decisions.stress_class, on_fault=on_fault,
                              buffer_max=s.buffer_max, retry_max_s=s.retry_max_s))
    for sink in sinks:
        sink.preflight()  # SinkError: a sink that cannot write at all stops the start here
    return sinks
