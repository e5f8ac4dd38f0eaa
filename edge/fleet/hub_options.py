"""Typed options of a hub's membership in a care home's federation: the ``[fleet]`` section of the daemon's configuration.

Kept apart from :mod:`edge.fleet.member` so that reading a configuration imports neither it
nor Flower.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from core.config import require_positive
from core.errors import ConfigError

__all__ = ["FleetJoinOptions"]

SCHEMES = ("https", "http")


@dataclass
class FleetJoinOptions:
    # the coordinator (`edge-fleet serve`): https://HOST:PORT, or http://HOST:PORT without TLS
    # (a private test network only); empty = this hub is in no federation
    url: str = ""
    # the CA certificate (PEM) that signed the coordinator's; needed with https
    root_certificates: str = ""
    # the hub's training file is rewritten from its database this often (new confirmed labels)
    refresh_s: float = 600.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme != "http"

    @property
    def superlink(self) -> str:
        """``HOST:PORT`` as Flower's SuperNode takes it."""
        return urlsplit(self.url).netloc

    def validate(self, key: str) -> None:
        require_positive(self.refresh_s, f"{key}.refresh_s")
        if not self.url:
            return
        try:
            parts = urlsplit(self.url)
            port = parts.port
        except ValueError as e:
            raise ConfigError(f"not a URL ({e})", key=f"{key}.url") from e
        if parts.scheme not in SCHEMES or not parts.hostname or port is None:
            raise ConfigError(
                f"must be https://HOST:PORT (or http://HOST:PORT without TLS), got {self.url!r}",
                key=f"{key}.url",
            )
        if parts.path not in ("", "/") or parts.query:
            raise ConfigError("only https://HOST:PORT, no path", key=f"{key}.url")
        if self.tls and not self.root_certificates:
            raise ConfigError(
                "https needs the CA that signed the coordinator's certificate "
                "(fleet.root_certificates, --fleet-ca FILE)",
                key=f"{key}.root_certificates",
            )
