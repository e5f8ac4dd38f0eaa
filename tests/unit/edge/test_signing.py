"""edge.signing: which keys a hub trusts, and that it requires a signature (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.bundle import MANIFEST_NAME, SIGNATURE_NAME, demo_bundle_path
from edge.config import DaemonConfig
from edge.errors import BundleError
from edge.signing import DEMO_PUBLIC_KEY, load_trusted_bundle, trusted_keys
from export.signing import DEMO_PRIVATE_KEY, sign_bundle
from tests.fakes.bundles import signing_keys, write_fake_bundle
from tests.fakes.inputs import small_contract


@pytest.fixture(autouse=True)
def _own_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_the_demo_key_is_trusted_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    assert trusted_keys(DaemonConfig(), pinned_dir=tmp_path / "none") == [str(DEMO_PUBLIC_KEY)]
    assert trusted_keys(DaemonConfig(trust_demo_key=False), pinned_dir=tmp_path / "none") == []


def test_pinned_keys_and_this_users_export_key_are_trusted(tmp_path: Path) -> None:
    pinned = tmp_path / "pinned"
    pinned.mkdir()
    (pinned / "care-home.pem").write_text("x")
    own = tmp_path / "config" / "wearable-edge" / "bundle-signing.pub.pem"
    own.parent.mkdir(parents=True)
    own.write_text("x")
    keys = trusted_keys(DaemonConfig(trusted_keys=["/k.pem"]), pinned_dir=pinned)
    assert keys == ["/k.pem", str(pinned / "care-home.pem"), str(own), str(DEMO_PUBLIC_KEY)]


def test_the_shipped_demo_bundle_is_signed_with_the_demo_key() -> None:
    with load_trusted_bundle(str(demo_bundle_path()), DaemonConfig()) as b:
        assert b.signed_by is not None


def test_a_changed_manifest_byte_is_refused_like_a_changed_model_byte(tmp_path: Path) -> None:
    root = tmp_path / "b"
    write_fake_bundle(root, small_contract())
    sign_bundle(root, DEMO_PRIVATE_KEY)
    with load_trusted_bundle(str(root), DaemonConfig()):
        pass
    m = json.loads((root / MANIFEST_NAME).read_text())
    m["class_names"] = m["class_names"][::-1]
    m["contract"]["class_names"] = m["contract"]["class_names"][::-1]
    (root / MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(BundleError) as e:
        load_trusted_bundle(str(root), DaemonConfig())
    assert e.value.reason == "signature"


def test_unsigned_needs_allow_unsigned_and_an_untrusted_signer_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "b"
    write_fake_bundle(root, small_contract())
    with pytest.raises(BundleError) as e:
        load_trusted_bundle(str(root), DaemonConfig())
    assert e.value.reason == "unsigned" and "edge-export sign" in str(e.value)
    with load_trusted_bundle(str(root), DaemonConfig(allow_unsigned=True)) as b:
        assert b.signed_by is None
    priv, _, _ = signing_keys(tmp_path)
    sign_bundle(root, priv)
    assert (root / SIGNATURE_NAME).is_file()
    with pytest.raises(BundleError):  # signed, but by a key this hub does not trust
        load_trusted_bundle(str(root), DaemonConfig(allow_unsigned=True))
