"""The MQTT sink's typed options: the ``[mqtt]`` section of the daemon's configuration.

Every field is a TOML key under ``[mqtt]`` (``--mqtt URL`` sets ``mqtt.url``); ``validate``
raises :class:`~core.errors.ConfigError` naming the dotted key, like every config section.
The password is read from ``password_file`` or the environment variable ``password_env`` by
:func:`read_password`, only when the sink opens: it is never a field, never on the command
line, never in a log line or an error message.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from core.errors import ConfigError
from edge.sinks.mqtt.url import MqttUrl, parse_mqtt_url

__all__ = ["MAX_PASSWORD_BYTES", "MqttOptions", "read_password", "tls_context"]

log = logging.getLogger(__name__)

MAX_PASSWORD_BYTES: Final = 65535  # MQTT's binary-data field limit for the password
_TOPIC_LEVEL: Final = re.compile(r"^[^+#/\x00]+$")  # one topic level, no wildcards


@dataclass
class MqttOptions:
    """How the hub talks to an MQTT broker (and Home Assistant through it)."""

    url: str = ""  # mqtt://[user@]host[:port] or mqtts://...; empty: MQTT is off
    # topics are <topic_prefix>/<hub_id>/<wearer>/...: several hubs can share one broker
    topic_prefix: str = "wearable-edge"
    hub_id: str = ""  # this hub's name in topics and entity ids; empty = the host name
    client_id: str = ""  # the MQTT client id (unique per broker); empty = wearable-edge-<hub_id>
    discovery: bool = True  # announce Home Assistant entities (MQTT discovery)
    discovery_prefix: str = "homeassistant"  # Home Assistant's default discovery prefix
    # 1: at least once. The outbox deletes a message on PUBACK, so 0 would give up the
    # store-and-forward promise; 2 is accepted for brokers that insist on it
    qos: int = 1
    # the broker declares the hub gone (and publishes its `offline` will) after 1.5 x this
    # without a packet; 60 s is paho's and Home Assistant's own default
    keepalive_s: int = 60
    timeout_s: float = 10.0  # connect / publish acknowledgement deadline per attempt
    ca_file: str = ""  # mqtts: the CA that signed the broker's certificate; empty = system CAs
    cert_file: str = ""  # mqtts: a client certificate, for brokers that require one
    key_file: str = ""  # ... and its private key
    password_file: str = ""  # a file whose first line is the password (owner-only, 0600)
    password_env: str = ""  # or: the name of an environment variable holding it
    # outbox rows kept while the broker is away; beyond this the oldest derived states go
    # first, then events, never alerts (counted). 50k is ~2 days of one wearer at a 5 s hop
    backlog_max: int = 50_000
    retry_min_s: float = 1.0  # first reconnection attempt after this; doubles per failure
    retry_max_s: float = 60.0  # ... up to this: a broker away for hours costs nothing
    # heart rate and battery go out at most this often, as averages over the period: a
    # per-beat stream is close to raw data and of no use on a carer's dashboard
    status_interval_s: float = 60.0
    heart_rate: bool = True  # publish the heart rate (1-period mean) when a wearable sends it
    # residents who left: their Home Assistant entities are removed at start (empty retained
    # configs) and nothing of theirs is published any more; take a name out if they return
    retired: list[str] = field(default_factory=list)

    def validate(self, key: str) -> None:
        if self.url:
            u = parse_mqtt_url(self.url, key=f"{key}.url")
            if not u.tls:
                for name in ("ca_file", "cert_file", "key_file"):
                    if getattr(self, name):
                        raise ConfigError("is a TLS setting but the URL is mqtt:// (plain); "
                                          "use mqtts://", key=f"{key}.{name}")
            if (self.password_file or self.password_env) and not u.username:
                raise ConfigError("a password needs a user name: mqtt://USER@host",
                                  key=f"{key}.url")
        if self.password_file and self.password_env:
            raise ConfigError("set password_file or password_env, not both",
                              key=f"{key}.password_env")
        if self.password_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.password_env):
            raise ConfigError("must be an environment variable name (not the password)",
                              key=f"{key}.password_env")
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("a client certificate needs both cert_file and key_file",
                              key=f"{key}.{'key_file' if self.cert_file else 'cert_file'}")
        _topic_prefix(self.topic_prefix, f"{key}.topic_prefix")
        _topic_prefix(self.discovery_prefix, f"{key}.discovery_prefix")
        if self.hub_id and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.hub_id):
            raise ConfigError("must be 1-64 letters, digits, '_' or '-'", key=f"{key}.hub_id")
        if len(self.client_id.encode()) > 65535:
            raise ConfigError("is too long", key=f"{key}.client_id")
        if self.qos not in (1, 2):
            raise ConfigError(f"{self.qos!r} is not 1 or 2 (QoS 0 would lose messages while "
                              "the broker is away)", key=f"{key}.qos")
        if not 1 <= self.keepalive_s <= 65535:
            raise ConfigError("must be between 1 and 65535 seconds", key=f"{key}.keepalive_s")
        for name in ("timeout_s", "retry_min_s", "status_interval_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{getattr(self, name)!r} must be > 0", key=f"{key}.{name}")
        if self.retry_max_s < self.retry_min_s:
            raise ConfigError("must be >= retry_min_s", key=f"{key}.retry_max_s")
        if self.backlog_max < 100:
            raise ConfigError("must be at least 100 messages", key=f"{key}.backlog_max")
        for i, name in enumerate(self.retired):
            if not name.strip() or name == "hub":
                raise ConfigError(f"{name!r} is not a resident id", key=f"{key}.retired[{i}]")

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def broker(self) -> MqttUrl:
        return parse_mqtt_url(self.url)

    def resolved_hub_id(self) -> str:
        """``hub_id``, or the host name made safe for topics and entity ids."""
        if self.hub_id:
            return self.hub_id
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname().split(".")[0]).strip("_")
        return name[:64] or "hub"

    def resolved_client_id(self) -> str:
        return self.client_id or f"wearable-edge-{self.resolved_hub_id()}"


def read_password(opts: MqttOptions, *, key: str = "mqtt") -> str | None:
    """The broker password from ``password_file`` or ``password_env`` (None: no password).

    Errors name the setting, never the value. A password file readable by other users is
    accepted with a warning (the hub still runs; the operator should ``chmod 600`` it).
    """
    if opts.password_env:
        value = os.environ.get(opts.password_env)
        if value is None:
            raise ConfigError(f"the environment variable {opts.password_env} is not set",
                              key=f"{key}.password_env")
        return _checked(value, f"{key}.password_env")
    if not opts.password_file:
        return None
    p = Path(opts.password_file)
    try:
        mode = p.stat().st_mode
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p} does not exist", key=f"{key}.password_file") from None
    except OSError as e:
        raise ConfigError(f"cannot read {p}: {e.strerror}", key=f"{key}.password_file") from None
    creds = os.environ.get("CREDENTIALS_DIRECTORY")  # systemd's LoadCredential= guards these
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and not (creds and p.is_relative_to(creds)):
        log.warning("mqtt: the password file %s is readable by other users; chmod 600 it", p)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p} is not UTF-8 text", key=f"{key}.password_file") from None
    line = text.splitlines()[0] if text.strip() else ""
    return _checked(line, f"{key}.password_file")


def tls_context(opts: MqttOptions, *, key: str = "mqtt") -> ssl.SSLContext:
    """The TLS context for ``mqtts://``: the broker verified against ``ca_file`` (or the
    system's CAs) and its host name; a client certificate if given. Files are read now, so a
    missing or malformed one is a start-up error naming its key."""
    try:
        ctx = ssl.create_default_context(cafile=opts.ca_file or None)
    except FileNotFoundError:
        raise ConfigError(f"{opts.ca_file} does not exist", key=f"{key}.ca_file") from None
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"{opts.ca_file} is not a PEM CA certificate ({e})",
                          key=f"{key}.ca_file") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.sslsocket_class = _ClosingSSLSocket
    if opts.cert_file:
        try:
            ctx.load_cert_chain(opts.cert_file, opts.key_file)
        except FileNotFoundError:
            raise ConfigError(f"{opts.cert_file} or {opts.key_file} does not exist",
                              key=f"{key}.cert_file") from None
        except (ssl.SSLError, OSError) as e:
            raise ConfigError(f"cannot load the client certificate and key ({e})",
                              key=f"{key}.cert_file") from None
    return ctx


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails: the MQTT client (paho) drops such a
    socket without closing it, leaving the descriptor to the garbage collector on every
    retry against a broker whose certificate is not trusted."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _checked(value: str, key: str) -> str:
    if not value:
        raise ConfigError("gives an empty password", key=key)
    if len(value.encode()) > MAX_PASSWORD_BYTES:
        raise ConfigError("gives a password longer than MQTT allows", key=key)
    return value


def _topic_prefix(value: str, key: str) -> None:
    levels = value.split("/")
    if not value or value.startswith("$") or not all(_TOPIC_LEVEL.match(lv) for lv in levels):
        raise ConfigError(f"{value!r} must be topic levels separated by '/', without '+', '#', "
                          "empty levels or a leading '$'", key=key)
