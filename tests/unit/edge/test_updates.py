"""edge.updates: a verified head or bundle update is swapped in, judged on confirmed labels
and rolled back to what served before when worse; a tampered or incompatible one is refused
in one line (an event, the update filed under refused/), and the running model stays."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.config import DaemonConfig
from edge.models import Model
from edge.personal.options import PersonalOptions
from edge.personal.service import shared_head
from edge.personal.store import EmbeddingRow, PersonalStore
from edge.updates import Updater
from export.bundle_writer import write_manifest
from export.head_update import write_head_update
from export.signing import sign_bundle
from tests.fakes.bundles import write_fake_bundle
from tests.fakes.inputs import small_contract
from tests.fakes.updates import (
    FakeDaemon,
    head_update,
    labelled_windows,
)

CLASSES = ("baseline", "stress", "amusement")


def test_swap_then_roll_back_a_worse_head_and_keep_a_better_one(
    tmp_path: Path, bundle_dir: Path, keys: Any
) -> None:
    cfg = DaemonConfig(
        trusted_keys=[str(keys[1])],
        trust_demo_key=False,
        personal=PersonalOptions(rollback_min_labels=10),
    )
    folder = tmp_path / "updates"
    folder.mkdir()
    with load_bundle(bundle_dir) as b:
        shared = shared_head(b)
        assert shared is not None
        daemon = FakeDaemon(cfg, b, tmp_path / "edge.db")
        try:
            centres = (4.0 * np.eye(3) - 2.0) @ np.linalg.pinv(shared.W)  # shared head: right
            labelled_windows(tmp_path / "edge.db", centres.astype(np.float32))
            updater = Updater(daemon, folder)
            # a worse head: its classes' columns rotated, so it names every window wrongly
            head_update(
                folder,
                bundle_dir,
                keys[0],
                "worse",
                W=np.roll(shared.W, 1, axis=1),
                version="round-1",
            )
            asyncio.run(updater.poll())
            assert daemon.kinds() == ["model_swapped"]
            assert daemon.personal.override["m"] is not None  # swapped in
            assert (folder / "applied" / "worse").is_dir()
            asyncio.run(updater.check_rollbacks())
            assert daemon.kinds() == ["model_swapped", "model_rolled_back"]
            rb = daemon.events[-1].detail
            assert rb["macro_f1_new"] < rb["macro_f1_previous"] and rb["labelled_windows"] == 30
            assert "m" not in daemon.personal.override  # back on the bundle's own head

            # the same head as the bundle's, re-signed as a round: no worse, so it stays
            head_update(folder, bundle_dir, keys[0], "same", version="round-2")
            asyncio.run(updater.poll())
            asyncio.run(updater.check_rollbacks())
            assert daemon.kinds()[-1] == "model_swapped"
            assert np.allclose(daemon.personal.override["m"].W, shared.W)
            assert (
                daemon.personal.on_window("anna", "m", 0, 5, centres[1].astype(np.float32)).argmax()
                == 1
            )
        finally:
            daemon.personal.close()


@pytest.mark.parametrize("bad", ["tampered", "incompatible"])
def test_refused_update_keeps_the_running_head(
    tmp_path: Path, bundle_dir: Path, keys: Any, bad: str
) -> None:
    cfg = DaemonConfig(trusted_keys=[str(keys[1])], trust_demo_key=False)
    folder = tmp_path / "updates"
    folder.mkdir()
    with load_bundle(bundle_dir) as b:
        daemon = FakeDaemon(cfg, b, tmp_path / "edge.db")
        try:
            if bad == "tampered":
                path = head_update(folder, bundle_dir, keys[0], "u")
                data = bytearray((path / "head.npz").read_bytes())
                data[-40] ^= 0x01
                (path / "head.npz").write_bytes(bytes(data))
            else:  # a head for a 6-wide embedding: not this model's
                write_fake_bundle(
                    tmp_path / "other", small_contract(), embedding_dim=6, model_id="m"
                )
                with load_bundle(tmp_path / "other") as o:
                    h = shared_head(o)
                    assert h is not None
                    write_head_update(
                        folder / "u", h.W, h.b, bundle=o, version="r", sign_key=keys[0]
                    )
            asyncio.run(Updater(daemon, folder).poll())
            (ev,) = daemon.events
            assert ev.kind == "update_refused" and ev.resident == "hub"
            assert ev.detail["reason"] == ("hash" if bad == "tampered" else "incompatible")
            assert "\n" not in ev.detail["message"]
            assert daemon.personal.override == {}  # the running head stays
            assert (folder / "refused" / "u").is_dir() and not (folder / "u").exists()
        finally:
            daemon.personal.close()


def test_partial_copies_are_left_alone(tmp_path: Path, bundle_dir: Path, keys: Any) -> None:
    folder = tmp_path / "updates"
    folder.mkdir()
    path = head_update(folder, bundle_dir, keys[0], "u")
    shutil.move(str(path), str(folder / "u.partial"))
    from edge.updates import pending

    assert pending(folder) == []


def test_a_worse_bundle_is_rolled_back_to_what_served_before(
    tmp_path: Path, bundle_dir: Path, keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle judged on the labelled windows it decided, against what served before on
    the labelled windows before it; rolled back to the old bundle *and* the head update that
    ran on it; the event on the decisions' clock, naming the update."""
    cfg = DaemonConfig(
        trusted_keys=[str(keys[1])],
        trust_demo_key=False,
        personal=PersonalOptions(rollback_min_labels=10),
    )
    folder = tmp_path / "updates"
    folder.mkdir()
    v1 = tmp_path / "v1"
    shutil.copytree(bundle_dir, v1)
    m = json.loads((v1 / "manifest.json").read_text())
    m["model_version"] = "1"
    write_manifest(v1, m)
    sign_bundle(v1, keys[0])

    def fake_open(path: str, cfg: DaemonConfig) -> Model:  # no engine for random model bytes
        from edge.signing import load_trusted_bundle

        return Model(load_trusted_bundle(path, cfg), engine=object(), engine_name="fake", path=path)  # type: ignore[arg-type]

    monkeypatch.setattr("edge.models.open_model", fake_open)
    with load_bundle(bundle_dir) as b:
        shared = shared_head(b)
        assert shared is not None
        daemon = FakeDaemon(cfg, b, tmp_path / "edge.db")
        try:
            centres = ((4.0 * np.eye(3) - 2.0) @ np.linalg.pinv(shared.W)).astype(np.float32)
            labelled_windows(tmp_path / "edge.db", centres)  # v0's windows, t < 300
            updater = Updater(daemon, folder)
            head_update(folder, bundle_dir, keys[0], "round-1", W=2.0 * shared.W)
            asyncio.run(updater.poll())
            round1 = daemon.personal.override["m"]
            shutil.move(str(v1), str(folder / "v1"))
            asyncio.run(updater.poll())
            model = daemon.models[0]
            assert model.model_version == "1" and "m" not in daemon.personal.override
            asyncio.run(updater.check_rollbacks())
            assert daemon.kinds() == ["model_swapped", "model_swapped"]  # no v1 labels yet: kept
            # v1's own windows after the swap, each labelled as the class it does not name
            with PersonalStore(tmp_path / "edge.db") as store:
                rows = []
                for i in range(12):
                    t0 = 500.0 + 10.0 * i
                    rows.append(EmbeddingRow("anna", "m", "1", t0, t0 + 5, centres[i % 3]))
                    store.add_label("anna", t0, t0 + 5, CLASSES[(i + 1) % 3], "manual")
                store.add_embeddings(rows)
            daemon.last_decision_t = 700.0
            asyncio.run(updater.check_rollbacks())
            assert daemon.kinds()[-1] == "model_rolled_back"
            ev = daemon.events[-1]
            assert ev.t == 700.0 and ev.detail["path"] == "v1" and ev.detail["reason"]
            assert (ev.detail["from_version"], ev.detail["to_version"]) == ("1", "0")
            assert ev.detail["macro_f1_new"] < ev.detail["macro_f1_previous"]
            assert ev.detail["labelled_windows"] == 12
            assert model.model_version == "0"  # the old bundle decides again ...
            assert daemon.personal.override["m"] is round1  # ... with its head update
            assert updater.counters == {"swapped": 2, "refused": 0, "rolled_back": 1}
            asyncio.run(updater.check_rollbacks())  # judged once
            assert daemon.kinds().count("model_rolled_back") == 1
        finally:
            daemon.personal.close()


@pytest.mark.parametrize("bad", ["tampered", "incompatible"])
def test_refused_bundle_update_keeps_the_running_model(
    tmp_path: Path, bundle_dir: Path, keys: Any, bad: str
) -> None:
    cfg = DaemonConfig(trusted_keys=[str(keys[1])], trust_demo_key=False)
    folder = tmp_path / "updates"
    folder.mkdir()
    shutil.copytree(bundle_dir, folder / "v1")
    m = json.loads((folder / "v1" / "manifest.json").read_text())
    m["model_version"] = "1"
    if bad == "incompatible":  # signed properly, but for other classes
        m["class_names"] = m["contract"]["class_names"] = ["calm", "stress", "amusement"]
    write_manifest(folder / "v1", m)
    if bad == "incompatible":
        sign_bundle(folder / "v1", keys[0])  # tampered: the manifest changed after signing
    with load_bundle(bundle_dir) as b:
        daemon = FakeDaemon(cfg, b, tmp_path / "edge.db")
        try:
            updater = Updater(daemon, folder)
            asyncio.run(updater.poll())
            (ev,) = daemon.events
            assert ev.kind == "update_refused" and ev.detail["path"] == "v1"
            assert ev.detail["reason"] == ("signature" if bad == "tampered" else "incompatible")
            assert "\n" not in ev.detail["message"]
            assert daemon.models[0].model_version == "0" and daemon.models[0].previous is None
            assert updater.counters == {"swapped": 0, "refused": 1, "rolled_back": 0}
            assert (folder / "refused" / "v1").is_dir() and not (folder / "applied" / "v1").exists()
        finally:
            daemon.personal.close()
