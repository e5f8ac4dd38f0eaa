"""The broker URL: the accepted forms, and one clear error for each wrong one."""

from __future__ import annotations

import pytest

from core.errors import ConfigError, WearableEdgeError
from edge.sinks.mqtt.url import MqttUrl, parse_mqtt_url


@pytest.mark.parametrize(("text", "expected"), [
    ("mqtt://127.0.0.1", MqttUrl("127.0.0.1", 1883, tls=False)),
    ("mqtt://broker.local:1884", MqttUrl("broker.local", 1884, tls=False)),
    ("mqtts://hub@broker.local", MqttUrl("broker.local", 8883, tls=True, username="hub")),
    ("MQTTS://care%40home@10.0.0.2:9999", MqttUrl("10.0.0.2", 9999, tls=True,
                                                  username="care@home")),
    ("mqtt://[::1]:1883", MqttUrl("::1", 1883, tls=False)),
    ("mqtt://h/", MqttUrl("h", 1883, tls=False)),
])
def test_accepted_forms(text: str, expected: MqttUrl) -> None:
    assert parse_mqtt_url(text) == expected


def test_str_round_trips_and_holds_no_secret() -> None:
    for text in ("mqtts://hub@broker.local:8883", "mqtt://[::1]:1883"):
        assert str(parse_mqtt_url(text)) == text
        assert parse_mqtt_url(str(parse_mqtt_url(text))) == parse_mqtt_url(text)
    assert parse_mqtt_url("mqtt://[::1]").address == "[::1]:1883"
    assert parse_mqtt_url("mqtt://10.1.2.3").is_ip and not parse_mqtt_url("mqtt://h").is_ip


@pytest.mark.parametrize(("text", "words"), [
    ("", "is empty"),
    ("   ", "is empty"),
    ("mqtt://h ost", "white space"),
    ("http://broker", "http:// is not an MQTT URL"),
    ("broker:1883", "without a scheme"),
    ("mqtt://", "names no broker host"),
    ("mqtt://:1883", "names no broker host"),
    ("mqtt://h:0", "port"),
    ("mqtt://h:99999", "port"),
    ("mqtt://h:12ab", "port"),
    ("mqtt://h/topic", "path"),
    ("mqtt://h?x=1", "path, query"),
    ("mqtt://@h", "empty user name"),
    ("mqtt://[::1", "cannot be parsed"),
])
def test_each_wrong_form_gives_one_line_naming_the_key(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_mqtt_url(text)
    msg = str(e.value)
    assert words in msg and "\n" not in msg
    assert e.value.key == "mqtt.url"
    assert isinstance(e.value, WearableEdgeError)


def test_a_password_in_the_url_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError) as e:
        parse_mqtt_url("mqtt://hub:s3cr3t-pw@broker", key="--mqtt")
    assert "s3cr3t-pw" not in str(e.value)
    assert "password_file" in str(e.value) and e.value.key == "--mqtt"
