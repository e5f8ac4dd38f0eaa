"""Model updates without restart: take a verified head or bundle in between windows, keep the old, roll back a worse one.

An update is put into the hub's update folder (``personal.update_dir``, default
``STATE_DIR/updates``), whole (write it aside and rename it in): a signed head update
directory or a signed bundle (directory or ``.tar``), in the formats of
:mod:`edge.update_check`, which verifies the signature, every hash and that it fits the
running model. A refused update is said in one line (log, and an ``update_refused`` event)
and moved to ``updates/refused/``; the daemon keeps deciding with what it has.

A good update is swapped in on the event loop, between two windows: a head replaces the
model's shared head; a bundle's engine is opened and warmed up on a thread first, then
replaces the model's engine (windows already queued for the old engine are still answered).
The version replaced is kept in memory, ready to serve again, and on disk where it was (the
configured bundle, ``updates/applied/``), unless a bundle was overwritten in place by hand;
every swap is a ``model_swapped`` event. A bundle placed by hand where the configuration
points (``--bundle``) is taken up on SIGHUP, under the same checks.

**Rollback.** A carer's confirmed labels are the ground truth a hub has, so a new version is
judged on them, and only on labels of the recent past (a fortnight: :data:`RECENT_S`), at
the daemon's checks (every ``personal.refit_interval_s``). A head is judged at the first
check after its swap if enough labels exist, otherwise as soon as they do: the new head
and the one it replaced on the very same labelled embeddings (the body is the same, so
labels from before the swap are as good as new ones). A bundle has a new body, whose
embeddings exist only for windows it decided, so it is judged once
``personal.rollback_min_labels`` of its own windows after the swap carry a confirmed label,
against what served before on the labelled windows before the swap. When the new version's
macro-F1 is below the previous one's by more than ``personal.rollback_margin``, the
previous version serves again from the next window (a bundle with the head update that ran
on it), with a ``model_rolled_back`` event giving the reason and both scores; a kept
version is said in the log. Each swap is judged once; a check that cannot read the database
is tried again at the next. Events of updates are stamped on the decisions' clock
(:meth:`Updater._now`), so a history shows them between the decisions they separate.

**Across a restart.** What serves after every swap and rollback, and each update rolled
back, and a swap not judged yet, is written to ``updates/active.json``
(:mod:`edge.update_state`); at start the daemon serves it again, verified anew, judges what
was not judged yet (:mod:`edge.update_restore`), and never serves a rolled-back update.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import shutil
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from core.errors import WearableEdgeError
from edge.carers import hub_event
from edge.decisions import Event
from edge.update_check import (
    UPDATE_NAME,
    UPDATE_SCHEMA,
    UPDATE_SIGNATURE_NAME,
    HeadUpdate,
    UpdateError,
    check_bundle_compatible,
    check_head_compatible,
    load_head_update,
)
from edge.update_state import STATE_NAME, Served, Unjudged, UpdateState, write_state

__all__ = [
    "RECENT_S",
    "UPDATE_NAME",
    "UPDATE_SCHEMA",
    "UPDATE_SIGNATURE_NAME",
    "HeadUpdate",
    "UpdateError",
    "Updater",
    "check_bundle_compatible",
    "check_head_compatible",
    "load_head_update",
]

log = logging.getLogger(__name__)

APPLIED: Final = "applied"
REFUSED: Final = "refused"
# "recent" confirmed labels, for judging an update: a fortnight of a resident's life, not
# labels from before a season changed how they live
RECENT_S: Final = 14 * 86400.0
# an update still being copied in: named so, or written aside and renamed in
_PARTIAL: Final = (".partial", ".tmp", ".part")


@dataclass
class Swap:
    """The last swap of one model, until it is judged (kept or rolled back)."""

    kind: str  # "head" | "bundle"
    model_id: str
    from_version: str
    to_version: str
    at: float  # the decisions' clock at the swap (Updater._now)
    path: str = ""  # the update's name in the folder (or the configured bundle's)
    # head swaps: the updated head before (None: the bundle's own); bundle swaps: the
    # previous bundle's own head, read before the swap (a bundle replaced in place cannot be)
    previous_head: Any = None
    previous_override: Any = None  # bundle swaps: the head update that ran on the old bundle
    previous_served: Served | None = None  # what served before, as active.json says it
    digest: str = ""  # the update's (see update_digest): a rolled-back one is known by it
    judged: bool = False


def pending(folder: Path) -> list[Path]:
    """Updates waiting in ``folder``, oldest first (partial copies left alone)."""
    if not folder.is_dir():
        return []
    items = [
        p
        for p in folder.iterdir()
        if p.name not in (APPLIED, REFUSED)
        and not p.name.startswith(".")
        and not p.name.endswith(_PARTIAL)
        and (p.is_dir() or p.suffix == ".tar")
    ]
    return sorted(items, key=lambda p: (p.stat().st_mtime, p.name))


def file_away(path: Path, folder: Path, verdict: str) -> Path:
    """Move a handled update to ``folder/verdict/`` (a name taken gets a time suffix)."""
    dest_dir = folder / verdict
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / path.name
    if dest.exists():
        dest = dest_dir / f"{path.stem}-{time.time_ns()}{path.suffix}"
    shutil.move(str(path), str(dest))
    return dest


def update_digest(path: Path) -> str:
    """sha256 of a head update's update.json, a bundle's manifest (a directory) or the
    archive (a .tar); "" if unreadable."""
    try:
        if path.is_dir():
            target = path / (UPDATE_NAME if (path / UPDATE_NAME).is_file() else "manifest.json")
        else:
            target = path
        return hashlib.sha256(target.read_bytes()).hexdigest()
    except OSError:
        return ""


def event(kind: str, t: float, **detail: Any) -> Event:
    """A hub event of a model update (``model_swapped``, ``update_refused``,
    ``model_rolled_back``) at ``t`` on the decisions' clock."""
    return hub_event(kind, {k: v for k, v in detail.items() if v is not None}, t)


class Updater:
    """The daemon's side of updates: see the module docstring. ``daemon`` offers
    ``models``, ``personal`` (a :class:`~edge.personal.service.PersonalService` or None),
    ``cfg`` and ``_emit``; the swaps themselves run on the event loop."""

    def __init__(self, daemon: Any, folder: Path) -> None:
        self.daemon = daemon
        self.folder = folder
        self.swaps: dict[str, Swap] = {}  # model id -> its last swap
        self.counters: dict[str, int] = {"swapped": 0, "refused": 0, "rolled_back": 0}
        self._lock = asyncio.Lock()  # one update at a time
        # what serves and what was rolled back, kept across restarts (edge.update_restore
        # reads it at start)
        self.state = UpdateState()
        self._dirty = False  # state changed since active.json was last written
        # events held until the daemon's sinks run (those of the restore at start: hold())
        self._held: list[Event] | None = None
        from edge.models import bundle_paths

        # what each configured bundle was when last looked at: SIGHUP takes only a change
        try:
            paths = bundle_paths(daemon.cfg)
        except WearableEdgeError:  # no bundle configured and no demo installed: none to watch
            paths = []
        self._seen = {p: update_digest(Path(p)) for p in paths}
        # each model's configured bundle as last seen (at start, at SIGHUP): what "" in
        # active.json means
        self.configured = {m.model_id: update_digest(Path(m.path)) for m in daemon.models if m.path}

    @property
    def personal(self) -> Any:
        return self.daemon.personal

    def _model(self, model_id: str) -> Any:
        return next((m for m in self.daemon.models if m.model_id == model_id), None)

    def emit(self, ev: Event) -> None:
        if self._held is not None:
            self._held.append(ev)
        else:
            self.daemon._emit(ev)

    def hold(self) -> None:
        """Keep the events emitted from now until :meth:`release` (the sinks do not run yet)."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """The sinks run: emit the events held since start, then every one as it comes."""
        held, self._held = self._held or [], None
        for ev in held:
            self.daemon._emit(ev)

    # -- what serves, on disk ----------------------------------------------------------------
    def served(self, model_id: str) -> Served:
        """What ``model_id`` serves now, as active.json says it."""
        model = self._model(model_id)
        return self.state.models.get(model_id) or Served(
            "", model.model_version if model is not None else "", self.configured.get(model_id, "")
        )

    def where(self, path: Path) -> str:
        """``path`` as active.json names it: relative to the update folder."""
        try:
            return path.relative_to(self.folder).as_posix()
        except ValueError:
            return str(path)

    def save(self) -> None:
        """Write active.json now (blocking: at start, or off the loop); a state dir that
        cannot be written is said, never fatal."""
        self._dirty = False
        self.state.configured = dict(self.configured)
        self._write(self.state)

    def save_if_changed(self) -> None:
        """:meth:`save` if what serves changed since the last write (blocking: at start)."""
        if self._dirty:
            self.save()

    async def persist(self) -> None:
        """Write active.json if what serves changed, on a thread: an fsync on a hub's SD card
        must not stall the loop. The state is copied first; the loop may change it meanwhile."""
        if not self._dirty:
            return
        self._dirty = False
        self.state.configured = dict(self.configured)
        await asyncio.to_thread(self._write, copy.deepcopy(self.state))

    def _write(self, state: UpdateState) -> None:
        try:
            write_state(self.folder / STATE_NAME, state)
        except OSError as e:
            log.error("cannot keep the model update state in %s: %s", self.folder, e)

    def serve(self, model_id: str, served: Served, swap: Swap | None = None) -> None:
        """``served`` serves ``model_id`` now (after ``swap``, still to be judged)."""
        if served.bundle or served.head or served.bundle_digest != self.configured.get(model_id):
            self.state.models[model_id] = served
        else:  # the configured bundle with its own head: nothing to restore
            self.state.models.pop(model_id, None)
        if swap is not None and not swap.judged and swap.previous_served is not None:
            self.state.unjudged[model_id] = Unjudged(
                swap.kind, swap.from_version, swap.at, swap.path, swap.digest, swap.previous_served
            )
        else:
            self.state.unjudged.pop(model_id, None)
        self._dirty = True

    # -- taking updates in -------------------------------------------------------------------
    async def poll(self) -> None:
        """Take every update waiting in the folder."""
        async with self._lock:
            for path in pending(self.folder):
                await self._take(path)
            await self.persist()

    async def reload_bundles(self) -> None:
        """SIGHUP: the bundles where the configuration points (one replaced by hand is
        taken under the same checks), then the update folder."""
        async with self._lock:
            for where in list(self._seen):
                digest = update_digest(Path(where))
                if digest == self._seen.get(where):
                    continue  # unchanged: never a downgrade below a newer update
                self._seen[where] = digest
                await self._take_bundle(Path(where), by_hand=True)
            for path in pending(self.folder):
                await self._take(path)
            await self.persist()

    async def _take(self, path: Path) -> None:
        try:
            if (path / UPDATE_NAME).is_file():  # a head is read whole: verified where it lies
                swap = await self._take_head(path)
                dest = file_away(path, self.folder, APPLIED if swap else REFUSED)
                if swap is not None:
                    swap.previous_served = self.served(swap.model_id)
                    self.serve(
                        swap.model_id,
                        replace(
                            swap.previous_served,
                            head=self.where(dest),
                            head_version=swap.to_version,
                        ),
                        swap,
                    )
                return
            # a bundle goes into applied/ first: swapped in, it keeps reading its files there
            kept = file_away(path, self.folder, APPLIED)
            if not await self._take_bundle(kept, by_hand=False):
                file_away(kept, self.folder, REFUSED)
        except OSError as e:
            log.error("cannot move %s within the update folder: %s", path, e)

    def refuse(self, e: WearableEdgeError, path: Path) -> bool:
        line = f"update refused: {e}"
        log.warning("%s", line)
        self.counters["refused"] += 1
        self.emit(
            event(
                "update_refused",
                self._now(),
                path=path.name,
                reason=getattr(e, "reason", "invalid"),
                message=str(e),
            )
        )
        return False

    async def _take_head(self, path: Path) -> Swap | None:
        from edge.signing import trusted_keys

        cfg = self.daemon.cfg
        try:
            update = await asyncio.to_thread(
                load_head_update, path, trusted_keys(cfg), allow_unsigned=cfg.allow_unsigned
            )
            model = self._model(update.model_id)
            if model is None:
                raise UpdateError(
                    f"incompatible: no running model {update.model_id!r}",
                    path=str(path),
                    reason="incompatible",
                )
            check_head_compatible(update, model.bundle)
            if self.personal is None:
                raise UpdateError(
                    "personalization is off (personal.enabled, the database): "
                    "this hub applies no heads",
                    path=str(path),
                    reason="incompatible",
                )
        except WearableEdgeError as e:
            self.refuse(e, path)
            return None
        from edge.personal.head import Head

        previous = self.personal.override.get(update.model_id)
        from_version = (
            self.swaps[update.model_id].to_version
            if update.model_id in self.swaps
            else f"{model.model_version} (bundle head)"
        )
        self.personal.override[update.model_id] = Head(update.W, update.b)  # between windows
        self.swaps[update.model_id] = Swap(
            "head",
            update.model_id,
            from_version,
            update.version,
            self._now(),
            path.name,
            previous_head=previous,
            digest=update_digest(path),
        )
        self._swapped(self.swaps[update.model_id], update.signed_by)
        return self.swaps[update.model_id]

    async def _take_bundle(self, path: Path, *, by_hand: bool) -> bool:
        from edge.models import open_model
        from edge.signing import load_trusted_bundle

        cfg = self.daemon.cfg
        new = None
        try:
            bundle = await asyncio.to_thread(load_trusted_bundle, str(path), cfg)
            model = self._model(bundle.model_id)
            old_bundle = model.bundle if model is not None else self.daemon.models[0].bundle
            check_bundle_compatible(bundle, old_bundle)
            if bundle.model_version == old_bundle.model_version:
                bundle.close()
                if not by_hand:  # the same version again: nothing to do, said once
                    log.info("update %s: version %s already runs", path.name, bundle.model_version)
                return True
            bundle.close()
            # engine choice and warm-up take a while: off the loop, before the swap
            new = await asyncio.to_thread(open_model, str(path), cfg)
        except WearableEdgeError as e:
            return self.refuse(e, path)
        assert model is not None  # check_bundle_compatible refused another model id
        swap = Swap(
            "bundle", model.model_id, model.model_version, new.model_version, self._now(), path.name
        )
        swap.previous_served, swap.digest = self.served(model.model_id), update_digest(path)
        if self.personal is not None:  # kept: a bundle replaced in place can no longer be read
            swap.previous_head = self.personal.shared.get(model.model_id)
            swap.previous_override = self.personal.override.get(model.model_id)
        model.swap_to(new)  # between windows: the next one submitted uses the new engine
        if self.personal is not None:
            try:
                self.personal.add_bundle(model.bundle)
            except WearableEdgeError as e:  # its head.npz changed since it was verified
                model.swap_to(model.previous)
                return self.refuse(e, path)
            self.personal.reload()
        self.swaps[model.model_id] = swap
        self._swapped(swap, model.bundle.signed_by)
        # by hand: "" (where the configuration points), with the digest of what lies there now
        where = "" if by_hand else self.where(path)
        if by_hand:
            self.configured[model.model_id] = swap.digest
        self.serve(model.model_id, Served(where, new.model_version, swap.digest), swap)
        return True

    def _swapped(self, swap: Swap, signed_by: str | None) -> None:
        self.counters["swapped"] += 1
        log.info(
            "model update: %s %s %s -> %s (signed by %s; previous version kept)",
            swap.model_id,
            swap.kind,
            swap.from_version,
            swap.to_version,
            signed_by or "-",
        )
        self.emit(
            event(
                "model_swapped",
                swap.at,
                model_id=swap.model_id,
                update=swap.kind,
                path=swap.path,
                from_version=swap.from_version,
                to_version=swap.to_version,
                signed_by=signed_by,
            )
        )

    def _now(self) -> float:
        """The decisions' clock (virtual when a simulation runs sped up): the newest
        decision's time, else the wall clock."""
        last = getattr(self.daemon, "last_decision_t", None)
        return float(last) if last else time.time()

    # -- judging the last swap ---------------------------------------------------------------
    async def check_rollbacks(self) -> None:
        """Judge each unjudged swap on recent confirmed labels; roll back a worse one."""
        if self.personal is None:
            return
        async with self._lock:
            for swap in list(self.swaps.values()):
                if swap.judged:
                    continue
                try:
                    verdict = await asyncio.to_thread(self._judge, swap)
                except (sqlite3.Error, OSError, WearableEdgeError, ValueError) as e:
                    # never stop deciding for it: judged again at the next check
                    log.error("cannot judge model update %s: %s", swap.to_version, e)
                    continue
                if verdict is None:
                    continue
                new_f1, old_f1, n = verdict
                swap.judged = True
                margin = self.daemon.cfg.personal.rollback_margin
                if new_f1 < old_f1 - margin:
                    self._roll_back(swap, new_f1, old_f1, n)
                else:
                    if self.state.unjudged.pop(swap.model_id, None) is not None:
                        self._dirty = True
                    log.info(
                        "model update %s %s kept: macro-F1 %.2f vs %.2f before, on %d "
                        "confirmed labelled windows",
                        swap.model_id,
                        swap.to_version,
                        new_f1,
                        old_f1,
                        n,
                    )
            await self.persist()

    def _judge(self, swap: Swap) -> tuple[float, float, int] | None:
        """(macro-F1 new, macro-F1 previous, labelled windows) or None: too few labels yet."""
        from edge.personal.head import Head, macro_f1
        from edge.personal.store import PersonalStore

        svc = self.personal
        opts = self.daemon.cfg.personal
        model = self._model(swap.model_id)
        if model is None or swap.model_id not in svc.shared:
            return None
        classes = svc.classes[swap.model_id]
        K = len(classes)
        self.personal.writer.flush()
        with PersonalStore(svc.db_path) as store:
            if swap.kind == "head":
                # the same body: both heads judged on the very same labelled embeddings
                emb, y, _ = store.labelled(
                    None, swap.model_id, model.model_version, classes, since=swap.at - RECENT_S
                )
                if len(y) < opts.rollback_min_labels:
                    return None
                new = svc.override.get(swap.model_id)
                old = swap.previous_head or svc.shared[swap.model_id]
                return (macro_f1(y, new.predict(emb), K), macro_f1(y, old.predict(emb), K), len(y))
            prev = model.previous
            if prev is None:
                return None
            emb_n, y_n, _ = store.labelled(
                None, swap.model_id, model.model_version, classes, since=swap.at
            )
            emb_o, y_o, _ = store.labelled(
                None,
                swap.model_id,
                prev.model_version,
                classes,
                since=swap.at - RECENT_S,
                until=swap.at,
            )
        if min(len(y_n), len(y_o)) < opts.rollback_min_labels:
            return None
        # what served before: the old bundle's head, or a head update that ran on it
        h_new, h_old = svc.shared.get(swap.model_id), swap.previous_override or swap.previous_head
        if not isinstance(h_new, Head) or not isinstance(h_old, Head):
            return None
        return (
            macro_f1(y_n, h_new.predict(emb_n), K),
            macro_f1(y_o, h_old.predict(emb_o), K),
            len(y_n),
        )

    def _roll_back(self, swap: Swap, new_f1: float, old_f1: float, n: int) -> None:
        model = self._model(swap.model_id)
        if swap.kind == "head":
            if swap.previous_head is None:
                self.personal.override.pop(swap.model_id, None)
            else:
                self.personal.override[swap.model_id] = swap.previous_head
        elif model is not None and model.previous is not None:
            model.swap_to(model.previous)
            self.personal.add_bundle(model.bundle, head=swap.previous_head)
            if swap.previous_override is not None:  # as it served: with its head update
                self.personal.override[swap.model_id] = swap.previous_override
            self.personal.reload()
        self.counters["rolled_back"] += 1
        self.state.rolled_back.append(
            {
                "model_id": swap.model_id,
                "update": swap.kind,
                "version": swap.to_version,
                "path": swap.path,
                "digest": swap.digest,
            }
        )
        self.serve(swap.model_id, swap.previous_served or self.served(swap.model_id))
        log.warning(
            "model update %s %s rolled back to %s: macro-F1 %.2f vs %.2f before, on %d "
            "confirmed labelled windows",
            swap.model_id,
            swap.to_version,
            swap.from_version,
            new_f1,
            old_f1,
            n,
        )
        self.emit(
            event(
                "model_rolled_back",
                self._now(),
                model_id=swap.model_id,
                update=swap.kind,
                path=swap.path,
                reason="worse on recent confirmed labels",
                from_version=swap.to_version,
                to_version=swap.from_version,
                macro_f1_new=round(new_f1, 3),
                macro_f1_previous=round(old_f1, 3),
                labelled_windows=n,
            )
        )
