"""Which keys a hub trusts to sign bundles, and loading a bundle under that policy.

A hub runs only bundles whose ``manifest.sig`` verifies against a trusted key: the signature
covers the manifest's bytes, and the manifest the sha256 of every model file, so a changed
class name is refused like a changed weight (:mod:`edge.bundle`). Trusted, in this order:

- the keys the configuration names (``trusted_keys``, ``--trusted-key FILE``);
- the keys pinned at install: ``/etc/wearable-edge/trusted-keys/*.pem``
  (``edge-daemon install-service`` puts the installer's export key there);
- this user's own export key, ``~/.config/wearable-edge/bundle-signing.pub.pem``, which
  ``edge-export`` makes once and signs with by default: what you export here, runs here;
- the demo key shipped in ``edge/keys/`` (the demo bundles are signed with it), unless
  ``trust_demo_key = false``: its private half is public, so a field hub turns it off.

``allow_unsigned`` (``--allow-unsigned``) is for development: a bundle without a signature
loads, with a warning in the log; one that carries a signature must still verify.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

from edge.bundle import Bundle, load_bundle
from edge.errors import BundleError

if TYPE_CHECKING:
    from edge.config import DaemonConfig

__all__ = ["DEMO_PUBLIC_KEY", "PINNED_KEYS_DIR", "host_key_dir", "load_trusted_bundle",
           "trusted_keys"]

log = logging.getLogger(__name__)

DEMO_PUBLIC_KEY: Final = Path(__file__).resolve().parent / "keys" / "demo_signing_key.pub.pem"
PINNED_KEYS_DIR: Final = Path("/etc/wearable-edge/trusted-keys")
HOST_PUBLIC_NAME: Final = "bundle-signing.pub.pem"
HOST_PRIVATE_NAME: Final = "bundle-signing.pem"


def host_key_dir() -> Path:
    """Where this user's export key lives: ``$XDG_CONFIG_HOME/wearable-edge`` (or
    ``~/.config/wearable-edge``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "wearable-edge"


def trusted_keys(cfg: DaemonConfig, *, pinned_dir: Path = PINNED_KEYS_DIR) -> list[str]:
    """The PEM files of every key ``cfg`` trusts (see the module docstring), existing ones."""
    keys = list(cfg.trusted_keys)
    if pinned_dir.is_dir():
        keys += sorted(str(p) for p in pinned_dir.glob("*.pem"))
    own = host_key_dir() / HOST_PUBLIC_NAME
    if own.is_file():
        keys.append(str(own))
    if cfg.trust_demo_key:
        keys.append(str(DEMO_PUBLIC_KEY))
    return list(dict.fromkeys(keys))  # once each, in order


def load_trusted_bundle(path: str, cfg: DaemonConfig) -> Bundle:
    """Verify the bundle at ``path`` under ``cfg``'s trust (raises BundleError)."""
    try:
        return load_bundle(path, trusted_keys=trusted_keys(cfg), require_signature=True)
    except BundleError as e:
        if not (cfg.allow_unsigned and e.reason == "unsigned"):
            raise
    log.warning("LOADING AN UNSIGNED BUNDLE (%s) because of --allow-unsigned: nothing vouches "
                "for its manifest or model files; never do this on a resident's hub", path)
    return load_bundle(path)
