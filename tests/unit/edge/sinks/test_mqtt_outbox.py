"""The outbox: order, unique ids, a bounded backlog that never drops alerts, durable rows."""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from pathlib import Path

import pytest

from edge.sinks import open_database
from edge.sinks.mqtt.messages import OutMessage, Priority
from edge.sinks.mqtt.outbox import OUTBOX_SCHEMA_VERSION, Outbox, Wearer


def msg(resident: str, i: int, priority: Priority = Priority.STATE,
        heart_rate: bool = False) -> OutMessage:
    return OutMessage(resident, f"dev-{resident}", f"p/h/{resident}/state", {"i": i},
                      retain=True, priority=priority, heart_rate=heart_rate)


def test_rows_come_back_in_order_with_unique_ids(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "edge.db")
    ob.put([msg("anna", 0), msg("bob", 0), msg("anna", 1)])
    ob.put([msg("bob", 1)])
    rows = ob.peek(10)
    bodies = [json.loads(r.payload) for r in rows]
    assert [(r.resident, b["i"]) for r, b in zip(rows, bodies, strict=True)] == [
        ("anna", 0), ("bob", 0), ("anna", 1), ("bob", 1)]
    ids = [b["id"] for b in bodies]
    assert len(set(ids)) == 4 and all(i.startswith(ob.epoch + "-") for i in ids)
    assert list(bodies[0]) == ["id", "i"]  # the id first, the stored body after it
    assert ob.peek(2) == rows[:2]
    assert ob.ack([rows[0].seq, rows[1].seq]) == 2
    assert ob.count() == 2
    # an id is never reused, even after the newest row was deleted
    ob.ack([rows[3].seq])
    ob.put([msg("anna", 2)])
    new_id = json.loads(ob.peek(10)[-1].payload)["id"]
    assert new_id not in ids
    ob.close()


def test_rows_and_ids_survive_reopening(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    ob = Outbox(db)
    ob.put([msg("anna", i) for i in range(5)])
    epoch, first = ob.epoch, ob.peek(1)[0]
    ob.close()
    again = Outbox(db)
    assert again.count() == 5 and again.peek(1)[0] == first and again.epoch == epoch
    again.close()


def test_the_bound_drops_oldest_states_then_events_never_alerts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "edge.db", backlog_max=6)
    ob.put([msg("anna", 0, Priority.ALERT), msg("anna", 1), msg("anna", 2, Priority.EVENT),
            msg("anna", 3), msg("anna", 4)])
    assert ob.put([msg("anna", 5), msg("anna", 6)]) == 1  # 7 rows, bound 6: state 1 goes
    assert [json.loads(r.payload)["i"] for r in ob.peek(10)] == [0, 2, 3, 4, 5, 6]
    assert ob.put([msg("anna", 7, Priority.ALERT)] * 4) == 4  # states 3..6 go
    assert [json.loads(r.payload)["i"] for r in ob.peek(20)] == [0, 2, 7, 7, 7, 7]
    assert ob.put([msg("anna", 8, Priority.ALERT)] * 3) == 1  # then the event; alerts stay
    kept = ob.peek(20)
    assert all(r.is_alert for r in kept) and len(kept) == 8  # over the bound: alerts only
    assert ob.dropped() == (6, 6)
    ob.reported(6)
    assert ob.dropped() == (6, 0)
    ob.close()


def test_wearers_are_remembered_with_their_heart_rate(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "edge.db")
    ob.put([msg("anna", 0), msg("hub", 0), msg("bob", 0)])
    ob.put([msg("anna", 1, heart_rate=True), msg("anna", 2)])
    assert [(w.resident, w.heart_rate) for w in ob.wearers()] == [("anna", True),
                                                                  ("bob", False)]
    ob.put([OutMessage("hub", "hub", "cfg", None, retain=True, priority=Priority.EVENT)],
           retire=["bob"])
    assert [w.resident for w in ob.wearers()] == ["anna"] and ob.wearer("bob") is None
    assert ob.peek(10)[-1].payload == b""  # a deletion: an empty payload, not even an id
    ob.close()


def test_shares_the_hub_database_and_refuses_another_schema(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    ob = Outbox(db)
    ob.put([msg("anna", 0)])
    ob.close()
    conn = open_database(db)  # the decisions tables are there too, untouched
    assert conn.execute("SELECT count(*) FROM decisions").fetchone() == (0,)
    conn.execute("UPDATE mqtt_meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.DatabaseError, match=f"schema version 99; this daemon writes "
                                                     f"{OUTBOX_SCHEMA_VERSION}"):
        Outbox(db).open()
    assert (db.stat().st_mode & 0o777) == 0o600


# -- every field, every edge (found by mutation testing: benchmarks/mutation.py) ---------------
def test_a_row_carries_every_field_and_the_exact_payload(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "edge.db")
    before = time.time()
    ob.put([OutMessage("anna", "dev-a", "t/anna/state", {"b": [1, 2], "a": "x y"},
                       retain=False, priority=Priority.EVENT),
            OutMessage("bob", "dev-b", "t/bob/state", {}, retain=True, priority=Priority.ALERT)])
    a, b = ob.peek(10)
    assert re.fullmatch(r"[0-9a-f]{8}", ob.epoch)
    assert (a.resident, a.topic, a.retain, a.priority, a.is_alert) == (
        "anna", "t/anna/state", False, int(Priority.EVENT), False)
    assert (b.resident, b.topic, b.retain, b.priority, b.is_alert) == (
        "bob", "t/bob/state", True, int(Priority.ALERT), True)
    assert b.seq == a.seq + 1
    # compact JSON, the stored key order, the id first; an empty object gets the id alone
    assert a.payload == f'{{"id":"{ob.epoch}-{a.seq}","b":[1,2],"a":"x y"}}'.encode()
    assert b.payload == f'{{"id":"{ob.epoch}-{b.seq}"}}'.encode()
    assert ob.rows == 2
    created = ob.conn.execute("SELECT created FROM mqtt_outbox ORDER BY seq").fetchall()
    assert all(before <= c <= time.time() for (c,) in created)
    ob.close()


def test_nothing_to_put_writes_nothing_and_a_retirement_alone_is_applied(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "edge.db")
    assert ob.put([]) == 0
    assert ob.put([msg("anna", 0)]) == 0
    assert ob.put([], retire=["anna"]) == 0
    assert ob.wearers() == [] and ob.count() == 1
    with pytest.raises(ValueError, match="JSON"):  # no NaN in a payload: brokers' JSON has none
        ob.put([OutMessage("anna", "d", "t", {"x": math.nan}, retain=False,
                           priority=Priority.STATE)])
    assert ob.count() == 1  # the failed put left nothing behind
    ob.close()


def test_a_wearer_keeps_its_first_sighting_and_the_latest_device(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "edge.db")
    ob.put([OutMessage("anna", "dev-1", "t", {}, retain=False, priority=Priority.STATE,
                       heart_rate=True),
            OutMessage("anna", "dev-1", "t", {}, retain=False, priority=Priority.STATE)])
    assert ob.wearer("anna") == Wearer("anna", "dev-1", True)  # heart rate within one put
    (first, last), = ob.conn.execute("SELECT first_seen, last_seen FROM mqtt_wearers")
    time.sleep(0.01)
    ob.put([OutMessage("anna", "dev-2", "t", {}, retain=False, priority=Priority.STATE)])
    assert ob.wearer("anna") == Wearer("anna", "dev-2", True)  # once offered, kept
    (first2, last2), = ob.conn.execute("SELECT first_seen, last_seen FROM mqtt_wearers")
    assert first2 == first and last2 > last
    assert ob.wearer("nobody") is None
    ob.close()


def test_acks_count_what_was_there_and_reports_never_go_below_zero(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "edge.db", backlog_max=2)
    ob.put([msg("anna", i) for i in range(2)])
    assert ob.dropped() == (0, 0)  # at the bound exactly: nothing dropped
    assert ob.put([msg("anna", 2)]) == 1 and ob.rows == 2
    rows = ob.peek(10)
    assert ob.ack([]) == 0
    assert ob.ack([rows[0].seq, rows[0].seq + 1000]) == 1  # an unknown seq is not counted
    assert ob.ack([rows[0].seq]) == 0
    ob.reported(5)
    assert ob.dropped() == (1, 0)
    ob.close()
    ob.close()  # closing twice is harmless
    assert ob.count() == 1  # and the outbox reopens on use


def test_open_is_idempotent_and_keeps_the_epoch(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "edge.db")
    ob.open()
    conn, epoch = ob.conn, ob.epoch
    ob.open()
    assert ob.conn is conn and ob.epoch == epoch
    ob.close()


def test_one_put_over_the_bound_by_states_and_events_counts_both(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "edge.db", backlog_max=2)
    assert ob.rows == 0  # nothing put yet
    assert ob.put([msg("anna", 0), msg("anna", 1, Priority.EVENT),
                   msg("anna", 2, Priority.ALERT), msg("anna", 3, Priority.ALERT)]) == 2
    assert ob.dropped() == (2, 2) and ob.rows == 2
    assert ob.wearers() == [Wearer("anna", "dev-anna", False)]
    conn = ob.conn
    ob.close()
    with pytest.raises(sqlite3.ProgrammingError):  # closed means closed
        conn.execute("SELECT 1")
    assert Outbox(tmp_path / "other.db").backlog_max == 50_000  # the documented default
