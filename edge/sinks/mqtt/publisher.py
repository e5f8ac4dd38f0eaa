"""The broker connection: connect, announce, drain the outbox with QoS 1, reconnect with back-off.

One asyncio task owns the connection (aiomqtt, imported only here, when MQTT is configured).
Per connection:

1. connect with the last will ``offline`` (retained) on the hub's status topic, then publish
   ``online`` (retained) there;
2. subscribe to ``homeassistant/status`` and send the discovery configs of the hub and of
   every known wearer (again whenever Home Assistant announces ``online``);
3. publish the outbox's rows in order, a batch at a time, and delete each batch once every
   message of it has been acknowledged (PUBACK). A connection lost mid-batch leaves the batch
   in the outbox: it is sent again after reconnecting, with the same message ids.

A refused or lost connection is reported in one line (what failed, what to check), reported
once to the daemon as a sink fault, and retried with exponential back-off from
``retry_min_s`` to ``retry_max_s``. Local storage is not affected: the outbox keeps filling.
The outbox's SQLite work runs on one executor thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import random
import sqlite3
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from edge.sinks.base import FaultCallback, SinkStats
from edge.sinks.mqtt.discovery import OFFLINE, ONLINE, Discovery
from edge.sinks.mqtt.options import MqttOptions
from edge.sinks.mqtt.outbox import Outbox, OutboxRow, Wearer
from edge.sinks.mqtt.topics import HUB, Topics
from edge.sinks.mqtt.url import MqttUrl

if TYPE_CHECKING:
    import aiomqtt

__all__ = ["BATCH", "Publisher", "describe_failure"]

log = logging.getLogger("edge.sinks.mqtt")

# rows per batch: paho keeps at most 20 QoS>0 messages in flight by default, so a batch of
# 20 fills the window without queueing inside paho, and a lost connection re-sends at most 20
BATCH: Final = 20
T = TypeVar("T")


def describe_failure(e: BaseException, broker: MqttUrl, *, timeout_s: float,
                     password_from: str = "") -> str:
    """A connection failure in one line: what happened and what to check."""
    import aiomqtt
    from aiomqtt.exceptions import MqttConnectError  # not re-exported by the package

    where = f"the broker at {broker.address}"
    if isinstance(e, MqttConnectError):
        rc = getattr(e.rc, "value", e.rc)
        check = f"check {password_from}" if password_from else "set mqtt.password_file"
        user = f"user {broker.username!r}" if broker.username else "no user name"
        if rc in (4, 134):  # MQTT 3.1.1 CONNACK code, and its MQTT 5 reason code
            return f"{where} refused the user name or password ({user}); {check}"
        if rc in (5, 135):  # Mosquitto answers a wrong password with this one too
            return (f"{where} refused the login ({user}: not authorised, a wrong password or "
                    f"no access); {check}")
        return f"{where} refused the connection ({e})"
    if isinstance(e, aiomqtt.MqttCodeError):
        return f"the connection to {where.removeprefix('the ')} was lost ({e})"
    text = str(e)
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(e, ssl.SSLCertVerificationError):
        reason = text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip()
        return (f"TLS: {where} presented a certificate this hub does not trust ({reason}); "
                f"set mqtt.ca_file to the CA that signed it")
    if "SSL" in text or isinstance(e, ssl.SSLError):
        return f"TLS with {where} failed ({text}); is it a TLS port? (mqtts:// needs one)"
    if "Connection refused" in text:
        return f"nothing accepts connections at {broker.address} (is the broker running?)"
    if "timed out" in text.lower():
        return f"{where} did not answer within {timeout_s:g} s"
    if "Disconnected during message iteration" in text or "Unexpected disconnection" in text:
        return f"the connection to {where.removeprefix('the ')} was lost"
    return f"cannot reach {where}: {text or type(e).__name__}"


class Publisher:
    """Owns the broker connection; see the module docstring. Loop-thread API, except
    :meth:`wake_threadsafe` (the outbox writer's thread)."""

    def __init__(
        self,
        *,
        opts: MqttOptions,
        broker: MqttUrl,
        password: str | None,
        tls: ssl.SSLContext | None,
        outbox: Outbox,
        topics: Topics,
        discovery: Discovery | None,
        stats: SinkStats,
        on_fault: FaultCallback | None = None,
        name: str = "mqtt",
        password_from: str = "",
    ) -> None:
        import aiomqtt  # here, not at module level: a hub without MQTT never pays for it

        self._aiomqtt = aiomqtt
        self.opts = opts
        self.broker = broker
        self._password = password
        self._tls = tls
        self._outbox = outbox
        self.topics = topics
        self.discovery = discovery
        self.stats = stats
        self.on_fault = on_fault
        self.name = name
        self._password_from = password_from
        # one thread: the outbox's connection is used by one thread at a time, in order
        self._db_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mqtt-db")
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new = asyncio.Event()  # rows were committed to the outbox
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()  # the outbox was found empty while connected
        self._announced: dict[str, bool] = {}  # resident -> heart rate announced (this session)
        self._announce_lock = asyncio.Lock()
        self.connected = False
        self.fault: str | None = None
        self.outbox_rows = 0  # last count seen (health)
        self._last_failure = ""
        self._stopped = False
        self._session_ok = False  # the current attempt connected (resets the back-off)

    # -- lifetime ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run(), name=f"sink-{self.name}")

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the publisher runs on (None before :meth:`start`)."""
        return self._loop

    def wake(self) -> None:
        self._new.set()

    def wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self._new.set)

    def forget(self, resident: str) -> None:
        """A retired wearer: announce it afresh if it ever comes back."""
        self._announced.pop(resident, None)

    async def wait_idle(self, within_s: float) -> bool:
        """Wait until the outbox is empty and everything in it acknowledged (tests, flush)."""
        self._idle.clear()
        self._new.set()
        try:
            async with asyncio.timeout(within_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self, within_s: float) -> int:
        """Send what the outbox holds (within ``within_s``, if connected), say ``offline``,
        disconnect; the rows left in the outbox for the next start."""
        if self._stopped:
            return 0
        self._stopped = True
        self._stop.set()
        self._new.set()
        task = self._task
        if task is not None:
            try:
                async with asyncio.timeout(within_s):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        left = -1
        with contextlib.suppress(sqlite3.Error, OSError):
            left = await self._db(self._outbox.count)
        await self._db(self._outbox.close)
        self._db_pool.shutdown(wait=True)
        if left > 0:
            log.info("mqtt: %d messages wait in the outbox for the broker (sent at next start)",
                     left)
        return max(left, 0)

    def close_unstarted(self) -> None:
        """Release the outbox connection of a publisher that never ran (no loop needed)."""
        if self._task is None and not self._stopped:
            self._stopped = True
            self._db_pool.submit(self._outbox.close).result()
            self._db_pool.shutdown(wait=True)

    def health(self) -> dict[str, Any]:
        return {"connected": self.connected, "outbox": self.outbox_rows, "fault": self.fault}

    # -- the connection loop -----------------------------------------------------------------
    async def _run(self) -> None:
        backoff = self.opts.retry_min_s
        while not self._stop.is_set():
            self._session_ok = False
            try:
                await self._serve()
                return  # asked to stop, outbox drained
            except (self._aiomqtt.MqttError, OSError) as e:
                self._failed(e, backoff)
            except sqlite3.Error as e:  # the outbox could not be read; the writer reports why
                self._failed_text(f"cannot read the outbox ({e})", backoff)
            finally:
                self.connected = False
            if self._stop.is_set():
                return
            # after a connection that worked, the back-off starts again from the minimum
            delay = self.opts.retry_min_s if self._session_ok else backoff
            with contextlib.suppress(TimeoutError):
                # a little jitter: hubs sharing a restarted broker do not return in lockstep
                async with asyncio.timeout(delay * random.uniform(0.8, 1.0)):
                    await self._stop.wait()
            backoff = min(delay * 2, self.opts.retry_max_s)

    def _client(self) -> aiomqtt.Client:
        m = self._aiomqtt
        client = m.Client(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self._password,
            identifier=self.opts.resolved_client_id(),
            keepalive=self.opts.keepalive_s,
            will=m.Will(self.topics.status, OFFLINE, qos=1, retain=True),
            tls_context=self._tls,
            timeout=self.opts.timeout_s,
            clean_session=True,  # the outbox, not the broker, holds what is unsent
            logger=logging.getLogger("edge.sinks.mqtt.paho"),
        )
        client.pending_calls_threshold = 4 * BATCH  # our own batches are not a warning
        return client

    async def _serve(self) -> None:
        client = self._client()
        async with client:
            self.connected = True
            self._session_ok = True
            self._announced.clear()
            try:
                await self._session(client)
            except asyncio.CancelledError:
                # stopped before the outbox was drained: a graceful DISCONNECT follows, which
                # suppresses the will, so say `offline` now if the link still carries it
                with contextlib.suppress(self._aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
                raise

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.publish(self.topics.status, ONLINE, qos=1, retain=True)
        if self.discovery is not None:
            await client.subscribe(self.topics.ha_status, qos=1)
        self._recovered()
        listen = asyncio.create_task(self._listen(client), name=f"{self.name}-listen")
        drain = asyncio.create_task(self._drain(client), name=f"{self.name}-drain")
        try:
            await asyncio.wait({listen, drain}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            listen.cancel()
            drain.cancel()
            await asyncio.gather(listen, drain, return_exceptions=True)
        for t in (listen, drain):
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]  # a lost connection
        if drain.cancelled():  # the message stream ended without an error: a lost link
            raise self._aiomqtt.MqttError("Disconnected during message iteration")
        # stopping with the outbox drained: a graceful DISCONNECT sends no will, so say it
        await client.publish(self.topics.status, OFFLINE, qos=1, retain=True)

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:  # ends with MqttError when the link is lost
            p = message.payload
            text = p.decode("utf-8", "replace") if isinstance(p, bytes | bytearray) else str(p)
            if (self.discovery is not None and message.topic.matches(self.topics.ha_status)
                    and text == ONLINE):
                log.info("mqtt: Home Assistant started; sending the discovery configs again")
                self._announced.clear()
                await self._announce_all(client)

    async def _drain(self, client: aiomqtt.Client) -> None:
        await self._announce_all(client)
        while True:
            self._new.clear()  # before reading, so a commit after the read wakes us
            rows = await self._db(self._outbox.peek, BATCH)
            if not rows:
                self.outbox_rows = 0
                await self._report_overflow(client)
                self._idle.set()
                if self._stop.is_set():
                    return
                stop = asyncio.create_task(self._stop.wait())
                new = asyncio.create_task(self._new.wait())
                try:
                    await asyncio.wait({stop, new}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stop.cancel()
                    new.cancel()
                continue
            await self._publish_rows(client, rows)

    async def _publish_rows(self, client: aiomqtt.Client, rows: list[OutboxRow]) -> None:
        for r in rows:
            if r.resident == HUB:
                continue
            hr = r.topic == self.topics.heart_rate(r.resident)
            if self._announced.get(r.resident) is None or (hr and not self._announced[r.resident]):
                await self._announce(client, r.resident, heart_rate=hr)
        qos = self.opts.qos
        await asyncio.gather(*(client.publish(r.topic, r.payload, qos=qos, retain=r.retain)
                               for r in rows))
        await self._db(self._outbox.ack, [r.seq for r in rows])
        self.stats.inc("published", len(rows))
        self.outbox_rows = await self._db(self._outbox.count)

    async def _announce_all(self, client: aiomqtt.Client) -> None:
        if self.discovery is None:
            return
        async with self._announce_lock:
            await self._publish_configs(client, self.discovery.hub())
        for w in await self._db(self._outbox.wearers):
            await self._announce(client, w.resident, heart_rate=w.heart_rate, wearer=w)

    async def _announce(self, client: aiomqtt.Client, resident: str, *, heart_rate: bool,
                        wearer: Wearer | None = None) -> None:
        if self.discovery is None:
            self._announced[resident] = True
            return
        async with self._announce_lock:
            w = wearer or await self._db(self._outbox.wearer, resident)
            if w is None:
                w = Wearer(resident, resident, heart_rate)
            elif heart_rate and not w.heart_rate:
                w = Wearer(w.resident, w.device, True)
            await self._publish_configs(client, self.discovery.wearer(w))
            self._announced[resident] = w.heart_rate

    async def _publish_configs(self, client: aiomqtt.Client,
                               configs: list[tuple[str, dict[str, Any]]]) -> None:
        await asyncio.gather(*(client.publish(topic, json.dumps(payload, separators=(",", ":")),
                                              qos=1, retain=True) for topic, payload in configs))
        self.stats.inc("discovery_configs", len(configs))

    async def _report_overflow(self, client: aiomqtt.Client) -> None:
        total, unreported = await self._db(self._outbox.dropped)
        if not unreported:
            return
        body = {"kind": "backlog_overflow",
                "detail": {"dropped": unreported, "dropped_total": total,
                           "backlog_max": self._outbox.backlog_max}}
        await client.publish(self.topics.hub_event, json.dumps(body), qos=self.opts.qos)
        await self._db(self._outbox.reported, unreported)

    # -- faults ------------------------------------------------------------------------------
    def _failed(self, e: BaseException, backoff: float) -> None:
        self.stats.inc("connect_failures")
        text = describe_failure(e, self.broker, timeout_s=self.opts.timeout_s,
                                password_from=self._password_from)
        self._failed_text(text, backoff)

    def _failed_text(self, text: str, backoff: float) -> None:
        first = self.fault is None
        self.fault = text
        if text != self._last_failure:  # one line per kind of failure, not one per retry
            self._last_failure = text
            log.warning("mqtt: %s; retrying with back-off up to %g s, messages stay in the "
                        "outbox", text, self.opts.retry_max_s)
        else:
            log.debug("mqtt: still failing (%s); next attempt in %.1f s", text, backoff)
        if first:
            self._report(text)

    def _recovered(self) -> None:
        if self.fault is not None:
            self.fault = None
            self._last_failure = ""
            self._report(None)
        log.info("mqtt: connected to %s as %s", self.broker, self.opts.resolved_client_id())
        self.stats.inc("connects")

    def _report(self, text: str | None) -> None:
        if self.on_fault is not None:
            try:
                self.on_fault(self.name, text)
            except RuntimeError as e:  # the loop may already be closed at shutdown
                log.debug("mqtt: fault callback failed: %s", e)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, fn, *args)
