"""Keyed pseudonyms (HMAC-SHA256) for anything naming a resident that leaves a hub.

Wearer ids, device addresses and names are replaced, before they go into a fleet message or
an exported metric, by ``HMAC(key, kind ‖ value)`` under a key that never leaves the hub (a
random 32-byte file in its state directory, created on first use, readable by its owner
only). The same wearer always gets the same pseudonym on that hub, so a coordinator can
count and follow "one resident" over rounds, but nobody without the key can link a
pseudonym to an id, or the same person across hubs (each hub has its own key). A plain hash
would not do: ids and MAC addresses are few enough to hash them all and look the result up.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final

from edge.errors import EdgeError

__all__ = ["KEY_FILE", "PSEUDONYM_KINDS", "PseudonymError", "Pseudonymizer", "load_or_create_key"]

KEY_FILE: Final = "fleet_pseudonym.key"
KEY_BYTES: Final = 32  # HMAC-SHA256's block-size-safe key length: the full 256 bits
# 16 hex digits = 64 bits: collisions among a care home's few hundred residents are
# negligible (birthday bound ~2^-45), and the pseudonym stays short in logs
DIGEST_HEX: Final = 16
# each kind of identifier is hashed in its own domain, so a wearer id equal to a device
# address string does not get the same pseudonym
PSEUDONYM_KINDS: Final = ("wearer", "device", "name", "hub")


class PseudonymError(EdgeError):
    """The hub's pseudonym key is unreadable, of the wrong size, or readable by others."""


def load_or_create_key(state_dir: Path) -> bytes:
    """The hub's pseudonym key from ``state_dir`` (created, mode 0600, when absent)."""
    state_dir = Path(state_dir)
    path = state_dir / KEY_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
        tmp.replace(path)
    try:
        key = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as e:
        raise PseudonymError(f"{path}: cannot read the pseudonym key ({e.strerror})") from e
    if len(key) != KEY_BYTES:
        raise PseudonymError(
            f"{path}: a pseudonym key is {KEY_BYTES} bytes, this file has {len(key)}; "
            "delete it to make a new one (earlier pseudonyms will change)"
        )
    if mode & 0o077:
        raise PseudonymError(f"{path}: readable by others (mode {mode & 0o777:o}); chmod 600 it")
    return key


class Pseudonymizer:
    """One hub's pseudonyms: ``pseudonymizer.wearer("W1") -> "wearer-3f9a…"``."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise PseudonymError(f"a pseudonym key needs at least 16 bytes, got {len(key)}")
        self._key = bytes(key)

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> Pseudonymizer:
        return cls(load_or_create_key(state_dir))

    def __call__(self, kind: str, value: str) -> str:
        if kind not in PSEUDONYM_KINDS:
            raise PseudonymError(f"unknown identifier kind {kind!r}; one of {PSEUDONYM_KINDS}")
        mac = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256)
        return f"{kind}-{mac.hexdigest()[:DIGEST_HEX]}"

    def wearer(self, wearer_id: str) -> str:
        return self("wearer", wearer_id)

    def device(self, address: str) -> str:
        # one device, however its address is spelled (aa:bb vs AA-BB)
        return self("device", address.strip().upper().replace("-", ":"))

    def name(self, name: str) -> str:
        return self("name", " ".join(name.split()).casefold())

    def hub(self, hub_id: str) -> str:
        return self("hub", hub_id)

    def __repr__(self) -> str:  # never print the key
        return "Pseudonymizer(key=<hidden>)"
