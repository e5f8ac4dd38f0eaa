"""Verified model updates without restart: check a signed head or bundle, swap it in between windows, keep the old, roll back.

An update is put into the hub's update folder (``personal.update_dir``, default
``STATE_DIR/updates``), whole (write it aside and rename it in), as one of:

- a **head update**: a directory with ``update.json``, ``update.sig`` and ``head.npz`` (a
  new shared classifier head, e.g. from a federated round; ``edge-fleet`` or
  :func:`export.head_update.write_head_update` write it). ``update.json``::

      {"schema_version": 1, "kind": "head", "model_id": str, "version": str,
       "base_model_version": str, "class_names": [...], "embedding_dim": D,
       "contract": InputContract.to_dict(), "head": {"path": "head.npz", "sha256", "size"},
       "created": ISO-8601}

  ``update.sig`` has the format of a bundle's ``manifest.sig`` (Ed25519 over the exact bytes
  of ``update.json``), so the keys a hub trusts for bundles vouch for heads too;
- a **bundle update**: a bundle directory or ``.tar`` (:mod:`edge.bundle`), signed as any.

The hub verifies the signature and every hash, then compatibility with the model it
replaces: the same model id, input contract, class names and embedding size (and, for a
head, the body version it was trained on, since an embedding means something only for the
body that made it). Anything else is refused in one line (log, and an ``update_refused``
event) and moved to ``updates/refused/``; the daemon keeps deciding with what it has.

A good update is swapped in on the event loop, between two windows: a head replaces the
model's shared head; a bundle's engine is opened and warmed up on a thread first, then
replaces the model's engine (windows already queued for the old engine are still answered).
The version replaced is kept, in memory and in ``updates/applied/``. Once enough recent
confirmed labels exist (``personal.rollback_min_labels``), the new version is judged against
the previous one on them (macro-F1): a head on the same embeddings as its predecessor, a
bundle on the labelled windows it decided against its predecessor's before the swap; when
it does worse, it is rolled back (``model_rolled_back``). A bundle placed by hand where the
configuration points (``--bundle``) is taken up on SIGHUP, under the same checks.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.contract import InputContract
from core.errors import ContractError, WearableEdgeError
from edge.bundle import Bundle, verify_manifest_signature
from edge.carers import hub_event
from edge.decisions import Event
from edge.errors import BundleError, EdgeError

__all__ = [
    "UPDATE_NAME",
    "UPDATE_SIGNATURE_NAME",
    "HeadUpdate",
    "UpdateError",
    "Updater",
    "check_bundle_compatible",
    "check_head_compatible",
    "load_head_update",
]

log = logging.getLogger(__name__)

UPDATE_NAME: Final = "update.json"
UPDATE_SIGNATURE_NAME: Final = "update.sig"
UPDATE_SCHEMA: Final = 1
_MAX_UPDATE_JSON: Final = 1 << 20  # an update.json is a few KB of JSON
APPLIED: Final = "applied"
REFUSED: Final = "refused"
# "recent" confirmed labels, for judging an update: a fortnight of a resident's life, not
# labels from before a season changed how they live
RECENT_S: Final = 14 * 86400.0
# an update still being copied in: named so, or written aside and renamed in
_PARTIAL: Final = (".partial", ".tmp", ".part")


class UpdateError(EdgeError):
    """An update refused: ``reason`` is ``signature``, ``hash``, ``malformed`` or
    ``incompatible``; the message is the one line the log and the event say."""

    def __init__(self, message: str, *, path: str, reason: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class HeadUpdate:
    """A verified head update."""

    source: Path
    model_id: str
    version: str
    base_model_version: str
    class_names: tuple[str, ...]
    embedding_dim: int
    contract: InputContract
    W: np.ndarray  # (D, K)
    b: np.ndarray  # (K,)
    signed_by: str | None


def load_head_update(
    path: Path, trusted_keys: list[Any], *, allow_unsigned: bool = False
) -> HeadUpdate:
    """Verify the head update directory ``path`` (see the module docstring)."""
    where = str(path)
    try:
        raw = (path / UPDATE_NAME).read_bytes()[: _MAX_UPDATE_JSON + 1]
    except OSError as e:
        raise UpdateError(
            f"no readable {UPDATE_NAME} ({e.strerror or e})", path=where, reason="malformed"
        ) from e
    if len(raw) > _MAX_UPDATE_JSON:
        raise UpdateError(f"{UPDATE_NAME} is too large", path=where, reason="malformed")
    signed_by = _check_signature(path, raw, trusted_keys, allow_unsigned)
    try:
        m = json.loads(raw.decode("utf-8"))
        if m.get("schema_version") != UPDATE_SCHEMA or m.get("kind") != "head":
            raise ValueError(f"not a head update of schema {UPDATE_SCHEMA}")
        head = m["head"]
        rel = Path(str(head["path"]))
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError("head path leaves the update")
        data = (path / rel).read_bytes()
        contract = InputContract.from_dict(m["contract"])
        fields = (
            str(m["model_id"]),
            str(m["version"]),
            str(m["base_model_version"]),
            tuple(str(c) for c in m["class_names"]),
            int(m["embedding_dim"]),
        )
        size, sha = int(head["size"]), str(head["sha256"]).lower()
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        OSError,
        RecursionError,
        ContractError,
    ) as e:
        raise UpdateError(f"malformed update: {e}", path=where, reason="malformed") from e
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
        raise UpdateError(
            "head.npz does not match its sha256 in update.json (changed or damaged)",
            path=where,
            reason="hash",
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            W, b = z["W"].astype(np.float32), z["b"].astype(np.float32)
    except (ValueError, KeyError, OSError, EOFError) as e:
        raise UpdateError(f"head.npz is not a head: {e}", path=where, reason="malformed") from e
    if (
        W.shape != (fields[4], len(fields[3]))
        or b.shape != (len(fields[3]),)
        or not (np.isfinite(W).all() and np.isfinite(b).all())
    ):
        raise UpdateError(
            f"head arrays {W.shape}, {b.shape} do not match its embedding size "
            f"{fields[4]} and {len(fields[3])} classes",
            path=where,
            reason="malformed",
        )
    return HeadUpdate(path, *fields, contract, W, b, signed_by)


def _check_signature(path: Path, raw: bytes, keys: list[Any], allow_unsigned: bool) -> str | None:
    sig_path = path / UPDATE_SIGNATURE_NAME
    if not sig_path.is_file():
        if allow_unsigned:
            log.warning("LOADING AN UNSIGNED UPDATE (%s) because of --allow-unsigned", path)
            return None
        raise UpdateError(
            "unsigned: a model update must be signed by a key this hub trusts",
            path=str(path),
            reason="signature",
        )
    try:
        import base64

        sig = json.loads(sig_path.read_text("utf-8"))
        signature = base64.b64decode(sig["signature"], validate=True)
        claimed = str(sig.get("key_id", ""))
        if sig.get("alg") != "Ed25519":
            raise ValueError(f"unsupported alg {sig.get('alg')!r}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise UpdateError(
            f"malformed {UPDATE_SIGNATURE_NAME}: {e}", path=str(path), reason="signature"
        ) from e
    if not keys:
        raise UpdateError("no trusted keys to verify it with", path=str(path), reason="signature")
    try:
        return verify_manifest_signature(raw, signature, claimed, keys, where=str(sig_path))
    except BundleError as e:
        raise UpdateError(
            f"signature does not verify: {update_words(e)}", path=str(path), reason="signature"
        ) from e


def update_words(e: BundleError) -> str:
    """A BundleError's message without the path prefix it repeats."""
    text = str(e)
    return text[len(e.path) + 2 :] if text.startswith(f"{e.path}: ") else text


def _mismatch(model_id: str, contract: object, class_names: Sequence[str], running: Bundle) -> str:
    """Why a model (or a head trained on one) cannot stand in for ``running``; "" when it can."""
    if model_id != running.model_id:
        return f"it is for model {model_id!r}, this model is {running.model_id!r}"
    if contract != running.contract:
        return "its input contract differs from the running model's"
    if list(class_names) != list(running.class_names):
        return (
            f"its classes {', '.join(class_names)} differ from the model's "
            f"{', '.join(running.class_names)}"
        )
    return ""


def check_head_compatible(update: HeadUpdate, bundle: Bundle) -> None:
    """UpdateError (``incompatible``) unless ``update`` fits the running ``bundle``."""
    why = _mismatch(update.model_id, update.contract, update.class_names, bundle)
    if why:
        raise UpdateError(f"incompatible: {why}", path=str(update.source), reason="incompatible")
    if bundle.embedding_dim is None:
        why = "the running bundle has no embedding output to apply a head to"
    elif update.embedding_dim != bundle.embedding_dim:
        why = (
            f"its embedding size {update.embedding_dim} differs from the model's "
            f"{bundle.embedding_dim}"
        )
    elif update.base_model_version != bundle.model_version:
        why = (
            f"it was trained on the embeddings of model version {update.base_model_version},"
            f" this hub runs {bundle.model_version}"
        )
    if why:
        raise UpdateError(f"incompatible: {why}", path=str(update.source), reason="incompatible")


def check_bundle_compatible(new: Bundle, old: Bundle) -> None:
    """UpdateError (``incompatible``) unless bundle ``new`` may replace ``old``."""
    why = _mismatch(new.model_id, new.contract, new.class_names, old)
    if not why and old.embedding_dim is not None and new.embedding_dim != old.embedding_dim:
        why = f"its embedding size {new.embedding_dim} differs from the model's {old.embedding_dim}"
    if why:
        raise UpdateError(f"incompatible: {why}", path=str(new.source), reason="incompatible")


@dataclass
class Swap:
    """The last swap of one model, until it is judged (kept or rolled back)."""

    kind: str  # "head" | "bundle"
    model_id: str
    from_version: str
    to_version: str
    at: float  # hub wall time of the swap (decisions' time base)
    previous_head: Any = None  # head swaps: the shared head before (None: the bundle's own)
    judged: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


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


def _digest(path: Path) -> str:
    """sha256 of a bundle's manifest (a directory) or of the archive (a .tar); "" if unreadable."""
    try:
        target = path / "manifest.json" if path.is_dir() else path
        return hashlib.sha256(target.read_bytes()).hexdigest()
    except OSError:
        return ""


def event(kind: str, **detail: Any) -> Event:
    """A hub event of a model update (``model_swapped``, ``update_refused``, ``model_rolled_back``)."""
    return hub_event(kind, {k: v for k, v in detail.items() if v is not None})


Emit = Callable[[Event], None]


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
        from edge.models import bundle_paths

        # what each configured bundle was when last looked at: SIGHUP takes only a change
        try:
            paths = bundle_paths(daemon.cfg)
        except WearableEdgeError:  # no bundle configured and no demo installed: none to watch
            paths = []
        self._seen = {p: _digest(Path(p)) for p in paths}

    @property
    def personal(self) -> Any:
        return self.daemon.personal

    def _model(self, model_id: str) -> Any:
        return next((m for m in self.daemon.models if m.model_id == model_id), None)

    # -- taking updates in -------------------------------------------------------------------
    async def poll(self) -> None:
        """Take every update waiting in the folder."""
        async with self._lock:
            for path in pending(self.folder):
                await self._take(path)

    async def reload_bundles(self) -> None:
        """SIGHUP: the bundles where the configuration points (one replaced by hand is
        taken under the same checks), then the update folder."""
        async with self._lock:
            for path in list(self._seen):
                digest = _digest(Path(path))
                if digest == self._seen.get(path):
                    continue  # unchanged: never a downgrade below a newer update
                self._seen[path] = digest
                await self._take_bundle(Path(path), by_hand=True)
            for path in pending(self.folder):
                await self._take(path)

    async def _take(self, path: Path) -> None:
        try:
            if (path / UPDATE_NAME).is_file():  # a head is read whole: verified where it lies
                ok = await self._take_head(path)
                file_away(path, self.folder, APPLIED if ok else REFUSED)
                return
            # a bundle goes into applied/ first: swapped in, it keeps reading its files there
            kept = file_away(path, self.folder, APPLIED)
            if not await self._take_bundle(kept, by_hand=False):
                file_away(kept, self.folder, REFUSED)
        except OSError as e:
            log.error("cannot move %s within the update folder: %s", path, e)

    def _refuse(self, e: WearableEdgeError, path: Path) -> bool:
        line = f"update refused: {e}"
        log.warning("%s", line)
        self.counters["refused"] += 1
        self.daemon._emit(
            event(
                "update_refused",
                path=path.name,
                reason=getattr(e, "reason", "invalid"),
                message=str(e),
            )
        )
        return False

    async def _take_head(self, path: Path) -> bool:
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
            return self._refuse(e, path)
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
            previous_head=previous,
        )
        self._swapped(self.swaps[update.model_id], update.signed_by)
        return True

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
            return self._refuse(e, path)
        assert model is not None  # check_bundle_compatible refused another model id
        swap = Swap("bundle", model.model_id, model.model_version, new.model_version, self._now())
        if self.personal is not None:  # kept: a bundle replaced in place can no longer be read
            swap.previous_head = self.personal.shared.get(model.model_id)
        model.swap_to(new)  # between windows: the next one submitted uses the new engine
        if self.personal is not None:
            try:
                self.personal.add_bundle(model.bundle)
            except WearableEdgeError as e:  # its head.npz changed since it was verified
                model.swap_to(model.previous)
                return self._refuse(e, path)
            self.personal.reload()
        self.swaps[model.model_id] = swap
        self._swapped(swap, model.bundle.signed_by)
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
        self.daemon._emit(
            event(
                "model_swapped",
                model_id=swap.model_id,
                update=swap.kind,
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
                verdict = await asyncio.to_thread(self._judge, swap)
                if verdict is None:
                    continue
                new_f1, old_f1, n = verdict
                swap.judged = True
                margin = self.daemon.cfg.personal.rollback_margin
                if new_f1 < old_f1 - margin:
                    self._roll_back(swap, new_f1, old_f1, n)
                else:
                    log.info(
                        "model update %s %s kept: macro-F1 %.2f vs %.2f before, on %d "
                        "confirmed labelled windows",
                        swap.model_id,
                        swap.to_version,
                        new_f1,
                        old_f1,
                        n,
                    )

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
        h_new, h_old = svc.shared.get(swap.model_id), swap.previous_head
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
            self.personal.reload()
        self.counters["rolled_back"] += 1
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
        self.daemon._emit(
            event(
                "model_rolled_back",
                model_id=swap.model_id,
                update=swap.kind,
                from_version=swap.to_version,
                to_version=swap.from_version,
                macro_f1_new=round(new_f1, 3),
                macro_f1_previous=round(old_f1, 3),
                labelled_windows=n,
            )
        )
