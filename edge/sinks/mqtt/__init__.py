"""MQTT output for carers: derived states to a broker and Home Assistant, nothing lost offline.

One module per job: :mod:`.url` (the broker address), :mod:`.options` (the ``[mqtt]``
section, password and TLS files), :mod:`.topics` (the topic layout), :mod:`.messages`
(records -> payloads: the privacy whitelist), :mod:`.outbox` (store-and-forward in SQLite),
:mod:`.discovery` (Home Assistant entities), :mod:`.publisher` (the connection) and
:mod:`.sink` (the :class:`~edge.sinks.base.Sink`). Names are resolved on first use: reading
a configuration (which holds an :class:`MqttOptions`) imports no hub module, and the MQTT
client library is imported only when a sink is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from core.lazy import lazy_attributes
from edge.sinks.mqtt.options import MqttOptions
from edge.sinks.mqtt.url import MqttUrl, parse_mqtt_url

if TYPE_CHECKING:
    from edge.device_status import DeviceStatus
    from edge.sinks.mqtt.sink import MqttSink

__all__ = ["DeviceStatus", "MqttOptions", "MqttSink", "MqttUrl", "parse_mqtt_url"]

_HOME: Final = {"DeviceStatus": "messages", "MqttSink": "sink"}


__getattr__ = lazy_attributes(__name__, _HOME, globals())
