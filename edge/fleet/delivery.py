"""A head update's trip from the coordinator into a hub's update folder, inside one Flower message.

After the last round the coordinator (:mod:`edge.fleet.coordinator`) packs the signed head
update folder it wrote (``update.json``, ``head.npz``, ``update.sig``) into a record
(:func:`update_record`) and sends it to every hub in a query message of type
:data:`MESSAGE_TYPE`; the hub's ClientApp (:mod:`edge.fleet.client`) writes the files into
its update folder (:func:`write_delivered`): aside in a private folder beside it, then
renamed in whole, under a fresh name. The hub trusts nothing in the message: the daemon's
updater (:mod:`edge.updates`) verifies the signature, hashes and contract as for a folder
put there by hand, and refuses it (``updates/refused/``) otherwise. Flwr only (no torch):
this runs on a hub.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Final

from flwr.app import ConfigRecord

from edge.errors import EdgeError
from edge.update_check import UPDATE_NAME

log = logging.getLogger(__name__)

__all__ = [
    "ACTION",
    "MESSAGE_TYPE",
    "RECORD",
    "DeliveryError",
    "hub_update_folder",
    "update_record",
    "write_delivered",
]

ACTION: Final = "head_update"  # the ClientApp's query handler for it: @app.query(ACTION)
MESSAGE_TYPE: Final = "query." + ACTION
RECORD: Final = "head-update"  # the ConfigRecord's name in the message's content
NAME_KEY: Final = "name"  # the update's name; every other key is a file's name, its bytes the value
MAX_FILES: Final = 8  # a head update has three
MAX_BYTES: Final = 64 * 1024 * 1024  # a head is small; a bigger message is not one
_SAFE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# an update the updater leaves alone while it is written (edge.updates)
_PARTIAL: Final = (".partial", ".tmp", ".part")


class DeliveryError(EdgeError):
    """A head update message that cannot be written into the update folder."""


def hub_update_folder(node_config: Any) -> Path:
    """The hub's update folder from the SuperNode's node config: ``updates`` when given
    (the daemon's ``personal.update_dir``), else ``STATE_DIR/updates`` as the daemon's default."""
    given = str(node_config.get("updates", "") or "")
    if given:
        return Path(given)
    return Path(str(node_config.get("state-dir", "."))) / "updates"


def update_record(folder: Path) -> ConfigRecord:
    """The files of the update folder ``folder`` (flat) as one record, named by the
    update's version (the hub's folder for it is named so, plus a random suffix)."""
    folder = Path(folder)
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    version = str(json.loads(files[UPDATE_NAME])["version"])
    return ConfigRecord({NAME_KEY: version, **files})


def _safe(name: str, what: str) -> str:
    if not _SAFE.fullmatch(name) or name.endswith(_PARTIAL) or ".." in name:
        raise DeliveryError(f"head update message: refused {what} {name[:100]!r}")
    return name


def _files(record: Any) -> tuple[str, dict[str, bytes]]:
    try:
        name = record[NAME_KEY]
    except (KeyError, TypeError):
        raise DeliveryError("head update message: no update name") from None
    if not isinstance(name, str):
        raise DeliveryError("head update message: the update name is not text")
    files: dict[str, bytes] = {}
    for key, value in record.items():
        if key == NAME_KEY:
            continue
        if not isinstance(value, bytes):
            raise DeliveryError(f"head update message: file {key[:100]!r} is not bytes")
        files[_safe(key, "file name")] = value
    if UPDATE_NAME not in files:
        raise DeliveryError(f"head update message: no {UPDATE_NAME}")
    if len(files) > MAX_FILES or sum(len(v) for v in files.values()) > MAX_BYTES:
        raise DeliveryError(
            f"head update message: {len(files)} files of "
            f"{sum(len(v) for v in files.values())} B is not a head update"
        )
    return _safe(name, "update name"), files


def write_delivered(record: Any, updates: Path) -> Path:
    """Write the update in ``record`` into ``updates`` whole; its path there.

    Written into a private temporary folder in ``updates``' parent (the same file system,
    where the updater does not look) and renamed in under the sent name with a random
    suffix, so it never replaces or clashes with an update already there. DeliveryError
    (one line) for a message that is not an update's files."""
    name, files = _files(record)
    updates = Path(updates)
    tmp: Path | None = None
    try:
        updates.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fleet-update-", dir=updates.parent))
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)
        dest = updates / f"{name}-{secrets.token_hex(4)}"
        if dest.exists():
            raise FileExistsError(errno.EEXIST, f"{dest.name} is there already")
        os.rename(tmp, dest)  # an existing dest (empty or not) would be an error, never replaced
    except OSError as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        log.error("head update: cannot write into %s: %s", updates, e)
        # the line goes back to the coordinator too: no path of the hub's in it
        raise DeliveryError(
            f"head update: cannot write into the hub's update folder ({e.strerror or e})"
        ) from e
    return dest
