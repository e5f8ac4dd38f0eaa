"""edge.updates: a signed head update is verified, swapped in, judged on confirmed labels and
rolled back when worse; a tampered or incompatible one is refused in one line, and the
running head stays."""

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
from edge.decisions import Event
from edge.models import Model
from edge.personal.options import PersonalOptions
from edge.personal.service import PersonalService, shared_head
from edge.personal.store import EmbeddingRow, PersonalStore
from edge.updates import (
    UpdateError,
    Updater,
    check_bundle_compatible,
    check_head_compatible,
    load_head_update,
)
from export.bundle_writer import write_manifest
from export.head_update import write_head_update
from export.signing import sign_bundle
from tests.fakes.bundles import signing_keys, write_fake_bundle
from tests.fakes.inputs import small_contract

CLASSES = ("baseline", "stress", "amusement")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    (tmp_path / "keys").mkdir()
    return signing_keys(tmp_path / "keys")


@pytest.fixture
def bundle_dir(tmp_path: Path, keys: tuple[Path, Path, Path]) -> Path:
    write_fake_bundle(tmp_path / "bundle", small_contract(), embedding_dim=8, model_id="m")
    sign_bundle(tmp_path / "bundle", keys[0])
    return tmp_path / "bundle"


def _head_update(
    tmp: Path,
    bundle_dir: Path,
    key: Path | None,
    name: str = "u1",
    W: np.ndarray | None = None,
    **kw: Any,
) -> Path:
    with load_bundle(bundle_dir) as b:
        head = shared_head(b)
        assert head is not None
        return write_head_update(
            tmp / name,
            head.W if W is None else W,
            head.b,
            bundle=b,
            version=kw.pop("version", "round-1"),
            sign_key=key,
        )


def test_signed_head_update_verifies(tmp_path: Path, bundle_dir: Path, keys: Any) -> None:
    u = load_head_update(_head_update(tmp_path, bundle_dir, keys[0]), [keys[1]])
    assert (u.model_id, u.version, u.base_model_version) == ("m", "round-1", "0")
    assert u.W.shape == (8, 3) and u.signed_by is not None
    with load_bundle(bundle_dir) as b:
        check_head_compatible(u, b)


@pytest.mark.parametrize("tamper", ["head", "manifest", "unsigned", "other_key", "sig"])
def test_tampered_head_update_is_refused_in_one_line(
    tmp_path: Path, bundle_dir: Path, keys: Any, tamper: str
) -> None:
    path = _head_update(tmp_path, bundle_dir, None if tamper == "unsigned" else keys[0])
    trusted = [keys[2] if tamper == "other_key" else keys[1]]
    if tamper == "head":
        data = bytearray((path / "head.npz").read_bytes())
        data[-40] ^= 0x01
        (path / "head.npz").write_bytes(bytes(data))
    elif tamper == "manifest":
        m = json.loads((path / "update.json").read_text())
        m["version"] = "round-9"
        (path / "update.json").write_text(json.dumps(m))
    elif tamper == "sig":
        (path / "update.sig").write_text("{not json")
    with pytest.raises(UpdateError) as e:
        load_head_update(path, trusted)
    assert e.value.reason == ("hash" if tamper == "head" else "signature")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("change", ["classes", "dim", "version", "model_id"])
def test_incompatible_head_update_is_refused(tmp_path: Path, keys: Any, change: str) -> None:
    write_fake_bundle(tmp_path / "running", small_contract(), embedding_dim=8, model_id="m")
    other = small_contract()
    kw: dict[str, Any] = {"embedding_dim": 8, "model_id": "m"}
    if change == "dim":
        kw["embedding_dim"] = 6
    elif change == "model_id":
        kw["model_id"] = "n"
    m = write_fake_bundle(tmp_path / "trained_on", other, **kw)
    if change == "classes":
        m["class_names"] = ["calm", "stress", "amusement"]
        m["contract"]["class_names"] = m["class_names"]
    if change == "version":
        m["model_version"] = "1"
    write_manifest(tmp_path / "trained_on", m)
    with load_bundle(tmp_path / "trained_on") as b:
        head = shared_head(b)
        assert head is not None
        path = write_head_update(
            tmp_path / "u", head.W, head.b, bundle=b, version="r", sign_key=keys[0]
        )
    u = load_head_update(path, [keys[1]])
    with load_bundle(tmp_path / "running") as running, pytest.raises(UpdateError) as e:
        check_head_compatible(u, running)
    says = {
        "classes": "contract differs",
        "dim": "embedding size 6",
        "version": "model version 1",
        "model_id": "for model 'n'",
    }[change]
    assert e.value.reason == "incompatible" and says in str(e.value)


def test_bundle_update_compatibility(tmp_path: Path) -> None:
    write_fake_bundle(tmp_path / "a", small_contract(), embedding_dim=8, model_id="m")
    write_fake_bundle(tmp_path / "b", small_contract(), embedding_dim=6, model_id="m")
    write_fake_bundle(tmp_path / "c", small_contract(), embedding_dim=8, model_id="x")
    with (
        load_bundle(tmp_path / "a") as a,
        load_bundle(tmp_path / "b") as b,
        load_bundle(tmp_path / "c") as c,
    ):
        check_bundle_compatible(a, a)
        with pytest.raises(UpdateError, match="embedding size 6"):
            check_bundle_compatible(b, a)
        with pytest.raises(UpdateError, match="for model 'x'"):
            check_bundle_compatible(c, a)


class _Daemon:
    """What the Updater needs of a daemon: its configuration, models, service, emitter."""

    def __init__(self, cfg: DaemonConfig, bundle: Any, db: Path) -> None:
        self.cfg = cfg
        self.models = [Model(bundle, engine=object(), engine_name="fake", path="")]  # type: ignore[arg-type]
        self.personal = PersonalService(cfg.personal, db, [bundle])
        self.events: list[Event] = []
        self.last_decision_t = 400.0  # the decisions' clock: just after the labelled windows

    def _emit(self, e: Event) -> None:
        self.events.append(e)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def _labelled_windows(db: Path, centres: np.ndarray, n: int = 30) -> None:
    with PersonalStore(db) as store:
        rows = []
        for i in range(n):
            k = i % 3
            rows.append(EmbeddingRow("anna", "m", "0", 10.0 * i, 10.0 * i + 5, centres[k]))
            store.add_label("anna", 10.0 * i, 10.0 * i + 5, CLASSES[k], "manual")
        store.add_embeddings(rows)


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
        daemon = _Daemon(cfg, b, tmp_path / "edge.db")
        try:
            centres = (4.0 * np.eye(3) - 2.0) @ np.linalg.pinv(shared.W)  # shared head: right
            _labelled_windows(tmp_path / "edge.db", centres.astype(np.float32))
            updater = Updater(daemon, folder)
            # a worse head: its classes' columns rotated, so it names every window wrongly
            _head_update(
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
            _head_update(folder, bundle_dir, keys[0], "same", version="round-2")
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
        daemon = _Daemon(cfg, b, tmp_path / "edge.db")
        try:
            if bad == "tampered":
                path = _head_update(folder, bundle_dir, keys[0], "u")
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
    path = _head_update(folder, bundle_dir, keys[0], "u")
    shutil.move(str(path), str(folder / "u.partial"))
    from edge.updates import pending

    assert pending(folder) == []
