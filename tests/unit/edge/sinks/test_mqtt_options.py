"""The [mqtt] options: validation naming the key, the password from a file or the environment."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core import config as engine
from core.errors import ConfigError
from edge.alerts import AlertConfig
from edge.sinks.mqtt.options import MqttOptions, read_password, tls_context


@dataclass
class Sections:
    """The two sections as the daemon's configuration will hold them."""

    mqtt: MqttOptions = field(default_factory=MqttOptions)
    alerts: AlertConfig = field(default_factory=AlertConfig)


def test_defaults_are_valid_and_off() -> None:
    opts = MqttOptions()
    opts.validate("mqtt")
    assert not opts.enabled
    assert opts.qos == 1 and opts.discovery_prefix == "homeassistant"
    assert opts.resolved_client_id().startswith("wearable-edge-")


@pytest.mark.parametrize(("changes", "key"), [
    ({"url": "http://x"}, "mqtt.url"),
    ({"url": "mqtt://h", "ca_file": "/ca.pem"}, "mqtt.ca_file"),
    ({"url": "mqtt://h", "password_file": "/pw"}, "mqtt.url"),  # a password needs a user
    ({"password_file": "/pw", "password_env": "PW"}, "mqtt.password_env"),
    ({"password_env": "not a name!"}, "mqtt.password_env"),
    ({"cert_file": "/c.pem"}, "mqtt.key_file"),
    ({"key_file": "/k.pem"}, "mqtt.cert_file"),
    ({"topic_prefix": "a/+/b"}, "mqtt.topic_prefix"),
    ({"topic_prefix": "a//b"}, "mqtt.topic_prefix"),
    ({"topic_prefix": "$SYS"}, "mqtt.topic_prefix"),
    ({"discovery_prefix": ""}, "mqtt.discovery_prefix"),
    ({"hub_id": "my hub"}, "mqtt.hub_id"),
    ({"qos": 0}, "mqtt.qos"),
    ({"keepalive_s": 0}, "mqtt.keepalive_s"),
    ({"timeout_s": 0.0}, "mqtt.timeout_s"),
    ({"retry_min_s": 5.0, "retry_max_s": 1.0}, "mqtt.retry_max_s"),
    ({"backlog_max": 10}, "mqtt.backlog_max"),
])
def test_a_bad_value_names_its_key(changes: dict[str, object], key: str) -> None:
    opts = MqttOptions(**changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as e:
        opts.validate("mqtt")
    assert e.value.key == key


def test_password_from_a_file_first_line_only(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse\nignored\n")
    pw.chmod(0o600)
    opts = MqttOptions(url="mqtt://hub@h", password_file=str(pw))
    opts.validate("mqtt")
    assert read_password(opts) == "correct horse"
    assert "correct horse" not in repr(opts)


def test_password_file_readable_by_others_is_used_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret-value\n")
    pw.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert read_password(MqttOptions(password_file=str(pw))) == "secret-value"
    assert "chmod 600" in caplog.text and "secret-value" not in caplog.text


@pytest.mark.parametrize("content", [b"", b"\n", b"\xff\xfe"])
def test_an_unusable_password_file_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        read_password(MqttOptions(password_file=str(pw)))
    assert e.value.key == "mqtt.password_file"


def test_missing_password_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_password(MqttOptions(password_file=str(tmp_path / "nope")))
    monkeypatch.delenv("EDGE_TEST_MQTT_PW", raising=False)
    with pytest.raises(ConfigError, match="EDGE_TEST_MQTT_PW is not set"):
        read_password(MqttOptions(password_env="EDGE_TEST_MQTT_PW"))
    monkeypatch.setenv("EDGE_TEST_MQTT_PW", "from-env")
    assert read_password(MqttOptions(password_env="EDGE_TEST_MQTT_PW")) == "from-env"
    assert read_password(MqttOptions()) is None


def test_tls_context_verifies_and_names_a_bad_file(tmp_path: Path) -> None:
    ctx = tls_context(MqttOptions(url="mqtts://h"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with pytest.raises(ConfigError) as e:
        tls_context(MqttOptions(url="mqtts://h", ca_file=str(tmp_path / "missing.pem")))
    assert e.value.key == "mqtt.ca_file"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigError) as e:
        tls_context(MqttOptions(url="mqtts://h", ca_file=str(junk)))
    assert e.value.key == "mqtt.ca_file"
    with pytest.raises(ConfigError) as e:
        tls_context(MqttOptions(url="mqtts://h", cert_file=str(junk), key_file=str(junk)))
    assert e.value.key == "mqtt.cert_file"


def test_the_mqtt_and_alerts_sections_load_from_toml(tmp_path: Path) -> None:
    """The sections plug into the kernel's config engine as they are (``[mqtt]``, ``[alerts]``)."""
    toml = tmp_path / "edge.toml"
    toml.write_text('[mqtt]\nurl = "mqtts://hub@broker.local"\npassword_file = "/etc/pw"\n'
                    'keepalive_s = 30\n[alerts]\ncooldown_min = 20\n'
                    '[alerts.wearers.anna]\nsustained_stress_min = 5\n')
    s = engine.load(Sections, toml)
    s.mqtt.validate("mqtt")
    s.alerts.validate("alerts")
    assert s.mqtt.broker().tls and s.mqtt.keepalive_s == 30
    assert s.alerts.threshold("anna", "sustained_stress_min") == 5.0
    assert s.alerts.threshold("bob", "sustained_stress_min") == 10.0
    with pytest.raises(ConfigError) as e:
        engine.apply_overrides(s, {"mqtt.qos": "one"})
    assert e.value.key == "mqtt.qos"


def test_reading_the_options_imports_no_hub_module_and_no_client() -> None:
    """edge.config holds these sections; importing them must not import edge.decisions (which
    imports edge.config: a cycle) nor the MQTT client library."""
    import subprocess
    import sys

    code = ("import sys, edge.sinks.mqtt.options, edge.alerts.options, edge.sinks.mqtt;"
            "print(sorted(m for m in ('edge.config', 'edge.decisions', 'edge.sinks.base',"
            " 'aiomqtt', 'paho') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
