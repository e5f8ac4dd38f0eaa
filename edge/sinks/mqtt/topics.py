"""Where each derived value is published: one topic layout for the sink and the discovery.

    <prefix>/<hub>/status                      online / offline (retained; the last will)
    <prefix>/<hub>/<wearer>/state              every decision, JSON (retained: the latest)
    <prefix>/<hub>/<wearer>/sustained_stress   {"active": true|false} (retained)
    <prefix>/<hub>/<wearer>/connected          {"connected": true|false} (retained)
    <prefix>/<hub>/<wearer>/battery            {"percent": 57} (retained)
    <prefix>/<hub>/<wearer>/heart_rate         {"bpm": 71} (retained; a period's mean)
    <prefix>/<hub>/<wearer>/alert              each alert raised or cleared, JSON
    <prefix>/<hub>/<wearer>/event              every other event, JSON
    <prefix>/<hub>/hub/problem                 {"active": true|false} (retained)
    <prefix>/<hub>/hub/event                   hub events (a sink failing, backlog overflow)

A wearer's name becomes a topic level and an entity id through :func:`slug`; names that had
to change get a short hash so two residents never share a topic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["HUB", "Topics", "slug"]

HUB: Final = "hub"  # the resident name hub-level events carry (edge.daemon.on_sink_fault)
_UNSAFE: Final = re.compile(r"[^a-z0-9_-]+")


def slug(name: str) -> str:
    """``"Anna B."`` -> ``"anna_b_1f3a9c"``: safe as a topic level and a Home Assistant id."""
    s = _UNSAFE.sub("_", name.lower()).strip("_")[:48]
    if s == name and s:
        return s
    digest = hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:6]
    return f"{s}_{digest}" if s else f"wearer_{digest}"


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str  # MqttOptions.topic_prefix
    hub: str  # MqttOptions.resolved_hub_id()
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.hub}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def ha_status(self) -> str:
        """Home Assistant announces ``online`` here when it starts: configs are re-sent."""
        return f"{self.discovery_prefix}/status"

    def wearer(self, resident: str) -> str:
        return f"{self.base}/{HUB if resident == HUB else slug(resident)}"

    def state(self, resident: str) -> str:
        return f"{self.wearer(resident)}/state"

    def sustained_stress(self, resident: str) -> str:
        return f"{self.wearer(resident)}/sustained_stress"

    def connected(self, resident: str) -> str:
        return f"{self.wearer(resident)}/connected"

    def battery(self, resident: str) -> str:
        return f"{self.wearer(resident)}/battery"

    def heart_rate(self, resident: str) -> str:
        return f"{self.wearer(resident)}/heart_rate"

    def alert(self, resident: str) -> str:
        return f"{self.wearer(resident)}/alert"

    def event(self, resident: str) -> str:
        return f"{self.wearer(resident)}/event"

    @property
    def hub_problem(self) -> str:
        return f"{self.base}/{HUB}/problem"

    @property
    def hub_event(self) -> str:
        return f"{self.base}/{HUB}/event"

    def node(self, resident: str) -> str:
        """The discovery ``node_id`` of a wearer's device (or the hub's)."""
        return f"{self.hub}_{HUB if resident == HUB else slug(resident)}"

    def config(self, component: str, resident: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node(resident)}/{object_id}/config"
