"""Model updates for the update tests: signing keys, a signed fake bundle, a head update for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.bundle import load_bundle
from edge.personal.service import shared_head
from export.head_update import write_head_update
from export.signing import sign_bundle
from tests.fakes.bundles import signing_keys, write_fake_bundle
from tests.fakes.inputs import small_contract

__all__ = ["head_update", "signed_bundle", "update_keys"]


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
