"""Serving again at start what served before a restart: the model updates active.json names, verified anew.

At start (before the first window) the daemon reads ``updates/active.json``
(:mod:`edge.update_state`) and, for each model, serves again the bundle and the head update
that served when it stopped, from ``updates/applied/``, under the checks of a new update:
signature, every hash, that it fits the model (:mod:`edge.update_check`), and that it is the
very version that served and not one rolled back. A file changed or damaged while the hub
was off is refused in one line (an ``update_refused`` event, the file moved to
``updates/refused/``) and that model falls back to its configured bundle and the bundle's own
head; a state file that cannot be read falls back for every model. One line says what serves,
and a ``model_restored`` event per model in the state says it to the history.

A bundle put where the configuration points while the hub was off is the technician's
choice: it serves, and the updates from before it are not restored. A swap not judged yet
when the hub stopped is judged after the restart, as it would have been (a head always; a
bundle when what it replaced is the configured bundle, open already; any other is kept).

A rolled-back update never serves again: the state names what served after the rollback.
The one case a restart cannot undo is a bundle replaced by hand where the configuration
points and then rolled back: the version before it is no longer on disk. It is said in a
warning (put the previous version back there and send SIGHUP).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import WearableEdgeError
from edge.personal.head import Head
from edge.update_check import (
    UpdateError,
    check_bundle_compatible,
    check_head_compatible,
    load_head_update,
)
from edge.update_state import STATE_NAME, Served, UpdateState, read_state
from edge.updates import REFUSED, Swap, Updater, event, file_away, update_digest

__all__ = ["restore"]

log = logging.getLogger(__name__)


def restore(updater: Updater) -> list[Served]:
    """Serve again what ``updater``'s folder says served (see the module docstring); the
    events go out once the daemon's sinks run (:meth:`Updater.release`). What each
    configured model serves now, in the daemon's order."""
    path = updater.folder / STATE_NAME
    models = list(updater.daemon.models)
    updater.hold()
    try:
        state = read_state(path)
    except UpdateError as e:
        log.warning("model updates not restored: %s; the configured bundles serve", e)
        for m in models:
            updater.emit(
                event(
                    "model_restored",
                    updater._now(),
                    model_id=m.model_id,
                    bundle="configured",
                    bundle_version=m.model_version,
                    refused=str(e),
                )
            )
        return [updater.served(m.model_id) for m in models]
    updater.state = state
    out, words = [], []
    for m in models:
        before = state.models.get(m.model_id)
        if before is None:
            _say_configured_rolled_back(updater, m)
            out.append(updater.served(m.model_id))
            continue
        last, now = state.configured.get(m.model_id), updater.configured.get(m.model_id)
        if last and now and last != now:  # put in place while the hub was off: it serves
            state.unjudged.pop(m.model_id, None)
            state.models.pop(m.model_id, None)
            updater.serve(m.model_id, updater.served(m.model_id))
            why = "the configured bundle was replaced while the hub was off"
            words.append(f"{m.model_id}: the configured bundle {m.model_version} ({why})")
            updater.emit(
                event(
                    "model_restored",
                    updater._now(),
                    model_id=m.model_id,
                    bundle="configured",
                    bundle_version=m.model_version,
                    reason=why,
                )
            )
            continue
        served, refused, swap = _restore_model(updater, m, before)
        if swap is not None:  # swapped before the stop, not judged yet: judged from now
            updater.swaps[m.model_id] = swap
        updater.serve(m.model_id, served, swap)
        out.append(served)
        words.append(_words(m.model_id, served, refused))
        updater.emit(
            event(
                "model_restored",
                updater._now(),
                model_id=m.model_id,
                bundle=served.bundle or "configured",
                bundle_version=served.bundle_version,
                head=served.head or None,
                head_version=served.head_version or None,
                refused=refused,
            )
        )
    updater.save_if_changed()
    if words:
        log.info("model updates restored at start: %s", "; ".join(words))
    else:
        log.info("model updates at start: none to restore; the configured bundles serve")
    return out


def _restore_model(
    updater: Updater, model: Any, before: Served
) -> tuple[Served, str | None, Swap | None]:
    """What ``model`` serves after restoring ``before``, the refusal said (or None), and
    the swap still to be judged (or None)."""
    from edge.models import open_model

    cfg, svc, state = updater.daemon.cfg, updater.personal, updater.state
    unjudged = state.unjudged.get(model.model_id)
    served = Served("", model.model_version, updater.configured.get(model.model_id, ""))
    swap = None
    if before.bundle:
        where = updater.folder / before.bundle
        try:
            _check_files(where, before.bundle_digest, state, model.model_id, "bundle")
            new = open_model(str(where), cfg)  # the signature and every hash, again
            check_bundle_compatible(new.bundle, model.bundle)
        except WearableEdgeError as e:
            return served, _refuse(updater, e, where), None
        # a bundle swap not judged yet is judged after the restart when what it replaced is
        # the configured bundle, open already; any other is kept as it is
        if (
            unjudged is not None
            and unjudged.update == "bundle"
            and unjudged.previous.bundle == ""
            and unjudged.previous.bundle_digest == served.bundle_digest
            and not before.head
        ):
            swap = Swap(
                "bundle",
                model.model_id,
                unjudged.from_version,
                new.model_version,
                unjudged.at,
                unjudged.path,
                previous_head=svc.shared.get(model.model_id) if svc is not None else None,
                previous_served=unjudged.previous,
                digest=unjudged.digest,
            )
            swap.previous_override = _previous_head(updater, model, unjudged.previous)
        model.swap_to(new)
        if swap is None:
            model.previous = None  # judged before the stop: nothing to roll back to
        if svc is not None:
            svc.add_bundle(model.bundle)
            svc.reload()
        served = Served(before.bundle, new.model_version, before.bundle_digest)
    elif before.bundle_digest != served.bundle_digest:
        _say_configured_rolled_back(updater, model)
    if not before.head:
        return served, None, swap
    where = updater.folder / before.head
    try:
        head = _verified_head(updater, model, before)
    except WearableEdgeError as e:
        return served, _refuse(updater, e, where), None
    svc.override[model.model_id] = head
    served = replace(served, head=before.head, head_version=before.head_version)
    # (a head's swap: always on the same body)
    if (
        unjudged is not None
        and unjudged.update == "head"
        and unjudged.previous.bundle == before.bundle
    ):
        swap = Swap(
            "head",
            model.model_id,
            unjudged.from_version,
            before.head_version,
            unjudged.at,
            unjudged.path,
            previous_head=_previous_head(updater, model, unjudged.previous),
            previous_served=unjudged.previous,
            digest=unjudged.digest,
        )
    return served, None, swap


def _verified_head(updater: Updater, model: Any, served: Served) -> Head:
    """The head update ``served`` names, under the checks of a new one (UpdateError)."""
    from edge.signing import trusted_keys

    cfg, where = updater.daemon.cfg, updater.folder / served.head
    _check_files(where, "", updater.state, model.model_id, "head")
    if updater.personal is None:
        raise UpdateError(
            "personalization is off (personal.enabled, the database): this hub applies no heads",
            path=str(where),
            reason="incompatible",
        )
    update = load_head_update(where, trusted_keys(cfg), allow_unsigned=cfg.allow_unsigned)
    check_head_compatible(update, model.bundle)
    if update.version != served.head_version:
        raise UpdateError(
            f"it is version {update.version}, not {served.head_version} that served",
            path=str(where),
            reason="hash",
        )
    return Head(update.W, update.b)


def _previous_head(updater: Updater, model: Any, previous: Served) -> Head | None:
    """The head update that served before an unjudged swap (None: the bundle's own), to
    judge the swap against; None with a warning when it cannot be verified."""
    if not previous.head:
        return None
    try:
        return _verified_head(updater, model, previous)
    except WearableEdgeError as e:
        log.warning(
            "the head update before the last swap cannot be verified (%s): the swap "
            "is judged against the bundle's own head",
            e,
        )
        return None


def _check_files(where: Path, digest: str, state: UpdateState, model_id: str, kind: str) -> None:
    """UpdateError unless the update at ``where`` is there, unchanged (``digest``, when
    known) and not one rolled back."""
    now = update_digest(where)
    if not now:
        raise UpdateError("it is no longer there", path=str(where), reason="malformed")
    if digest and now != digest:
        raise UpdateError(
            "it changed since it served (its manifest differs)", path=str(where), reason="hash"
        )
    if state.was_rolled_back(model_id, kind, now):
        raise UpdateError("it was rolled back before", path=str(where), reason="rolled_back")


def _refuse(updater: Updater, e: WearableEdgeError, where: Path) -> str:
    """Say the refusal (one line, an event) and move the file to refused/."""
    updater.refuse(e, where)
    if where.exists():
        try:
            file_away(where, updater.folder, REFUSED)
        except OSError as err:
            log.error("cannot move %s within the update folder: %s", where, err)
    return str(e)


def _say_configured_rolled_back(updater: Updater, model: Any) -> None:
    """The configured bundle is one rolled back: warn (its previous version is gone)."""
    digest = updater.configured.get(model.model_id, "")
    if updater.state.was_rolled_back(model.model_id, "bundle", digest):
        log.warning(
            "the bundle at %s (%s %s) was rolled back before the restart, and the version "
            "before it is no longer on disk: it serves until you put the previous version "
            "back there and send SIGHUP",
            model.path,
            model.model_id,
            model.model_version,
        )


def _words(model_id: str, served: Served, refused: str | None) -> str:
    bundle = (
        f"bundle {served.bundle_version} ({served.bundle})"
        if served.bundle
        else f"the configured bundle {served.bundle_version}"
    )
    head = f", head {served.head_version} ({served.head})" if served.head else ", its own head"
    return f"{model_id}: {bundle}{head}" + (f" (refused: {refused})" if refused else "")
