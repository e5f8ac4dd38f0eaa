"""Home Assistant MQTT discovery: the retained configs that make each wearer a device.

Per wearer, one Home Assistant device (``via_device`` the hub) with these entities:

=====================  =============  ==============================================
object id              component      reads
=====================  =============  ==============================================
affective_state        sensor (enum)  ``state`` of each decision; options = the model's classes
stress_probability     sensor (%)     ``stress_pct`` of each decision (if the model has stress)
sustained_stress       binary_sensor  the sustained-stress alert (device class ``problem``)
connected              binary_sensor  the wearable's link (``connectivity``)
battery                sensor         battery percent (``battery``)
heart_rate             sensor (bpm)   a period's mean, when the wearable sends a heart rate
last_decision          sensor         ``time`` of the latest decision (``timestamp``)
=====================  =============  ==============================================

and for the hub one device with a ``problem`` binary sensor (a sink failing, a source gone).
Configs go to ``<discovery_prefix>/<component>/<node_id>/<object_id>/config``, retained,
with ``unique_id``, ``device``, ``origin`` and ``availability`` (the hub's status topic:
``online`` on connect, ``offline`` as the last will). Removing a wearer publishes an empty
retained payload to each of its config topics, which deletes the entities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from edge import __version__
from edge.sinks.mqtt.outbox import Wearer
from edge.sinks.mqtt.topics import HUB, Topics, slug

__all__ = ["WEARER_OBJECTS", "Discovery"]

WEARER_OBJECTS: Final = (
    ("sensor", "affective_state"),
    ("sensor", "stress_probability"),
    ("binary_sensor", "sustained_stress"),
    ("binary_sensor", "connected"),
    ("sensor", "battery"),
    ("sensor", "heart_rate"),
    ("sensor", "last_decision"),
)
ONLINE: Final = "online"
OFFLINE: Final = "offline"
_ON_OFF: Final = "{{{{ 'ON' if value_json.{field} else 'OFF' }}}}"


class Discovery:
    """Builds discovery configs: ``[(topic, payload dict)]`` for a wearer or the hub."""

    def __init__(self, topics: Topics, class_names: Sequence[str], *,
                 stress_class: str = "stress") -> None:
        self.topics = topics
        self.class_names = [str(c) for c in class_names]
        self.stress_class = stress_class
        self.origin = {"name": "wearable-edge", "sw_version": __version__}
        self.availability = [{"topic": topics.status, "payload_available": ONLINE,
                              "payload_not_available": OFFLINE}]

    @property
    def hub_identifier(self) -> str:
        return f"wearable_edge_{self.topics.hub}"

    def _identifier(self, resident: str) -> str:
        return f"{self.hub_identifier}_{slug(resident)}"

    def _entity(self, resident: str, object_id: str, name: str, device: dict[str, Any],
                **fields: Any) -> dict[str, Any]:
        ident = self.hub_identifier if resident == HUB else self._identifier(resident)
        return {
            "name": name,
            "unique_id": f"{ident}_{object_id}",
            "availability": self.availability,
            "device": device,
            "origin": self.origin,
            "qos": 1,
            **fields,
        }

    def wearer(self, w: Wearer) -> list[tuple[str, dict[str, Any]]]:
        """The configs of ``w``'s device (heart rate only if it sends one)."""
        r, t = w.resident, self.topics
        device = {
            "identifiers": [self._identifier(r)],
            "name": r,
            "manufacturer": "wearable-edge",
            "model": "affective-state monitor",
            "sw_version": __version__,
            "via_device": self.hub_identifier,
        }
        state = t.state(r)
        e = self._entity
        out: list[tuple[str, dict[str, Any]]] = [
            (t.config("sensor", r, "affective_state"), e(
                r, "affective_state", "Affective state", device, state_topic=state,
                value_template="{{ value_json.state }}", device_class="enum",
                options=self.class_names, icon="mdi:emoticon-outline",
                json_attributes_topic=state,
                json_attributes_template="{{ {'probabilities': value_json.probabilities, "
                                         "'model': value_json.model} | tojson }}")),
        ]
        if self.stress_class in self.class_names:
            out.append((t.config("sensor", r, "stress_probability"), e(
                r, "stress_probability", "Stress probability", device, state_topic=state,
                value_template="{{ value_json.stress_pct }}", unit_of_measurement="%",
                state_class="measurement", suggested_display_precision=0, icon="mdi:gauge")))
        out += [
            (t.config("binary_sensor", r, "sustained_stress"), e(
                r, "sustained_stress", "Sustained stress", device,
                state_topic=t.sustained_stress(r), value_template=_ON_OFF.format(field="active"),
                device_class="problem")),
            (t.config("binary_sensor", r, "connected"), e(
                r, "connected", "Wearable connected", device, state_topic=t.connected(r),
                value_template=_ON_OFF.format(field="connected"), device_class="connectivity",
                entity_category="diagnostic")),
            (t.config("sensor", r, "battery"), e(
                r, "battery", "Battery", device, state_topic=t.battery(r),
                value_template="{{ value_json.percent }}", device_class="battery",
                unit_of_measurement="%", state_class="measurement",
                entity_category="diagnostic")),
        ]
        if w.heart_rate:
            out.append((t.config("sensor", r, "heart_rate"), e(
                r, "heart_rate", "Heart rate", device, state_topic=t.heart_rate(r),
                value_template="{{ value_json.bpm }}", unit_of_measurement="bpm",
                state_class="measurement", icon="mdi:heart-pulse")))
        out.append((t.config("sensor", r, "last_decision"), e(
            r, "last_decision", "Last decision", device, state_topic=state,
            value_template="{{ value_json.time }}", device_class="timestamp",
            entity_category="diagnostic")))
        return out

    def hub(self) -> list[tuple[str, dict[str, Any]]]:
        device = {
            "identifiers": [self.hub_identifier],
            "name": f"wearable-edge hub {self.topics.hub}",
            "manufacturer": "wearable-edge",
            "model": "home hub",
            "sw_version": __version__,
        }
        return [(self.topics.config("binary_sensor", HUB, "problem"), self._entity(
            HUB, "problem", "Hub problem", device, state_topic=self.topics.hub_problem,
            value_template=_ON_OFF.format(field="active"), device_class="problem",
            entity_category="diagnostic"))]

    def removal(self, resident: str) -> list[str]:
        """Every config topic a wearer may have: publish an empty retained payload to each."""
        return [self.topics.config(c, resident, o) for c, o in WEARER_OBJECTS]
