"""edge.exit_status: which summaries may exit 0 (issue 17)."""

from __future__ import annotations

from edge.exit_status import lost_records, run_failure
from edge.ui import format_summary


def _summary(**changes: object) -> dict[str, object]:
    s: dict[str, object] = {"decisions": 10, "samples": 500, "drops": {"lost_packets": 3},
                            "sinks": {"sqlite": {"written": 10}}}
    s.update(changes)
    return s


def test_a_clean_run_passes_and_radio_losses_are_not_lost_decisions() -> None:
    assert run_failure(_summary(), finite=True) is None
    assert lost_records(_summary()) == {}


def test_records_lost_by_a_sink_fail_the_run_even_as_a_service() -> None:
    s = _summary(drops={"sink_sqlite_lost_at_close": 86, "engine_errors": 0})
    why = run_failure(s, finite=False)
    assert why is not None and "86 records were lost" in why
    assert "sink_sqlite_lost_at_close 86" in why


def test_a_finite_run_without_data_fails_with_the_hint_a_service_does_not() -> None:
    s = _summary(decisions=0, samples=0, drops={})
    why = run_failure(s, finite=True, waiting_for="serial port /dev/ttyX: no such port")
    assert why == "no data from the source: serial port /dev/ttyX: no such port"
    assert run_failure(s, finite=False) is None


def test_the_summary_never_says_none_when_something_was_lost() -> None:
    text = format_summary(_summary(drops={"sink_sqlite_lost_at_close": 4},
                                   outputs={"sqlite": "/var/lib/wearable-edge/edge.db"}))
    assert "LOST: 4 records (sink_sqlite_lost_at_close 4)" in text
    assert "decisions went to: /var/lib/wearable-edge/edge.db (sqlite)" in text


def test_an_mqtt_outbox_overflow_is_a_loss_and_drops_do_not_say_none() -> None:
    s = _summary(drops={}, sinks={"mqtt": {"published": 3, "backlog_dropped": 7}})
    assert lost_records(s) == {"sink_mqtt_backlog_dropped": 7}
    text = format_summary(s)
    assert "drops: none" not in text and "sink_mqtt_backlog_dropped 7" in text
