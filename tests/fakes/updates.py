"""Model updates for the update tests: signing keys, a signed fake bundle, a head update for it,
a daemon as the Updater sees it, labelled windows; a hub daemon run end to end."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import load_bundle
from edge.config import DaemonConfig
from edge.decisions import Event
from edge.models import Model
from edge.personal.service import PersonalService, shared_head
from edge.personal.store import EmbeddingRow, PersonalStore
from export.head_update import write_head_update
from export.signing import sign_bundle
from tests.fakes.bundles import signing_keys, write_fake_bundle
from tests.fakes.daemon import db_rows
from tests.fakes.inputs import small_contract

__all__ = [
    "CLASSES",
    "FakeDaemon",
    "cached_embeddings",
    "decision_count",
    "head_update",
    "hub_events",
    "labelled_windows",
    "new_version",
    "signed_bundle",
    "start_hub",
    "update_keys",
]

CLASSES = ("baseline", "stress", "amusement")  # the fake bundle's


def update_keys(tmp: Path) -> tuple[Path, Path, Path]:
    """(signer's private key, its public key, another public key) under ``tmp/keys``."""
    (tmp / "keys").mkdir()
    return signing_keys(tmp / "keys")


def signed_bundle(root: Path, key: Path) -> Path:
    """A fake bundle of model ``m``, version ``0``, 8-wide embedding, signed with ``key``."""
    write_fake_bundle(root, small_contract(), embedding_dim=8, model_id="m")
    sign_bundle(root, key)
    return root


def head_update(
    folder: Path,
    bundle_dir: Path,
    key: Path | None,
    name: str = "u1",
    W: np.ndarray | None = None,
    version: str = "round-1",
) -> Path:
    """``folder/name``: a head update for ``bundle_dir``'s body (its own head, or ``W``)."""
    with load_bundle(bundle_dir) as b:
        head = shared_head(b)
        assert head is not None
        return write_head_update(
            folder / name,
            head.W if W is None else W,
            head.b,
            bundle=b,
            version=version,
            sign_key=key,
        )


class FakeDaemon:
    """What the Updater needs of a daemon: its configuration, models, service, emitter.
    ``path``: where the bundle was loaded from (the configured bundle)."""

    def __init__(self, cfg: DaemonConfig, bundle: Any, db: Path, path: str = "") -> None:
        self.cfg = cfg
        self.models = [Model(bundle, engine=object(), engine_name="fake", path=path)]  # type: ignore[arg-type]
        self.personal = PersonalService(cfg.personal, db, [bundle])
        self.events: list[Event] = []
        self.last_decision_t = 400.0  # the decisions' clock: just after the labelled windows

    def _emit(self, e: Event) -> None:
        self.events.append(e)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def labelled_windows(db: Path, centres: np.ndarray, n: int = 30) -> None:
    """``n`` windows of wearer anna decided by model ``m`` version ``0`` (t < 10 n), each
    with the embedding ``centres[k]`` of its class ``k`` and a carer's label saying it."""
    with PersonalStore(db) as store:
        rows = []
        for i in range(n):
            k = i % 3
            rows.append(EmbeddingRow("anna", "m", "0", 10.0 * i, 10.0 * i + 5, centres[k]))
            store.add_label("anna", 10.0 * i, 10.0 * i + 5, CLASSES[k], "manual")
        store.add_embeddings(rows)


# -- end to end: a hub daemon as a subprocess ---------------------------------------------------
def new_version(src: Path, dest: Path, version: str, key: Path | None = None) -> Path:
    """A copy of bundle ``src`` as model version ``version``, signed (``key``, else the demo key)."""
    from export.bundle_writer import write_manifest
    from export.signing import DEMO_PRIVATE_KEY

    shutil.copytree(src, dest)
    m = json.loads((dest / "manifest.json").read_text())
    m["model_version"] = version
    write_manifest(dest, m)
    sign_bundle(dest, key or DEMO_PRIVATE_KEY)
    return dest


def hub_events(db: Path, kind: str) -> list[dict[str, Any]]:
    """The events of ``kind`` in a hub database so far (none while it is being created)."""
    if not db.exists():
        return []
    try:
        return [r for r in db_rows(db, "events") if r["kind"] == kind]
    except sqlite3.Error:  # the table may not exist yet while the daemon starts
        return []


def decision_count(db: Path) -> int:
    try:
        return len(db_rows(db)) if db.exists() else 0
    except sqlite3.Error:  # not created yet
        return 0


def cached_embeddings(
    db: Path, version: str | None = None
) -> list[tuple[str, float, str, np.ndarray]]:
    """(resident, t_end, model_version, embedding) of every decided window cached so far, in
    the order they were written."""
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT resident, t_end, model_version, emb FROM embeddings ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return []
    return [
        (r, float(t), v, np.frombuffer(e, np.float32))
        for r, t, v, e in rows
        if version is None or v == version
    ]


def start_hub(
    config: Path, running: Path, db: Path, state: Path, tmp_path: Path, wearers: int = 3
) -> subprocess.Popen[str]:
    """`edge-daemon` on ``running`` with ``wearers`` simulated wearers at 50x, its summary
    kept in ``tmp_path/summary.json``."""
    from tests.fakes.daemon import start_cli

    return start_cli(
        [
            "--config",
            str(config),
            "--device",
            "sim",
            "--bundle",
            str(running),
            "--sim-devices",
            str(wearers),
            "--speed",
            "50",
            "--db",
            str(db),
            "--state-dir",
            str(state),
            "--status",
            "off",
            "--summary-json",
            str(tmp_path / "summary.json"),
        ]
    )
