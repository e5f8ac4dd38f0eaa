"""edge.bundle: verification of schema, sizes, hashes, archives and Ed25519 signatures.

Most tests use a bundle whose model files are random bytes (the loader never parses them);
the signature tests sign with the real exporter code (export.signing).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edge.bundle import MANIFEST_NAME, SIGNATURE_NAME, load_bundle
from edge.errors import BundleError, EdgeError
from export.bundle_writer import write_archive
from export.signing import generate_keypair, sign_bundle
from tests.fakes.runs import toy_contract, write_fake_bundle

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    write_fake_bundle(root)
    return root


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("keys")
    generate_keypair(d / "a.pem", d / "a.pub.pem")
    generate_keypair(d / "b.pem", d / "b.pub.pem")
    return d / "a.pem", d / "a.pub.pem", d / "b.pub.pem"


def _rewrite_manifest(root: Path, **changes: object) -> None:
    m = json.loads((root / MANIFEST_NAME).read_text())
    m.update(changes)
    (root / MANIFEST_NAME).write_text(json.dumps(m))


def test_good_bundle_loads_and_exposes_contract(bundle: Path) -> None:
    b = load_bundle(bundle)
    assert b.contract == toy_contract()
    assert b.class_names == ("baseline", "stress", "amusement")
    assert set(b.files) == {"onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8"}
    assert b.path_of("tflite_int8") == bundle / "model_int8.tflite"
    assert b.files["tflite_int8"].input.quantized and b.files["tflite_int8"].input.zero_point == 0
    assert b.recommended == "tflite_int8"
    assert b.calibration_required
    assert b.read_verified("onnx_fp32") == (bundle / "model_fp32.onnx").read_bytes()


@pytest.mark.parametrize("name", ["model_fp32.onnx", "model_int8.onnx", "model_fp32.tflite", "model_int8.tflite"])
def test_one_changed_byte_is_refused_naming_the_file(bundle: Path, name: str) -> None:
    path = bundle / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "hash_mismatch"
    assert e.value.path == str(path)
    assert name in str(e.value)


def test_missing_file_is_refused(bundle: Path) -> None:
    (bundle / "model_int8.tflite").unlink()
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "missing_file"
    assert e.value.path.endswith("model_int8.tflite")


def test_truncated_file_is_refused_as_size_mismatch(bundle: Path) -> None:
    path = bundle / "model_fp32.onnx"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "size_mismatch"


def test_missing_manifest_is_refused(bundle: Path) -> None:
    (bundle / MANIFEST_NAME).unlink()
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "missing_file" and e.value.path.endswith(MANIFEST_NAME)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unknown_schema_version_is_refused(bundle: Path, version: object) -> None:
    _rewrite_manifest(bundle, schema_version=version)
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "schema"


def test_manifest_not_matching_files_is_refused(bundle: Path) -> None:
    m = json.loads((bundle / MANIFEST_NAME).read_text())
    m["files"]["onnx_int8"]["sha256"] = "0" * 64
    (bundle / MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "hash_mismatch" and e.value.path.endswith("model_int8.onnx")


def test_manifest_with_bad_contract_or_io_is_refused(bundle: Path) -> None:
    m = json.loads((bundle / MANIFEST_NAME).read_text())
    m["contract"]["hop_s"] = 0
    (bundle / MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "contract"


def test_int8_tensor_without_scale_is_refused(bundle: Path) -> None:
    m = json.loads((bundle / MANIFEST_NAME).read_text())
    del m["files"]["tflite_int8"]["input"]["scale"]
    (bundle / MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "manifest"


def test_manifest_paths_cannot_leave_the_bundle(bundle: Path) -> None:
    m = json.loads((bundle / MANIFEST_NAME).read_text())
    m["files"]["onnx_fp32"]["path"] = "../outside.onnx"
    (bundle / MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "manifest"


def test_not_json_manifest_is_refused(bundle: Path) -> None:
    (bundle / MANIFEST_NAME).write_bytes(b"\xff{not json")
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    assert e.value.reason == "manifest"
    assert isinstance(e.value, EdgeError)


def test_archive_round_trip_and_cleanup(bundle: Path, tmp_path: Path) -> None:
    archive = write_archive(bundle, tmp_path / "bundle.tar")
    with load_bundle(archive) as b:
        extracted = b.root
        assert extracted != bundle and (extracted / "model_int8.tflite").is_file()
        assert b.read_verified("tflite_int8") == (bundle / "model_int8.tflite").read_bytes()
    assert not extracted.exists()  # the private extraction is removed on close


def test_archive_with_tampered_member_is_refused(bundle: Path, tmp_path: Path) -> None:
    (bundle / "model_fp32.tflite").write_bytes(b"\x00" * 2048)
    archive = write_archive(bundle, tmp_path / "bundle.tar")
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "hash_mismatch" and e.value.path.endswith("model_fp32.tflite")


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt"])
def test_archive_path_traversal_is_refused(bundle: Path, tmp_path: Path, member: str) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(bundle / MANIFEST_NAME, arcname=MANIFEST_NAME)
        info = tarfile.TarInfo(member)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive"
    assert not (tmp_path / "evil.txt").exists()


def test_archive_with_symlink_is_refused(bundle: Path, tmp_path: Path) -> None:
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(bundle / MANIFEST_NAME, arcname=MANIFEST_NAME)
        info = tarfile.TarInfo("model_fp32.onnx")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive"


def test_nonexistent_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as e:
        load_bundle(tmp_path / "nope")
    assert e.value.reason == "not_found"


# -- signatures -----------------------------------------------------------------------------
def test_good_signed_bundle_is_accepted(bundle: Path, keys: tuple[Path, Path, Path]) -> None:
    priv, pub, other_pub = keys
    kid = sign_bundle(bundle, priv)
    b = load_bundle(bundle, trusted_keys=[other_pub, pub], require_signature=True)
    assert b.signed_by == kid
    # a PEM given as text works as well as a path
    assert load_bundle(bundle, trusted_keys=[pub.read_text()]).signed_by == kid


def test_signature_by_untrusted_key_is_refused(bundle: Path, keys: tuple[Path, Path, Path]) -> None:
    priv, _, other_pub = keys
    sign_bundle(bundle, priv)
    with pytest.raises(BundleError) as e:
        load_bundle(bundle, trusted_keys=[other_pub])
    assert e.value.reason == "signature" and e.value.path.endswith(SIGNATURE_NAME)


def test_manifest_changed_after_signing_is_refused(bundle: Path, keys: tuple[Path, Path, Path]) -> None:
    priv, pub, _ = keys
    sign_bundle(bundle, priv)
    _rewrite_manifest(bundle, model_version="tampered")
    with pytest.raises(BundleError) as e:
        load_bundle(bundle, trusted_keys=[pub])
    assert e.value.reason == "signature"


def test_changed_model_file_in_signed_bundle_is_refused(bundle: Path, keys: tuple[Path, Path, Path]) -> None:
    priv, pub, _ = keys
    sign_bundle(bundle, priv)
    (bundle / "model_int8.onnx").write_bytes(b"\x01" * 2048)
    with pytest.raises(BundleError) as e:
        load_bundle(bundle, trusted_keys=[pub])
    assert e.value.reason == "hash_mismatch"


def test_unsigned_bundle_with_trusted_keys_is_refused(bundle: Path, keys: tuple[Path, Path, Path]) -> None:
    with pytest.raises(BundleError) as e:
        load_bundle(bundle, trusted_keys=[keys[1]])
    assert e.value.reason == "unsigned"


def test_require_signature_without_keys_is_refused(bundle: Path, keys: tuple[Path, Path, Path]) -> None:
    sign_bundle(bundle, keys[0])
    with pytest.raises(BundleError) as e:
        load_bundle(bundle, require_signature=True)
    assert e.value.reason == "no_trusted_keys"


def test_corrupt_signature_file_is_refused(bundle: Path, keys: tuple[Path, Path, Path]) -> None:
    (bundle / SIGNATURE_NAME).write_text('{"alg": "Ed25519", "signature": "!!notbase64"}')
    with pytest.raises(BundleError) as e:
        load_bundle(bundle, trusted_keys=[keys[1]])
    assert e.value.reason == "signature"


def test_signed_archive_verifies(bundle: Path, keys: tuple[Path, Path, Path], tmp_path: Path) -> None:
    kid = sign_bundle(bundle, keys[0])
    with load_bundle(write_archive(bundle, tmp_path / "b.tar"), trusted_keys=[keys[1]]) as b:
        assert b.signed_by == kid


def test_missing_cryptography_names_what_to_install(bundle: Path, keys: tuple[Path, Path, Path]) -> None:
    sign_bundle(bundle, keys[0])
    code = (
        "import sys\n"
        "sys.modules['cryptography'] = None\n"  # any `import cryptography...` now fails
        "from edge.bundle import load_bundle\n"
        "from edge.errors import BundleError\n"
        "try:\n"
        f"    load_bundle({str(bundle)!r}, trusted_keys=[{str(keys[1])!r}])\n"
        "except BundleError as e:\n"
        "    print(e.reason, '|', e)\n"
        "load_bundle(" + repr(str(bundle)) + ")\n"  # without keys no crypto is needed
        "print('unverified-ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.startswith("crypto_missing |") and "pip install" in out
    assert "unverified-ok" in out


def test_copy_of_bundle_is_independent(bundle: Path, tmp_path: Path) -> None:
    # a sanity check of the fixture itself: tampering with a copy leaves the original valid
    copy = shutil.copytree(bundle, tmp_path / "copy")
    (copy / "model_fp32.onnx").write_bytes(b"")
    load_bundle(bundle)
    with pytest.raises(BundleError):
        load_bundle(copy)
