"""edge.fleet.hub_options: the daemon's [fleet] section, refused in one line naming the key."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from edge.config import DaemonConfig, apply_overrides
from edge.fleet.hub_options import FleetJoinOptions


def test_off_by_default() -> None:
    assert not DaemonConfig().fleet.enabled


def test_https_with_a_ca_is_a_superlink_with_tls() -> None:
    o = FleetJoinOptions(url="https://coordinator.lan:9092", root_certificates="/etc/ca.pem")
    o.validate("fleet")
    assert o.enabled and o.tls and o.superlink == "coordinator.lan:9092"


def test_http_is_without_tls() -> None:
    o = FleetJoinOptions(url="http://10.0.0.2:9092")
    o.validate("fleet")
    assert not o.tls and o.superlink == "10.0.0.2:9092"


@pytest.mark.parametrize(
    ("url", "ca", "key"),
    [
        ("coordinator:9092", "ca.pem", "fleet.url"),  # no scheme
        ("ftp://coordinator:9092", "ca.pem", "fleet.url"),
        ("https://coordinator", "ca.pem", "fleet.url"),  # no port
        ("https://coordinator:9092/path", "ca.pem", "fleet.url"),
        ("https://coordinator:99999", "ca.pem", "fleet.url"),
        ("https://coordinator:9092", "", "fleet.root_certificates"),
    ],
)
def test_refused(url: str, ca: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        apply_overrides(DaemonConfig(), {"fleet.url": url, "fleet.root_certificates": ca})
    assert e.value.key == key and "\n" not in str(e.value)


def test_refresh_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"fleet\.refresh_s"):
        apply_overrides(DaemonConfig(), {"fleet.refresh_s": 0})
