"""edge.update_restore: after a restart the daemon serves again the head and bundle updates that
served when it stopped, verified anew; a file changed while the hub was off, a rolled-back
update or a damaged state is refused in one line and the configured bundle serves."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.config import DaemonConfig
from edge.models import Model
from edge.personal.head import Head
from edge.personal.options import PersonalOptions
from edge.personal.service import shared_head
from edge.personal.store import EmbeddingRow, PersonalStore
from edge.update_restore import restore
from edge.update_state import STATE_NAME, read_state
from edge.updates import Updater
from export.bundle_writer import write_manifest
from export.signing import sign_bundle
from tests.fakes.updates import (
    FakeDaemon,
    head_update,
    labelled_windows,
)


@pytest.fixture
def cfg(keys: tuple[Path, Path, Path]) -> DaemonConfig:
    return DaemonConfig(
        trusted_keys=[str(keys[1])],
        trust_demo_key=False,
        personal=PersonalOptions(rollback_min_labels=10),
    )


@pytest.fixture
def fake_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bundles opened without an engine (a fake bundle's model files are random bytes);
    the bundle itself is verified as for real."""

    def fake_open(path: str, cfg: DaemonConfig) -> Model:
        from edge.signing import load_trusted_bundle

        return Model(load_trusted_bundle(path, cfg), engine=object(), engine_name="fake", path=path)  # type: ignore[arg-type]

    monkeypatch.setattr("edge.models.open_model", fake_open)


@contextmanager
def hub(cfg: DaemonConfig, bundle_dir: Path, db: Path) -> Iterator[FakeDaemon]:
    """A daemon started on the configured ``bundle_dir``."""
    with load_bundle(bundle_dir) as b:
        daemon = FakeDaemon(cfg, b, db, str(bundle_dir))
        try:
            yield daemon
        finally:
            daemon.personal.close()


def restart(daemon: FakeDaemon, folder: Path) -> Updater:
    """What the runtime does at start: restore, then (the sinks running) emit its events."""
    updater = Updater(daemon, folder)
    restore(updater)
    assert daemon.events == []  # held until the sinks run
    updater.release()
    return updater


def _restore_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name in ("edge.update_restore", "edge.updates") and r.levelno >= logging.INFO
    ]


def test_an_applied_head_serves_again_after_a_restart(
    tmp_path: Path, bundle_dir: Path, keys: Any, cfg: DaemonConfig, caplog: pytest.LogCaptureFixture
) -> None:
    folder, db = tmp_path / "updates", tmp_path / "edge.db"
    folder.mkdir()
    with hub(cfg, bundle_dir, db) as daemon:
        shared = shared_head(daemon.models[0].bundle)
        assert shared is not None
        head_update(folder, bundle_dir, keys[0], "round-1", W=2.0 * shared.W)
        asyncio.run(Updater(daemon, folder).poll())
        assert daemon.kinds() == ["model_swapped"]
    with hub(cfg, bundle_dir, db) as daemon:
        assert daemon.personal.override == {}  # started from the configured bundle ...
        caplog.clear()
        with caplog.at_level(logging.INFO):
            restart(daemon, folder)
        # ... and the head update serves again, in one line and one event
        assert np.allclose(daemon.personal.override["m"].W, 2.0 * shared.W)
        assert _restore_lines(caplog) == [
            "model updates restored at start: m: the configured bundle 0, head round-1 "
            "(applied/round-1)"
        ]
        (ev,) = daemon.events
        assert ev.kind == "model_restored" and ev.resident == "hub"
        assert ev.detail == {
            "model_id": "m",
            "bundle": "configured",
            "bundle_version": "0",
            "head": "applied/round-1",
            "head_version": "round-1",
        }
    with hub(cfg, bundle_dir, db) as daemon:  # and again at the next start
        restart(daemon, folder)
        assert np.allclose(daemon.personal.override["m"].W, 2.0 * shared.W)


def test_a_head_tampered_with_while_off_is_refused_and_the_bundles_head_serves(
    tmp_path: Path, bundle_dir: Path, keys: Any, cfg: DaemonConfig, caplog: pytest.LogCaptureFixture
) -> None:
    folder, db = tmp_path / "updates", tmp_path / "edge.db"
    folder.mkdir()
    with hub(cfg, bundle_dir, db) as daemon:
        shared = shared_head(daemon.models[0].bundle)
        assert shared is not None
        head_update(folder, bundle_dir, keys[0], "round-1", W=2.0 * shared.W)
        asyncio.run(Updater(daemon, folder).poll())
    npz = folder / "applied" / "round-1" / "head.npz"
    data = bytearray(npz.read_bytes())
    data[-40] ^= 0x01
    npz.write_bytes(bytes(data))
    with hub(cfg, bundle_dir, db) as daemon:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            updater = restart(daemon, folder)
        assert daemon.personal.override == {}  # the bundle's own head
        assert daemon.kinds() == ["update_refused", "model_restored"]
        refused, restored = daemon.events
        assert refused.detail["reason"] == "hash" and "\n" not in refused.detail["message"]
        assert restored.detail["refused"] == refused.detail["message"]
        assert "head" not in restored.detail and restored.detail["bundle"] == "configured"
        lines = _restore_lines(caplog)
        assert len(lines) == 2 and lines[0].startswith("update refused: ")
        assert lines[1].startswith(
            "model updates restored at start: m: the configured bundle 0, its own head (refused: "
        )
        assert (folder / "refused" / "round-1").is_dir()
        assert not (folder / "applied" / "round-1").exists()
        assert updater.counters["refused"] == 1
        assert "m" not in read_state(folder / STATE_NAME).models  # nothing left to restore
    with hub(cfg, bundle_dir, db) as daemon:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            restart(daemon, folder)
        assert daemon.events == [] and daemon.personal.override == {}
        assert _restore_lines(caplog) == [
            "model updates at start: none to restore; the configured bundles serve"
        ]


def _good_then_worse_head(
    daemon: FakeDaemon, folder: Path, bundle_dir: Path, keys: Any, db: Path
) -> tuple[Head, np.ndarray, Updater]:
    """Confirmed labels the shared head gets right; head update round-1 (twice the shared
    weights: as good) swapped in and kept; round-2 (classes rotated: worse) swapped in,
    not judged yet. (The shared head, round-2's W, the updater.)"""
    shared = shared_head(daemon.models[0].bundle)
    assert shared is not None
    centres = ((4.0 * np.eye(3) - 2.0) @ np.linalg.pinv(shared.W)).astype(np.float32)
    labelled_windows(db, centres)
    updater = Updater(daemon, folder)
    head_update(folder, bundle_dir, keys[0], "good", W=2.0 * shared.W, version="round-1")
    asyncio.run(updater.poll())
    asyncio.run(updater.check_rollbacks())  # as good as the bundle's: kept
    rotated = np.roll(shared.W, 1, axis=1)
    head_update(folder, bundle_dir, keys[0], "worse", W=rotated, version="round-2")
    asyncio.run(updater.poll())
    return shared, rotated, updater


def test_a_rolled_back_head_stays_rolled_back_after_a_restart(
    tmp_path: Path, bundle_dir: Path, keys: Any, cfg: DaemonConfig
) -> None:
    folder, db = tmp_path / "updates", tmp_path / "edge.db"
    folder.mkdir()
    with hub(cfg, bundle_dir, db) as daemon:
        shared, _, updater = _good_then_worse_head(daemon, folder, bundle_dir, keys, db)
        asyncio.run(updater.check_rollbacks())
        assert daemon.kinds() == ["model_swapped", "model_swapped", "model_rolled_back"]
        assert np.allclose(daemon.personal.override["m"].W, 2.0 * shared.W)
    state = read_state(folder / STATE_NAME)
    assert state.models["m"].head == "applied/good"
    assert [(r["update"], r["version"], r["path"]) for r in state.rolled_back] == [
        ("head", "round-2", "worse")
    ]
    with hub(cfg, bundle_dir, db) as daemon:
        restart(daemon, folder)
        assert np.allclose(daemon.personal.override["m"].W, 2.0 * shared.W)  # not round 2
        assert daemon.events[-1].detail["head_version"] == "round-1"

    # a state that names the rolled-back head anyway (a copy from before, restored by hand)
    doc = json.loads((folder / STATE_NAME).read_text())
    doc["models"]["m"].update(head="applied/worse", head_version="round-2")
    (folder / STATE_NAME).write_text(json.dumps(doc))
    with hub(cfg, bundle_dir, db) as daemon:
        restart(daemon, folder)
        assert daemon.personal.override == {}
        assert daemon.kinds() == ["update_refused", "model_restored"]
        assert daemon.events[0].detail["reason"] == "rolled_back"
        assert "rolled back before" in daemon.events[0].detail["message"]


def _version(src: Path, dest: Path, version: str, key: Path) -> Path:
    shutil.copytree(src, dest)
    m = json.loads((dest / "manifest.json").read_text())
    m["model_version"] = version
    write_manifest(dest, m)
    sign_bundle(dest, key)
    return dest


@pytest.mark.usefixtures("fake_engines")
@pytest.mark.parametrize("tamper", ["none", "manifest", "model file", "gone"])
def test_an_applied_bundle_serves_again_unless_it_changed(
    tmp_path: Path, bundle_dir: Path, keys: Any, cfg: DaemonConfig, tamper: str
) -> None:
    folder, db = tmp_path / "updates", tmp_path / "edge.db"
    folder.mkdir()
    with hub(cfg, bundle_dir, db) as daemon:
        _version(bundle_dir, folder / "v1", "1", keys[0])
        asyncio.run(Updater(daemon, folder).poll())
        assert daemon.models[0].model_version == "1"
    applied = folder / "applied" / "v1"
    if tamper == "manifest":
        m = json.loads((applied / "manifest.json").read_text())
        m["model_version"] = "2"
        write_manifest(applied, m)
    elif tamper == "model file":
        for path in applied.glob("model*"):
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0x01
            path.write_bytes(bytes(data))
    elif tamper == "gone":
        shutil.rmtree(applied)
    with hub(cfg, bundle_dir, db) as daemon:
        updater = restart(daemon, folder)
        model = daemon.models[0]
        restored = daemon.events[-1]
        assert restored.kind == "model_restored"
        if tamper == "none":
            assert model.model_version == "1" and model.path == str(applied)
            # not judged before the stop: judged from now, against the configured bundle
            assert model.previous is not None and model.previous.model_version == "0"
            swap = updater.swaps["m"]
            assert (swap.kind, swap.from_version, swap.to_version, swap.judged) == (
                "bundle",
                "0",
                "1",
                False,
            )
            assert daemon.personal.version["m"] == "1"  # personal heads of the new body
            assert restored.detail["bundle"] == "applied/v1" and "refused" not in restored.detail
            assert daemon.kinds() == ["model_restored"]
            return
        assert model.model_version == "0" and model.path == str(bundle_dir)  # configured
        assert daemon.personal.version["m"] == "0"
        assert daemon.kinds() == ["update_refused", "model_restored"]
        assert restored.detail["bundle"] == "configured" and restored.detail["refused"]
        assert "\n" not in restored.detail["refused"]
        if tamper != "gone":
            assert (folder / "refused" / "v1").is_dir()


def test_a_damaged_state_falls_back_to_the_configured_bundle(
    tmp_path: Path, bundle_dir: Path, cfg: DaemonConfig, caplog: pytest.LogCaptureFixture
) -> None:
    folder, db = tmp_path / "updates", tmp_path / "edge.db"
    folder.mkdir()
    (folder / STATE_NAME).write_text('{"schema_version": 1, "models": {"m": {"bundle": ')
    with hub(cfg, bundle_dir, db) as daemon:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            restart(daemon, folder)
        assert daemon.personal.override == {} and daemon.models[0].model_version == "0"
        (line,) = _restore_lines(caplog)
        assert line.startswith("model updates not restored: ")
        assert "the model update state is damaged" in line
        assert line.endswith("; the configured bundles serve")
        (ev,) = daemon.events
        assert ev.kind == "model_restored" and ev.detail["bundle"] == "configured"
        assert "damaged" in ev.detail["refused"]


def test_a_head_swapped_just_before_a_stop_is_still_judged_after_it(
    tmp_path: Path, bundle_dir: Path, keys: Any, cfg: DaemonConfig
) -> None:
    folder, db = tmp_path / "updates", tmp_path / "edge.db"
    folder.mkdir()
    with hub(cfg, bundle_dir, db) as daemon:
        # ... and the hub stops before the worse head's check
        shared, rotated, _ = _good_then_worse_head(daemon, folder, bundle_dir, keys, db)
    unjudged = read_state(folder / STATE_NAME).unjudged["m"]
    assert (unjudged.update, unjudged.from_version, unjudged.previous.head) == (
        "head",
        "round-1",
        "applied/good",
    )
    with hub(cfg, bundle_dir, db) as daemon:
        updater = restart(daemon, folder)
        assert np.allclose(daemon.personal.override["m"].W, rotated)  # it served: it serves
        asyncio.run(updater.check_rollbacks())  # ... until judged, as it would have been
        assert daemon.kinds() == ["model_restored", "model_rolled_back"]
        rb = daemon.events[-1].detail
        assert (rb["from_version"], rb["to_version"]) == ("round-2", "round-1")
        assert np.allclose(daemon.personal.override["m"].W, 2.0 * shared.W)
    state = read_state(folder / STATE_NAME)
    assert state.unjudged == {} and state.models["m"].head == "applied/good"
    with hub(cfg, bundle_dir, db) as daemon:
        updater = restart(daemon, folder)
        assert np.allclose(daemon.personal.override["m"].W, 2.0 * shared.W)
        assert updater.swaps == {}  # judged: nothing to judge again


def test_a_bundle_put_in_place_while_off_serves_without_the_updates_before_it(
    tmp_path: Path, bundle_dir: Path, keys: Any, cfg: DaemonConfig, caplog: pytest.LogCaptureFixture
) -> None:
    folder, db = tmp_path / "updates", tmp_path / "edge.db"
    folder.mkdir()
    with hub(cfg, bundle_dir, db) as daemon:
        shared = shared_head(daemon.models[0].bundle)
        assert shared is not None
        head_update(folder, bundle_dir, keys[0], "round-1", W=2.0 * shared.W)
        asyncio.run(Updater(daemon, folder).poll())
    # a technician installs version 5 where the configuration points while the hub is off
    m = json.loads((bundle_dir / "manifest.json").read_text())
    m["model_version"] = "5"
    write_manifest(bundle_dir, m)
    sign_bundle(bundle_dir, keys[0])
    with hub(cfg, bundle_dir, db) as daemon:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            restart(daemon, folder)
        assert daemon.personal.override == {} and daemon.models[0].model_version == "5"
        (ev,) = daemon.events
        assert ev.kind == "model_restored" and ev.detail["bundle_version"] == "5"
        assert ev.detail["reason"] == "the configured bundle was replaced while the hub was off"
        assert _restore_lines(caplog) == [
            "model updates restored at start: m: the configured bundle 5 (the configured "
            "bundle was replaced while the hub was off)"
        ]
        assert (folder / "applied" / "round-1").is_dir()  # left, not refused
    assert "m" not in read_state(folder / STATE_NAME).models


@pytest.mark.usefixtures("fake_engines")
def test_a_bundle_replaced_by_hand_and_rolled_back_is_said_at_every_start(
    tmp_path: Path, bundle_dir: Path, keys: Any, cfg: DaemonConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The version before it was overwritten in place: nothing else to serve, so a warning
    says what to do, at every start until it is done."""
    cfg = replace(cfg, bundle=str(bundle_dir))  # where SIGHUP looks
    folder, db = tmp_path / "updates", tmp_path / "edge.db"
    folder.mkdir()
    with hub(cfg, bundle_dir, db) as daemon:
        shared = shared_head(daemon.models[0].bundle)
        assert shared is not None
        centres = ((4.0 * np.eye(3) - 2.0) @ np.linalg.pinv(shared.W)).astype(np.float32)
        labelled_windows(db, centres)
        updater = Updater(daemon, folder)
        m = json.loads((bundle_dir / "manifest.json").read_text())
        m["model_version"] = "1"
        write_manifest(bundle_dir, m)
        sign_bundle(bundle_dir, keys[0])
        asyncio.run(updater.reload_bundles())  # SIGHUP
        assert daemon.models[0].model_version == "1"
        with PersonalStore(db) as store:  # v1's windows, each labelled as what it does not say
            rows = []
            for i in range(12):
                t0 = 500.0 + 10.0 * i
                rows.append(EmbeddingRow("anna", "m", "1", t0, t0 + 5, centres[i % 3]))
                store.add_label(
                    "anna", t0, t0 + 5, ("stress", "amusement", "baseline")[i % 3], "manual"
                )
            store.add_embeddings(rows)
        daemon.last_decision_t = 700.0
        asyncio.run(updater.check_rollbacks())
        assert daemon.kinds()[-1] == "model_rolled_back"
        assert daemon.models[0].model_version == "0"  # in memory only: on disk it is gone
    for _start in range(2):
        with hub(cfg, bundle_dir, db) as daemon:
            caplog.clear()
            with caplog.at_level(logging.INFO):
                restart(daemon, folder)
            assert daemon.models[0].model_version == "1"
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1
            assert "was rolled back before the restart" in warnings[0]
            assert "put the previous version back there and send SIGHUP" in warnings[0]


def test_a_swap_writes_its_state_off_the_event_loop(
    tmp_path: Path, bundle_dir: Path, keys: Any, cfg: DaemonConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """active.json is fsynced: on a hub's SD card that may take long, so never on the loop."""
    import threading

    import edge.updates

    writers: list[str] = []
    real = edge.updates.write_state

    def spy(path: Path, state: Any) -> None:
        writers.append(threading.current_thread().name)
        real(path, state)

    monkeypatch.setattr(edge.updates, "write_state", spy)
    folder, db = tmp_path / "updates", tmp_path / "edge.db"
    folder.mkdir()
    with hub(cfg, bundle_dir, db) as daemon:
        shared = shared_head(daemon.models[0].bundle)
        assert shared is not None
        head_update(folder, bundle_dir, keys[0], "round-1", W=2.0 * shared.W)
        asyncio.run(Updater(daemon, folder).poll())
    assert len(writers) == 1 and writers[0] != threading.main_thread().name
    assert read_state(folder / STATE_NAME).models["m"].head == "applied/round-1"
