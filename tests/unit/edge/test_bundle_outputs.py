"""edge.bundle: the embedding output and head.npz (outputs/head in the manifest) are
verified like model files, and a bundle without them still loads."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.errors import BundleError
from export.bundle_writer import write_manifest
from export.signing import sign_bundle
from tests.fakes.bundles import signing_keys, write_fake_bundle
from tests.fakes.inputs import small_contract


def test_bundle_with_embedding_exposes_its_size_and_head(tmp_path: Path) -> None:
    write_fake_bundle(tmp_path / "b", small_contract(), embedding_dim=8)
    with load_bundle(tmp_path / "b") as b:
        assert b.embedding_dim == 8
        assert all(
            e.embedding is not None and e.embedding.shape == (1, 8) for e in b.files.values()
        )
        with np.load(io.BytesIO(b.read_head())) as z:
            assert z["W"].shape == (8, small_contract().n_classes)


def test_bundle_without_embedding_loads_and_says_it_has_no_head(tmp_path: Path) -> None:
    write_fake_bundle(tmp_path / "b", small_contract(), embedding_dim=None)
    with load_bundle(tmp_path / "b") as b:
        assert b.embedding_dim is None
        assert all(e.embedding is None for e in b.files.values())
        with pytest.raises(BundleError, match="no embedding output"):
            b.read_head()


def test_changed_head_is_refused_even_when_signed(tmp_path: Path) -> None:
    priv, pub, _ = signing_keys(tmp_path)
    write_fake_bundle(tmp_path / "b", small_contract())
    sign_bundle(tmp_path / "b", priv)
    data = bytearray((tmp_path / "b" / "head.npz").read_bytes())
    data[-30] ^= 0xFF
    (tmp_path / "b" / "head.npz").write_bytes(bytes(data))
    with pytest.raises(BundleError) as e:
        load_bundle(tmp_path / "b", trusted_keys=[pub], require_signature=True)
    assert e.value.reason == "hash_mismatch" and e.value.path.endswith("head.npz")


def test_missing_head_is_refused(tmp_path: Path) -> None:
    write_fake_bundle(tmp_path / "b", small_contract())
    (tmp_path / "b" / "head.npz").unlink()
    with pytest.raises(BundleError) as e:
        load_bundle(tmp_path / "b")
    assert e.value.reason == "missing_file"


@pytest.mark.parametrize("change", ["file_without_embedding", "wrong_size", "bad_outputs", "zero"])
def test_inconsistent_outputs_are_refused(tmp_path: Path, change: str) -> None:
    m = write_fake_bundle(tmp_path / "b", small_contract())
    if change == "file_without_embedding":
        del m["files"]["onnx_int8"]["embedding"]
    elif change == "wrong_size":
        m["files"]["tflite_int8"]["embedding"]["shape"] = [1, 9]
    elif change == "bad_outputs":
        m["outputs"] = "embedding"
    else:
        m["outputs"]["embedding"] = 0
    write_manifest(tmp_path / "b", m)
    with pytest.raises(BundleError) as e:
        load_bundle(tmp_path / "b")
    assert e.value.reason == "manifest"


def test_head_without_embedding_output_is_ignored(tmp_path: Path) -> None:
    m = write_fake_bundle(tmp_path / "b", small_contract())
    del m["outputs"]
    write_manifest(tmp_path / "b", m)
    with load_bundle(tmp_path / "b") as b:
        assert b.embedding_dim is None
    assert "head" in json.loads((tmp_path / "b" / "manifest.json").read_text())
