"""Parse a broker address, ``mqtt://[user@]host[:port]`` or ``mqtts://`` for TLS.

The password never travels in the URL (a command line is visible to every user of the hub
in ``ps`` and lands in shell history): it comes from a file or an environment variable
(:class:`~edge.sinks.mqtt.options.MqttOptions`). A URL that carries one is refused without
repeating it in the error.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

from core.errors import ConfigError

__all__ = ["DEFAULT_PORTS", "MqttUrl", "parse_mqtt_url"]

# the IANA ports of MQTT and MQTT over TLS, what Mosquitto listens on by default
DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}
_FORM: Final = "use mqtt://[user@]host[:port], or mqtts://… for TLS"


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """A broker address; holds no secret, so it may be logged."""

    host: str
    port: int
    tls: bool
    username: str | None = None

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``, for messages about reaching the broker."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def parse_mqtt_url(text: str, *, key: str = "mqtt.url") -> MqttUrl:
    """``mqtt://hub@192.168.1.10`` -> ``MqttUrl``; :class:`ConfigError` naming ``key`` if not."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"is empty; {_FORM}", key=key)
    if text != text.strip() or any(c.isspace() for c in text):
        raise ConfigError(f"contains white space; {_FORM}", key=key)
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in DEFAULT_PORTS:
        shown = f"{scheme}://" if sep else "an address without a scheme"
        raise ConfigError(f"{shown} is not an MQTT URL; {_FORM}", key=key)
    try:
        parts = urlsplit(text)
    except ValueError as e:  # an unbalanced [ in an IPv6 host
        raise ConfigError(f"cannot be parsed ({e}); {_FORM}", key=key) from None
    _refuse_password(parts, key)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("has a path, query or fragment; an MQTT URL names only the broker "
                          "(set the topic prefix with mqtt.topic_prefix)", key=key)
    host = parts.hostname
    if not host:
        raise ConfigError(f"names no broker host; {_FORM}", key=key)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("has a port that is not a number between 1 and 65535", key=key) from None
    if port == 0:
        raise ConfigError("has a port that is not a number between 1 and 65535", key=key)
    tls = parts.scheme.lower() == "mqtts"
    user = unquote(parts.username) if parts.username else None
    if parts.username is not None and not user:
        raise ConfigError("has an empty user name before '@'", key=key)
    return MqttUrl(host=host, port=port or DEFAULT_PORTS[parts.scheme.lower()], tls=tls,
                   username=user)


def _refuse_password(parts: SplitResult, key: str) -> None:
    if parts.password is not None:  # the message must not contain the URL: it holds a secret
        raise ConfigError("contains a password; put it in a file (mqtt.password_file) or an "
                          "environment variable (mqtt.password_env), never in the URL",
                          key=key)
