"""What serves after model updates, kept across restarts: one small JSON file, written by rename.

The update folder (:mod:`edge.updates`) holds ``active.json``: for each model, the bundle and
the head update that serve (paths relative to the folder, in ``applied/``; ``""`` is the
configured bundle, or the bundle's own head), with the version and digest each had when it
started serving, and the updates rolled back, so none of them comes back::

    {"schema_version": 1,
     "models": {"<model id>": {"bundle": "applied/v1" | "", "bundle_version": str,
                               "bundle_digest": str, "head": "applied/round-1" | "",
                               "head_version": str}},
     "rolled_back": [{"model_id": str, "update": "head" | "bundle", "version": str,
                      "path": str, "digest": str}],
     "unjudged": {"<model id>": {"update": "head" | "bundle", "from_version": str,
                                 "at": float, "path": str, "digest": str,
                                 "previous": {what served before, as under "models"}}},
     "configured": {"<model id>": str}}

``unjudged`` is a swap not yet judged for a rollback, so a restart does not spare it;
``configured`` the digest of each model's configured bundle as last seen, so a bundle put
there while the hub was off is told from one that was there (:mod:`edge.update_restore`).

It is rewritten whole (a temporary file, fsync, rename) at every swap and rollback, so a
power cut leaves the state before or after, never half of one. A file that cannot be read
raises :class:`~edge.update_check.UpdateError` (one line); the daemon then starts from its
configured bundles (:mod:`edge.update_restore`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from edge.atomic_json import write_json_atomic
from edge.update_check import UpdateError

__all__ = [
    "STATE_NAME",
    "STATE_SCHEMA",
    "Served",
    "Unjudged",
    "UpdateState",
    "read_state",
    "write_state",
]

STATE_NAME: Final = "active.json"
STATE_SCHEMA: Final = 1
_MAX_STATE: Final = 1 << 20  # a few hundred bytes per model; anything larger is not ours


@dataclass(frozen=True)
class Served:
    """What one model serves: its bundle and its head update (``""``: the configured
    bundle, the bundle's own head), each as it was when it started serving."""

    bundle: str = ""  # relative to the update folder ("applied/v1"), "" = configured
    bundle_version: str = ""
    bundle_digest: str = ""  # edge.updates' digest of its manifest (or archive)
    head: str = ""  # relative to the update folder ("applied/round-1"), "" = the bundle's
    head_version: str = ""


@dataclass(frozen=True)
class Unjudged:
    """A swap not judged yet (:class:`edge.updates.Swap`, as much of it as a restart needs)."""

    update: str  # "head" | "bundle"
    from_version: str
    at: float  # the decisions' clock at the swap
    path: str  # the update's name in the folder
    digest: str
    previous: Served  # what served before it

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Unjudged:
        prev = {k: str(v) for k, v in d["previous"].items()}
        return cls(
            str(d["update"]),
            str(d["from_version"]),
            float(d["at"]),
            str(d["path"]),
            str(d["digest"]),
            Served(**prev),
        )


@dataclass
class UpdateState:
    """Every model's :class:`Served`, the updates rolled back (newest last), and the swaps
    not judged yet."""

    models: dict[str, Served] = field(default_factory=dict)
    rolled_back: list[dict[str, str]] = field(default_factory=list)
    unjudged: dict[str, Unjudged] = field(default_factory=dict)
    configured: dict[str, str] = field(default_factory=dict)  # model id -> its digest

    def was_rolled_back(self, model_id: str, update: str, digest: str) -> bool:
        """True when these very files (``digest``) of a ``update`` ("head" or "bundle") of
        ``model_id`` were rolled back."""
        return bool(digest) and any(
            r.get("model_id") == model_id
            and r.get("update") == update
            and r.get("digest") == digest
            for r in self.rolled_back
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": STATE_SCHEMA,
            "models": {m: asdict(s) for m, s in sorted(self.models.items())},
            "rolled_back": list(self.rolled_back),
            "unjudged": {m: asdict(u) for m, u in sorted(self.unjudged.items())},
            "configured": dict(sorted(self.configured.items())),
        }


def read_state(path: Path) -> UpdateState:
    """The state at ``path``; an empty one when there is no file. Raises UpdateError
    (``malformed``, one line) for a file that is not a state of this schema."""
    try:
        raw = path.read_bytes()[: _MAX_STATE + 1]
    except FileNotFoundError:
        return UpdateState()
    except OSError as e:
        raise UpdateError(
            f"cannot read the model update state ({e.strerror or e})",
            path=str(path),
            reason="malformed",
        ) from e
    try:
        if len(raw) > _MAX_STATE:
            raise ValueError("too large")
        doc = json.loads(raw.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("schema_version") != STATE_SCHEMA:
            raise ValueError(f"not a model update state of schema {STATE_SCHEMA}")
        models, rolled = doc.get("models", {}), doc.get("rolled_back", [])
        unjudged, configured = doc.get("unjudged", {}), doc.get("configured", {})
        if not all(isinstance(x, dict) for x in (models, unjudged, configured)) or not isinstance(
            rolled, list
        ):
            raise ValueError(
                "models, unjudged or configured is not a mapping, or rolled_back not a list"
            )
        models = {str(m): Served(**{k: str(v) for k, v in s.items()}) for m, s in models.items()}
        rolled = [{str(k): str(v) for k, v in r.items()} for r in rolled]
        unjudged = {str(m): Unjudged.from_dict(u) for m, u in unjudged.items()}
        configured = {str(m): str(d) for m, d in configured.items()}
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as e:
        raise UpdateError(
            f"the model update state is damaged ({e})", path=str(path), reason="malformed"
        ) from e
    return UpdateState(models, rolled, unjudged, configured)


def write_state(path: Path, state: UpdateState) -> None:
    """Replace ``path`` with ``state`` atomically, owner-only. Raises OSError."""
    write_json_atomic(path, state.to_dict())
