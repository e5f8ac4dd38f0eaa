"""The carers' side of a run: alerts over the records, wearables' status, the hub's own faults.

:class:`CarerOutputs` sits beside the pipeline (the daemon hands it what passes and emits
what it returns, like any record) and keeps out of its core:

- every decision and event goes through the alert rules (:mod:`edge.alerts`); a tick judges
  the time-based ones (a wearable off the wrist or out of reach sends no record). Wearers'
  rules run in the records' time (virtual in a sped-up run), the hub's in wall-clock time;
- what a wearable says about itself (link, battery, heart rate: :mod:`edge.device_status`)
  goes to the sinks that take it (``device_status()``: the MQTT sink) and to the battery rule;
- the hub's faults: a sink failing (``sink_fault`` events, kept in :attr:`hub_faults`) and a
  live source gone silent (:class:`~edge.health.SourceWatch`: ``source_lost`` /
  ``source_restored``), which the ``hub_unhealthy`` rule turns into an alert.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from edge.alerts.rules import HUB, AlertRules
from edge.config import DaemonConfig
from edge.decisions import Decision, Event
from edge.health import SourceWatch
from edge.sources.base import SourceItem

if TYPE_CHECKING:
    from edge.daemon import DevicePipeline
    from edge.sinks.base import Sink

__all__ = ["CarerOutputs", "hub_event"]

log = logging.getLogger(__name__)


def hub_event(kind: str, detail: dict[str, Any], t: float | None = None) -> Event:
    """An event about the hub itself (a sink, the source), at wall-clock ``t`` (now)."""
    return Event(HUB, HUB, time.time() if t is None else t, kind, detail)


class CarerOutputs:
    """See the module docstring. Loop-owned: every method runs on the event loop.

    ``wall`` and ``mono``: the clocks (wall-clock and monotonic seconds), for tests.
    """

    def __init__(self, cfg: DaemonConfig, *, source_kind: str, live: bool,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.alerts = AlertRules(cfg.alerts, stress_class=cfg.decisions.stress_class)
        self.source_watch = SourceWatch()
        self.hub_faults: dict[str, str] = {}  # sink name -> its current fault
        self.realtime = cfg.realtime
        self.source_kind = source_kind
        self.live = live
        self._data_now = -math.inf  # the latest wearer record's time: "now" when sped up
        self._status_sinks: list[Any] = []
        self._wall = wall
        self._mono = mono

    def attach(self, sinks: Sequence[Sink]) -> None:
        """The run's sinks (at start): those with ``device_status()`` get wearables' status."""
        self._status_sinks = [s for s in sinks if hasattr(s, "device_status")]

    def on_record(self, record: Decision | Event) -> list[Event]:
        """The alerts ``record`` raises or clears; notes the hub's sink faults."""
        if record.resident != HUB:
            self._data_now = max(self._data_now, record.t)
        elif isinstance(record, Event) and record.kind in ("sink_fault", "sink_recovered"):
            sink = str(record.detail.get("sink", "?"))
            if record.kind == "sink_fault":
                self.hub_faults[sink] = str(record.detail.get("error", ""))
            else:
                self.hub_faults.pop(sink, None)
        return self.alerts.observe(record)

    def on_item(self, item: SourceItem, dev: DevicePipeline) -> list[Event]:
        """A source item the ingest accepted: the source watch, and the wearable's status."""
        out: list[Event] = []
        if self.source_watch.on_item(item.device, item.message, self._mono()):
            log.info("the %s source delivers again", self.source_kind)
            out.append(hub_event("source_restored", {"source": self.source_kind}, self._wall()))
        st = dev.status.observe(item.message, resident=dev.ingest.resident, device=item.device,
                                to_wall=dev.ingest.time.to_wall)
        if st is None:
            return out
        for sink in self._status_sinks:
            sink.device_status(st)
        if st.battery_pct is not None:
            out.extend(self.alerts.battery(st.resident, st.device, st.t, st.battery_pct))
        return out

    def tick(self) -> list[Event]:
        """What time passing raised: a silent source, the time-based alert rules."""
        out: list[Event] = []
        wall = self._wall()
        if self.live and self.source_watch.check(self._mono()):
            log.error("the %s source has delivered nothing for %.0f s although a wearable's "
                      "link is up", self.source_kind, self.source_watch.silent_s)
            out.append(hub_event("source_lost", {"source": self.source_kind,
                                                 "silent_s": self.source_watch.silent_s}, wall))
        out.extend(self.alerts.tick(wall if self.realtime else self._data_now, hub_t=wall))
        return out
