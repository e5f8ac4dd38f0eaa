"""edge.fleet.delivery: the coordinator's head update, carried in a message, lands whole in a
hub's update folder under a fresh name, or not at all; a bad message is one line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord

from edge.bundle import load_bundle
from edge.fleet import delivery
from edge.fleet.delivery import DeliveryError, hub_update_folder, update_record, write_delivered
from edge.signing import DEMO_PUBLIC_KEY
from edge.update_check import load_head_update
from export.head_update import write_head_update
from export.signing import DEMO_PRIVATE_KEY
from tests.fakes.daemon import REPO

DEMO_BUNDLE = REPO / "edge" / "demo_bundle"


def signed_update(tmp: Path) -> Path:
    bundle = load_bundle(DEMO_BUNDLE)
    D, K = bundle.embedding_dim, len(bundle.class_names)
    assert D is not None
    W = np.random.default_rng(0).normal(0, 1, (D, K))
    return write_head_update(
        tmp / "head-update", W, np.zeros(K), bundle=bundle, version="fleet-1",
        sign_key=DEMO_PRIVATE_KEY,
    )  # fmt: skip


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".fleet-update-")]


def test_the_update_lands_whole_and_verifies_as_sent(tmp_path: Path) -> None:
    sent = signed_update(tmp_path)
    updates = tmp_path / "hub" / "updates"  # not there yet: the daemon may not have made it
    first = write_delivered(update_record(sent), updates)
    second = write_delivered(update_record(sent), updates)
    assert first != second and {first, second} == set(updates.iterdir())  # nothing replaced
    assert first.name.startswith("fleet-") and first.parent == updates
    for f in sent.iterdir():
        assert (first / f.name).read_bytes() == f.read_bytes()
    update = load_head_update(first, [str(DEMO_PUBLIC_KEY)])  # the daemon's own check passes
    assert update.version == "fleet-1" and update.signed_by is not None
    assert leftovers(updates.parent) == []


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("../../etc", {}),
        ("a/b", {}),
        (".hidden", {}),
        ("fleet.partial", {}),
        ("ok", {"../update.json": b"{}"}),
        ("ok", {"sub/x": b""}),
        ("ok", {"..": b""}),
    ],
)
def test_a_path_traversal_name_is_refused_and_nothing_is_written(
    tmp_path: Path, name: str, files: dict[str, bytes]
) -> None:
    record = ConfigRecord({"name": name, "update.json": b"{}", **files})
    updates = tmp_path / "hub" / "updates"
    with pytest.raises(DeliveryError, match="refused") as e:
        write_delivered(record, updates)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "hub").exists() or list((tmp_path / "hub").rglob("*")) == []
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize(
    ("record", "says"),
    [
        (ConfigRecord({"update.json": b"{}"}), "no update name"),
        (ConfigRecord({"name": 3, "update.json": b"{}"}), "not text"),
        (ConfigRecord({"name": "u", "update.json": "text"}), "is not bytes"),
        (ConfigRecord({"name": "u", "head.npz": b"x"}), "no update.json"),
        (
            ConfigRecord({"name": "u", "update.json": b"{}", **{f"f{i}": b"" for i in range(9)}}),
            "is not a head update",
        ),
        (None, "no update name"),
    ],
)
def test_a_bad_message_is_one_line(tmp_path: Path, record: object, says: str) -> None:
    with pytest.raises(DeliveryError, match=says) as e:
        write_delivered(record, tmp_path / "updates")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "updates").exists()


def test_a_failed_write_leaves_nothing_behind_and_names_no_hub_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = signed_update(tmp_path)
    updates = tmp_path / "hub-kitchen" / "updates"

    def full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", full)
    with pytest.raises(DeliveryError, match="No space left") as e:
        write_delivered(update_record(sent), updates)
    assert "hub-kitchen" not in str(e.value)  # the line goes back to the coordinator
    assert list(updates.iterdir()) == [] and leftovers(updates.parent) == []


def test_the_update_folder_comes_from_the_node_config(tmp_path: Path) -> None:
    assert hub_update_folder({"state-dir": str(tmp_path)}) == tmp_path / "updates"
    assert hub_update_folder({"state-dir": str(tmp_path), "updates": "/srv/u"}) == Path("/srv/u")
    assert delivery.MESSAGE_TYPE == "query." + delivery.ACTION
