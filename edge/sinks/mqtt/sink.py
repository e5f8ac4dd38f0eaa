"""The MQTT sink: decisions and events to an MQTT broker (and Home Assistant), store-and-forward.

:class:`MqttSink` implements :class:`~edge.sinks.base.Sink` with two parts:

- the **outbox writer** (a :class:`~edge.sinks.base.ThreadedSink` on its own thread): each
  record, turned into its messages on the event loop (:mod:`.messages`, the whitelist),
  is committed to the outbox table of the hub's database (:mod:`.outbox`);
- the **publisher** (an asyncio task, :mod:`.publisher`): sends the outbox to the broker
  with QoS 1 and deletes what the broker acknowledged.

So ``submit`` never blocks the loop, a record is durable before it is sent, and a broker
that is away (or refuses the password) only makes the outbox grow, up to its bound. A
failing outbox (disk full) is the sink fault ``mqtt-outbox``; an unreachable broker is the
sink fault ``mqtt``; both are reported once and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from core.errors import ConfigError
from edge.decisions import Decision, Event
from edge.sinks.base import FaultCallback, Record, Sink, ThreadedSink
from edge.sinks.mqtt.discovery import Discovery
from edge.sinks.mqtt.messages import DeviceStatus, MessageBuilder, OutMessage, Priority
from edge.sinks.mqtt.options import MqttOptions, read_password, tls_context
from edge.sinks.mqtt.outbox import Outbox
from edge.sinks.mqtt.publisher import Publisher
from edge.sinks.mqtt.topics import HUB, Topics

__all__ = ["MqttSink"]

log = logging.getLogger("edge.sinks.mqtt")

# records wait this long to share a commit: a decision still reaches the broker well within
# a second, and a burst (a backlog of windows after a reconnect) becomes one transaction
WRITE_INTERVAL_S: Final = 0.2
OVERFLOW_LOG_S: Final = 60.0  # a full backlog is logged at most this often (with the count)


@dataclass(frozen=True, slots=True)
class _Pending:
    """One record's messages, as they wait in the writer's buffer."""

    messages: tuple[OutMessage, ...]


@dataclass(frozen=True, slots=True)
class _Retire:
    resident: str
    messages: tuple[OutMessage, ...]  # empty retained payloads for its configs and states


class _OutboxWriter(ThreadedSink):
    """Commits messages to the outbox on the writer thread; wakes the publisher."""

    name = "mqtt-outbox"
    transient_errors = (OSError, sqlite3.Error)

    def __init__(self, outbox: Outbox, *, on_written: Callable[[], None], buffer_max: int,
                 retry_max_s: float, on_fault: FaultCallback | None) -> None:
        super().__init__(buffer_max=buffer_max, batch_size=256, interval_s=WRITE_INTERVAL_S,
                         retry_max_s=retry_max_s, on_fault=on_fault)
        self.outbox = outbox
        self.on_written = on_written
        self._overflow_logged = -float("inf")

    def _open(self) -> None:
        self.outbox.open()

    def _write_batch(self, batch: Sequence[Record]) -> None:
        messages: list[OutMessage] = []
        retire: list[str] = []
        for item in cast(Sequence[_Pending | _Retire], batch):
            messages.extend(item.messages)
            if isinstance(item, _Retire):
                retire.append(item.resident)
        dropped = self.outbox.put(messages, retire=retire)
        self.stats.inc("outbox_written", len(messages))
        if dropped:
            self.stats.inc("backlog_dropped", dropped)
            now = time.monotonic()
            if now - self._overflow_logged >= OVERFLOW_LOG_S:
                self._overflow_logged = now
                log.warning("mqtt: the outbox holds %d messages (mqtt.backlog_max); dropping the "
                            "oldest derived states (%d so far, alerts are kept)",
                            self.outbox.backlog_max, self.stats.snapshot()["backlog_dropped"])
        self.on_written()

    def _close_resources(self) -> None:
        self.outbox.close()


class MqttSink(Sink):
    """Derived states to an MQTT broker through an outbox; see the module docstring.

    ``db_path``: the hub's database (the outbox is a table in it). ``class_names``: the
    model's classes (the affective-state entity's options). Raises
    :class:`~core.errors.ConfigError` for a bad URL, password source or TLS file.
    """

    name = "mqtt"

    def __init__(
        self,
        opts: MqttOptions,
        *,
        db_path: str | os.PathLike[str],
        class_names: Sequence[str],
        stress_class: str = "stress",
        on_fault: FaultCallback | None = None,
        buffer_max: int = 20000,
        retry_max_s: float = 30.0,
        key: str = "mqtt",
    ) -> None:
        super().__init__()
        opts.validate(key)
        if not opts.enabled:
            raise ConfigError("needs a broker URL (mqtt://host or mqtts://host)", key=f"{key}.url")
        self.opts = opts
        self.broker = opts.broker()
        password = read_password(opts, key=key)
        password_from = (f"the file {opts.password_file}" if opts.password_file else
                         f"${opts.password_env}" if opts.password_env else "")
        tls = tls_context(opts, key=key) if self.broker.tls else None
        self.topics = Topics(opts.topic_prefix, opts.resolved_hub_id(), opts.discovery_prefix)
        self.builder = MessageBuilder(self.topics, stress_class=stress_class,
                                      status_interval_s=opts.status_interval_s,
                                      heart_rate=opts.heart_rate)
        self.discovery = (Discovery(self.topics, class_names, stress_class=stress_class)
                          if opts.discovery else None)
        self.db_path = Path(db_path)
        self._writer = _OutboxWriter(Outbox(self.db_path, backlog_max=opts.backlog_max),
                                     on_written=self._written, buffer_max=buffer_max,
                                     retry_max_s=retry_max_s, on_fault=on_fault)
        self.stats = self._writer.stats  # one set of counters: the daemon reads sink.stats
        self.publisher = Publisher(
            opts=opts, broker=self.broker, password=password, tls=tls,
            outbox=Outbox(self.db_path, backlog_max=opts.backlog_max), topics=self.topics,
            discovery=self.discovery, stats=self.stats, on_fault=on_fault, name=self.name,
            password_from=password_from,
        )
        self._loop_thread: int | None = None
        self._retired = frozenset(opts.retired)

    # -- the Sink contract (event-loop side) ------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread and the publisher task (on the running event loop); the
        ``retired`` wearers' entities are removed first."""
        self._loop_thread = threading.get_ident()
        self._writer.start()
        self.publisher.start()
        for resident in self.opts.retired:
            self.retire_wearer(resident)

    def submit(self, record: Record) -> None:
        if not isinstance(record, Decision | Event):
            self.stats.inc("unknown_records")
            return
        if record.resident in self._retired:
            self.stats.inc("retired_wearer_records")
            return
        self._queue(self.builder.build(record))

    def device_status(self, status: DeviceStatus) -> None:
        """A wearable's battery or heart rate (not a stored record): feeds those entities."""
        if status.resident in self._retired:
            return
        self._queue(self.builder.build(status))

    def retire_wearer(self, resident: str) -> None:
        """Remove a wearer's entities from Home Assistant and forget it (an empty retained
        payload on each of its config and state topics, sent through the outbox)."""
        topics = [] if self.discovery is None else self.discovery.removal(resident)
        t = self.topics
        topics += [t.state(resident), t.sustained_stress(resident), t.connected(resident),
                   t.battery(resident), t.heart_rate(resident)]
        msgs = tuple(OutMessage(HUB, HUB, topic, None, retain=True, priority=Priority.EVENT)
                     for topic in topics)
        self._writer.submit(cast(Record, _Retire(resident, msgs)))
        self.publisher.forget(resident)

    def _queue(self, messages: list[OutMessage]) -> None:
        if messages:
            self._writer.submit(cast(Record, _Pending(tuple(messages))))

    def _written(self) -> None:  # the writer thread, after a commit
        self.publisher.outbox_rows = self._writer.outbox.rows  # for health while offline
        self.publisher.wake_threadsafe()

    def pending(self) -> int:
        return self._writer.pending() + self.publisher.outbox_rows

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted is in the outbox (durable), not yet published."""
        return self._writer.flush(timeout)

    def health(self) -> dict[str, Any]:
        counters = {**self.stats.snapshot(), **self.builder.counters}
        return {"pending": self.pending(), **counters, **self.publisher.health()}

    def close(self, timeout: float) -> int:
        """From a thread other than the loop's (the daemon runs it in ``asyncio.to_thread``):
        commit what is buffered, publish what the outbox holds within ``timeout``, say
        ``offline`` and disconnect. Returns records lost (not even stored in the outbox)."""
        t0 = time.monotonic()
        lost = self._writer.close(timeout / 2)
        left = max(0.5, timeout - (time.monotonic() - t0))
        loop = self.publisher.loop
        if loop is None:
            self.publisher.close_unstarted()
            return lost
        if loop.is_closed() or not loop.is_running():
            log.warning("mqtt: the event loop ended before the sink was closed; what was not "
                        "sent stays in the outbox")
            return lost
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("MqttSink.close() blocks: on the event loop, await aclose()")
        fut = asyncio.run_coroutine_threadsafe(self.publisher.stop(left), loop)
        with contextlib.suppress(TimeoutError):
            fut.result(left + 2.0)
        return lost

    async def aclose(self, within_s: float) -> int:
        """:meth:`close` for a caller on the event loop."""
        t0 = time.monotonic()
        lost = await asyncio.to_thread(self._writer.close, within_s / 2)
        await self.publisher.stop(max(0.5, within_s - (time.monotonic() - t0)))
        return lost

    async def wait_published(self, within_s: float) -> bool:
        """Wait until everything submitted has been stored and acknowledged by the broker."""
        t0 = time.monotonic()
        if not await asyncio.to_thread(self._writer.flush, within_s):
            return False
        return await self.publisher.wait_idle(max(0.0, within_s - (time.monotonic() - t0)))
