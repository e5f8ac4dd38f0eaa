"""edge.update_check: a head update's signature and hashes verified, a tampered one refused
in one line; a head or bundle that does not fit the running model refused as incompatible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.bundle import load_bundle
from edge.personal.service import shared_head
from edge.update_check import (
    UpdateError,
    check_bundle_compatible,
    check_head_compatible,
    load_head_update,
)
from export.bundle_writer import write_manifest
from export.head_update import write_head_update
from tests.fakes.bundles import write_fake_bundle
from tests.fakes.inputs import small_contract
from tests.fakes.updates import head_update


def test_signed_head_update_verifies(tmp_path: Path, bundle_dir: Path, keys: Any) -> None:
    u = load_head_update(head_update(tmp_path, bundle_dir, keys[0]), [keys[1]])
    assert (u.model_id, u.version, u.base_model_version) == ("m", "round-1", "0")
    assert u.W.shape == (8, 3) and u.signed_by is not None
    with load_bundle(bundle_dir) as b:
        check_head_compatible(u, b)


@pytest.mark.parametrize("tamper", ["head", "manifest", "unsigned", "other_key", "sig"])
def test_tampered_head_update_is_refused_in_one_line(
    tmp_path: Path, bundle_dir: Path, keys: Any, tamper: str
) -> None:
    path = head_update(tmp_path, bundle_dir, None if tamper == "unsigned" else keys[0])
    trusted = [keys[2] if tamper == "other_key" else keys[1]]
    if tamper == "head":
        data = bytearray((path / "head.npz").read_bytes())
        data[-40] ^= 0x01
        (path / "head.npz").write_bytes(bytes(data))
    elif tamper == "manifest":
        m = json.loads((path / "update.json").read_text())
        m["version"] = "round-9"
        (path / "update.json").write_text(json.dumps(m))
    elif tamper == "sig":
        (path / "update.sig").write_text("{not json")
    with pytest.raises(UpdateError) as e:
        load_head_update(path, trusted)
    assert e.value.reason == ("hash" if tamper == "head" else "signature")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("change", ["classes", "contract", "dim", "version", "model_id"])
def test_incompatible_head_update_is_refused(tmp_path: Path, keys: Any, change: str) -> None:
    write_fake_bundle(tmp_path / "running", small_contract(), embedding_dim=8, model_id="m")
    other = small_contract()
    kw: dict[str, Any] = {"embedding_dim": 8, "model_id": "m"}
    if change == "dim":
        kw["embedding_dim"] = 6
    elif change == "model_id":
        kw["model_id"] = "n"
    m = write_fake_bundle(tmp_path / "trained_on", other, **kw)
    if change == "classes":
        m["class_names"] = ["calm", "stress", "amusement"]
        m["contract"]["class_names"] = m["class_names"]
    if change == "contract":
        m["contract"]["hop_s"] = 2.0  # windows cut otherwise: embeddings of other windows
    if change == "version":
        m["model_version"] = "1"
    write_manifest(tmp_path / "trained_on", m)
    with load_bundle(tmp_path / "trained_on") as b:
        head = shared_head(b)
        assert head is not None
        path = write_head_update(
            tmp_path / "u", head.W, head.b, bundle=b, version="r", sign_key=keys[0]
        )
    u = load_head_update(path, [keys[1]])
    with load_bundle(tmp_path / "running") as running, pytest.raises(UpdateError) as e:
        check_head_compatible(u, running)
    says = {
        "classes": "classes calm, stress, amusement differ",
        "contract": "input contract differs",
        "dim": "embedding size 6",
        "version": "model version 1",
        "model_id": "for model 'n'",
    }[change]
    assert e.value.reason == "incompatible" and says in str(e.value)


def test_bundle_update_compatibility(tmp_path: Path) -> None:
    write_fake_bundle(tmp_path / "a", small_contract(), embedding_dim=8, model_id="m")
    write_fake_bundle(tmp_path / "b", small_contract(), embedding_dim=6, model_id="m")
    write_fake_bundle(tmp_path / "c", small_contract(), embedding_dim=8, model_id="x")
    for name, key, value in (
        ("d", "class_names", ["calm", "stress", "amusement"]),
        ("e", "hop_s", 2.0),
    ):
        m = write_fake_bundle(tmp_path / name, small_contract(), embedding_dim=8, model_id="m")
        m["contract"][key] = value
        if key == "class_names":
            m["class_names"] = value
        write_manifest(tmp_path / name, m)
    with (
        load_bundle(tmp_path / "a") as a,
        load_bundle(tmp_path / "b") as b,
        load_bundle(tmp_path / "c") as c,
        load_bundle(tmp_path / "d") as d,
        load_bundle(tmp_path / "e") as e,
    ):
        check_bundle_compatible(a, a)
        with pytest.raises(UpdateError, match="embedding size 6"):
            check_bundle_compatible(b, a)
        with pytest.raises(UpdateError, match="for model 'x'"):
            check_bundle_compatible(c, a)
        with pytest.raises(UpdateError, match="classes calm, stress, amusement differ"):
            check_bundle_compatible(d, a)
        with pytest.raises(UpdateError, match="input contract differs") as err:
            check_bundle_compatible(e, a)
        assert err.value.reason == "incompatible" and "\n" not in str(err.value)
