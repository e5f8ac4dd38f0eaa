"""edge.bundle_signature against an independent reference: signatures made with
``cryptography`` directly (not the exporter's code), key ids from hashlib, and the file
format ``manifest.sig`` as the module documents it (alg, key_id, base64 signature)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.bundle import MANIFEST_NAME, SIGNATURE_NAME, load_bundle
from edge.bundle_signature import check_signature, key_id, verify_manifest_signature
from edge.errors import BundleError
from tests.fakes.bundles import write_small_bundle


def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _raw(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _reference_key_id(private: Ed25519PrivateKey) -> str:
    """The documented key id: sha256 hex of the raw 32-byte public key, first 16 chars."""
    return hashlib.sha256(_raw(private)).hexdigest()[:16]


def _sign(root: Path, private: Ed25519PrivateKey, **override: object) -> dict[str, object]:
    """manifest.sig written by hand from the documented format."""
    sig: dict[str, object] = {
        "alg": "Ed25519",
        "key_id": _reference_key_id(private),
        "signature": base64.b64encode(private.sign((root / MANIFEST_NAME).read_bytes())).decode(
            "ascii"
        ),
    }
    sig.update(override)
    (root / SIGNATURE_NAME).write_text(json.dumps(sig))
    return sig


def _message(e: pytest.ExceptionInfo[BundleError]) -> str:
    """The error's own line, without the ``path: `` BundleError puts before it."""
    prefix = f"{e.value.path}: "
    assert str(e.value).startswith(prefix)
    return str(e.value)[len(prefix) :]


@pytest.fixture
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "b"
    write_small_bundle(r)
    return r


def test_key_id_is_sha256_of_the_raw_key_first_16_hex(signer: Ed25519PrivateKey) -> None:
    raw = _raw(signer)
    assert len(raw) == 32
    assert key_id(raw) == hashlib.sha256(raw).hexdigest()[:16]
    assert len(key_id(raw)) == 16


def test_a_signature_made_directly_verifies_with_every_key_form(
    root: Path, signer: Ed25519PrivateKey, tmp_path: Path
) -> None:
    _sign(root, signer)
    want = _reference_key_id(signer)
    pem = _pem(signer)
    path = tmp_path / "signer.pub.pem"
    path.write_bytes(pem)
    other = _pem(Ed25519PrivateKey.generate())
    # bytes, text (leading whitespace as a config file may keep it), a path, a str path
    for k in (pem, "\n  " + pem.decode("ascii"), path, str(path)):
        with load_bundle(root, trusted_keys=[other, k], require_signature=True) as b:
            assert b.signed_by == want, k


def test_verify_returns_the_verifying_keys_id_not_the_claimed_one(
    signer: Ed25519PrivateKey,
) -> None:
    manifest = b'{"schema_version": 1}'
    sig = signer.sign(manifest)
    got = verify_manifest_signature(manifest, sig, "0" * 16, [_pem(signer)], where="w")
    assert got == _reference_key_id(signer)


def test_no_keys_and_not_required_skips_the_check_and_says_so(
    root: Path, signer: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    raw = (root / MANIFEST_NAME).read_bytes()
    with caplog.at_level(logging.INFO, logger="edge.bundle"):
        assert check_signature(root, raw, [], False) is None  # unsigned: nothing to say
    assert not caplog.records
    _sign(root, signer)
    with caplog.at_level(logging.INFO, logger="edge.bundle"):
        assert check_signature(root, raw, [], False) is None
    (rec,) = caplog.records
    assert rec.levelno == logging.INFO and rec.name == "edge.bundle"
    assert rec.getMessage() == (
        f"{root / SIGNATURE_NAME} present but no trusted keys configured: signature not checked"
    )


def test_required_without_keys_names_the_signature_path(root: Path) -> None:
    raw = (root / MANIFEST_NAME).read_bytes()
    with pytest.raises(BundleError) as e:
        check_signature(root, raw, [], True)
    assert e.value.reason == "no_trusted_keys" and e.value.path == str(root / SIGNATURE_NAME)
    assert _message(e) == "a signature is required but no trusted public keys are configured"


def test_unsigned_with_keys_says_how_to_sign(root: Path, signer: Ed25519PrivateKey) -> None:
    with pytest.raises(BundleError) as e:
        check_signature(root, b"{}", [_pem(signer)], False)
    assert e.value.reason == "unsigned" and e.value.path == str(root / SIGNATURE_NAME)
    assert _message(e).startswith("bundle is unsigned: sign it with `edge-export sign BUNDLE`")
    assert _message(e).endswith("run with --allow-unsigned)")


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"alg": "RSA"}, "unsupported alg 'RSA'"),
        ({"alg": None}, "unsupported alg None"),
        ({"signature": 7}, ""),  # b64decode of an int: TypeError
    ],
)
def test_malformed_signature_files_are_refused(
    root: Path, signer: Ed25519PrivateKey, override: dict[str, object], why: str
) -> None:
    _sign(root, signer, **override)
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=[_pem(signer)])
    assert e.value.reason == "signature" and e.value.path == str(root / SIGNATURE_NAME)
    assert _message(e).startswith("malformed signature file: ")
    assert _message(e).endswith(why)


@pytest.mark.parametrize("content", ["[1, 2]", '{"alg": "Ed25519"}', '"x"', "{"])
def test_signature_files_of_the_wrong_shape_are_refused(
    root: Path, signer: Ed25519PrivateKey, content: str
) -> None:
    (root / SIGNATURE_NAME).write_text(content)
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=[_pem(signer)])
    assert e.value.reason == "signature"
    assert _message(e).startswith("malformed signature file: ")


def test_base64_is_read_strictly(root: Path, signer: Ed25519PrivateKey) -> None:
    # a valid signature with a character outside the base64 alphabet in it: a lenient
    # decoder would drop the character and accept; the format is strict base64
    good = _sign(root, signer)
    text = str(good["signature"])
    _sign(root, signer, signature=text[:8] + "!" + text[8:])
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=[_pem(signer)])
    assert e.value.reason == "signature" and _message(e).startswith("malformed signature file")
    _sign(root, signer)
    assert load_bundle(root, trusted_keys=[_pem(signer)]).signed_by == _reference_key_id(signer)


def test_a_signature_no_trusted_key_verifies_names_the_claimed_id_and_the_count(
    root: Path, signer: Ed25519PrivateKey
) -> None:
    others = [_pem(Ed25519PrivateKey.generate()) for _ in range(2)]
    _sign(root, signer)
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=others)
    assert e.value.reason == "signature" and e.value.path == str(root / SIGNATURE_NAME)
    msg = _message(e)
    assert msg.startswith(
        f"signature (key id {_reference_key_id(signer)}) does not verify "
        "against any of the 2 trusted key(s): manifest changed, or signed by"
    )
    assert msg.endswith("--trusted-key FILE or /etc/wearable-edge/trusted-keys/)")
    sig = json.loads((root / SIGNATURE_NAME).read_text())
    del sig["key_id"]  # optional for verification: the message then says "?"
    (root / SIGNATURE_NAME).write_text(json.dumps(sig))
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=others[:1])
    assert _message(e).startswith("signature (key id ?) does not verify against any of the 1 ")


def test_trusted_keys_that_are_not_ed25519_pem_keys_are_refused(
    root: Path, signer: Ed25519PrivateKey, tmp_path: Path
) -> None:
    _sign(root, signer)
    not_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=[not_pem, _pem(signer)])
    assert e.value.reason == "signature" and e.value.path == str(root / SIGNATURE_NAME)
    assert _message(e).startswith("trusted key is not a PEM public key: ")
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=[ec_pem, _pem(signer)])
    assert e.value.reason == "signature" and e.value.path == str(root / SIGNATURE_NAME)
    assert _message(e) == "trusted key is not an Ed25519 key"
    missing = tmp_path / "no-such.pub.pem"
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=[missing, _pem(signer)])
    assert e.value.reason == "signature" and e.value.path == str(root / SIGNATURE_NAME)
    assert _message(e).startswith(f"cannot read trusted key {missing}: ")


def test_without_cryptography_the_error_says_what_to_install(
    signer: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.exceptions", None)  # import now fails
    manifest = b"{}"
    with pytest.raises(BundleError) as e:
        verify_manifest_signature(manifest, signer.sign(manifest), "", [_pem(signer)], where="w")
    assert e.value.reason == "crypto_missing" and e.value.path == "w"
    assert _message(e) == (
        "checking bundle signatures needs the 'cryptography' package: "
        "pip install 'wearable-edge[signing]' (or pip install cryptography)"
    )
