"""edge.bundle: verification of schema, sizes, hashes, archives and Ed25519 signatures.

Most tests use a bundle whose model files are random bytes (the loader never parses them);
the signature tests sign with the real exporter code (export.signing).
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import edge.bundle as bundle_mod
from edge.bundle import MANIFEST_NAME, SIGNATURE_NAME, load_bundle
from edge.errors import BundleError, EdgeError
from export.bundle_writer import write_archive
from export.signing import sign_bundle
from tests.fakes.bundles import (
    bundle_archive,
    exercise_bundle,
    private_tempdir,
    signing_keys,
    tar_bytes,
    write_fake_bundle,
    write_small_bundle,
)
from tests.fakes.runs import toy_contract
from tests.strategies import (
    FAST_PARSER,
    FILE_PARSER,
    byte_mutated,
    examples,
    member_kinds,
    member_names,
    mutated,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    write_fake_bundle(root, toy_contract())
    return root


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return signing_keys(tmp_path_factory.mktemp("keys"))


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


# -- malformed input ends in a typed error (property tests; regressions: test_regression_*) --
_MODEL_FILES: Final = {
    "onnx_fp32": "model_fp32.onnx",
    "onnx_int8": "model_int8.onnx",
    "tflite_fp32": "model_fp32.tflite",
    "tflite_int8": "model_int8.tflite",
}


@pytest.fixture(scope="module")
def fuzz_bundle(workdir: Path) -> tuple[Path, dict[str, Any]]:
    root = workdir / "bundle"
    manifest = write_small_bundle(root)
    load_bundle(root).close()  # the base is valid: every failure below is the mutation's
    return root, manifest


@examples(3 * FAST_PARSER)
@given(data=st.data())
def test_load_bundle_with_mutated_manifest(
    fuzz_bundle: tuple[Path, dict[str, Any]], data: st.DataObject
) -> None:
    root, manifest = fuzz_bundle
    where = data.draw(st.sampled_from(["anywhere", "contract", "files", "tensor"]))
    if where == "anywhere":
        m = data.draw(mutated(manifest))
    elif where == "contract":
        m = {**manifest, "contract": data.draw(mutated(manifest["contract"]))}
    elif where == "files":
        m = {**manifest, "files": data.draw(mutated(manifest["files"]))}
    else:
        key = data.draw(st.sampled_from(sorted(_MODEL_FILES)))
        entry = data.draw(mutated(manifest["files"][key]))
        m = {**manifest, "files": {**manifest["files"], key: entry}}
    raw = json.dumps(m).encode()
    if data.draw(st.booleans()):
        raw = data.draw(byte_mutated(raw))
    try:
        (root / MANIFEST_NAME).write_bytes(raw)
        exercise_bundle(root)
    finally:
        (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))


@examples(2 * FILE_PARSER)
@given(
    st.lists(
        st.tuples(
            member_names,
            member_kinds,
            st.binary(max_size=64),
            st.sampled_from(["/etc/passwd", "../../x", "manifest.json", "model_fp32.onnx"]),
        ),
        max_size=6,
    )
)
def test_load_bundle_archive_of_hostile_members(
    workdir: Path, members: list[tuple[str, bytes, bytes, str]]
) -> None:
    archive = workdir / "hostile.tar"
    try:
        archive.write_bytes(tar_bytes(members))
    except (ValueError, UnicodeError, tarfile.TarError):
        assume(False)  # tarfile itself cannot write this member list
    with private_tempdir(workdir / "tmp") as tmp:
        exercise_bundle(archive)
        # nothing escaped the bundle's private directory, and that directory is gone
        assert list(tmp.iterdir()) == []


@pytest.fixture(scope="module")
def bundle_tars(fuzz_bundle: tuple[Path, dict[str, Any]], workdir: Path) -> dict[str, bytes]:
    """The valid bundle as a plain, gzip and xz archive (load_bundle opens all three)."""
    root, _ = fuzz_bundle
    out = {}
    for mode in ("w", "w:gz", "w:xz"):
        out[mode] = bundle_archive(root, mode)
        path = workdir / "good.tar"
        path.write_bytes(out[mode])
        load_bundle(path).close()
    return out


@examples(3 * FILE_PARSER)
@given(data=st.data())
def test_load_bundle_archive_with_mutated_bytes(
    bundle_tars: dict[str, bytes], workdir: Path, data: st.DataObject
) -> None:
    good = bundle_tars[data.draw(st.sampled_from(sorted(bundle_tars)))]
    raw = data.draw(byte_mutated(good, n_max=6))
    archive = workdir / "mutated.tar"
    archive.write_bytes(raw)
    with private_tempdir(workdir / "tmp"):
        exercise_bundle(archive)


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_regression_corrupt_compressed_archive(tmp_path: Path, mode: str, damage: str) -> None:
    # gzip/bz2/lzma raise EOFError and LZMAError, which tarfile lets through
    root = tmp_path / "b"
    write_small_bundle(root)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        tar.add(root, arcname="b")
    raw = bytearray(buf.getvalue())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2] ^= 0xFF
    archive = tmp_path / "b.tar"
    archive.write_bytes(bytes(raw))
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    # gzip checks its CRC only at the end, which tarfile may never read: a flipped byte can
    # surface as a model file whose hash is wrong, still refused
    assert e.value.reason in ("archive", "hash_mismatch", "manifest", "missing_file")


def _write_manifest(root: Path, manifest: Any) -> None:
    (root / MANIFEST_NAME).write_text(json.dumps(manifest))


def _with_entry(manifest: dict[str, Any], key: str, **change: Any) -> dict[str, Any]:
    files = json.loads(json.dumps(manifest["files"]))
    files[key].update(change)
    return {**manifest, "files": files}


@pytest.mark.parametrize(
    "case",
    ["deep", "long_int", "output_not_object", "size_inf", "long_path", "empty_shape",
     "accuracy_list", "window_inf"],
)
def test_regression_manifest_malformations_are_bundle_errors(tmp_path: Path, case: str) -> None:
    root = tmp_path / "b"
    manifest = write_small_bundle(root)
    raw: bytes | None = None
    if case == "deep":
        raw = b"[" * 100_000  # RecursionError from json
    elif case == "long_int":
        raw = b'{"schema_version": 1' + b"0" * 5000 + b"}"  # int digit limit: plain ValueError
    elif case == "output_not_object":
        manifest = _with_entry(manifest, "onnx_int8", output=True)  # .get on a bool
    elif case == "size_inf":
        manifest = _with_entry(manifest, "onnx_fp32", size=math.inf)  # int(inf)
    elif case == "long_path":
        manifest = _with_entry(manifest, "onnx_fp32", path="1" * 400)  # ENAMETOOLONG from is_file
    elif case == "empty_shape":
        manifest = _with_entry(manifest, "onnx_fp32", input={"name": "x", "shape": [], "dtype": "float32"})
    elif case == "accuracy_list":
        manifest = _with_entry(manifest, "onnx_fp32", accuracy=[1])
    else:
        manifest = {**manifest, "contract": {**manifest["contract"], "window_s": math.inf}}
    if raw is None:
        _write_manifest(root, manifest)
    else:
        (root / MANIFEST_NAME).write_bytes(raw)
    with pytest.raises(BundleError) as e:
        load_bundle(root)
    assert e.value.reason in ("manifest", "schema", "contract", "missing_file")


def test_regression_recommended_of_unhashable_value_is_none(tmp_path: Path) -> None:
    root = tmp_path / "b"
    _write_manifest(root, {**write_small_bundle(root), "recommended": ["tflite_int8"]})
    with load_bundle(root) as b:
        assert b.recommended is None


def test_regression_signature_file_deeply_nested(tmp_path: Path) -> None:
    root = tmp_path / "b"
    write_small_bundle(root)
    (root / "manifest.sig").write_bytes(b"{\"a\": " * 50_000)
    key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(BundleError) as e:
        load_bundle(root, trusted_keys=[key])
    assert e.value.reason == "signature"


def test_regression_archive_larger_than_the_limit_is_refused_before_extraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a compressed archive inflates to far more than its own size: refuse by declared size
    root = tmp_path / "b"
    write_small_bundle(root)
    (root / "plots").mkdir()
    (root / "plots" / "big.png").write_bytes(b"\0" * (3 << 20))
    archive = tmp_path / "b.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="b")
    assert archive.stat().st_size < (1 << 20)
    load_bundle(archive).close()  # under the real limit it loads
    monkeypatch.setattr(bundle_mod, "_MAX_ARCHIVE_BYTES", 2 << 20)
    with private_tempdir(tmp_path / "tmp") as tmp, pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive"
    assert list(tmp.iterdir()) == []


def test_regression_archive_with_too_many_members_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = [(f"b/empty{i}", tarfile.REGTYPE, b"", "") for i in range(50)]
    archive = tmp_path / "many.tar"
    archive.write_bytes(tar_bytes(members))
    monkeypatch.setattr(bundle_mod, "_MAX_ARCHIVE_MEMBERS", 20)
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive" and "members" in str(e.value)


# -- the checks isolated: a same-size valid model swapped in, a link tarfile allows (issue 18) --
def _tiny_onnx(n_in: int, n_out: int, weight: float) -> bytes:
    """A valid ONNX graph, logits = x @ W with every weight ``weight``: models that differ
    only in ``weight`` have the same size and both load in ONNX Runtime."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((n_in, n_out), weight, np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, n_out])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime of the hub install reads
    return model.SerializeToString()


def test_regression_read_verified_rehashes_a_same_size_valid_model(bundle: Path) -> None:
    from edge.engines.onnx import OnnxEngine
    from edge.errors import EngineError
    from export.bundle_writer import write_manifest

    c = toy_contract()
    good = _tiny_onnx(c.input_length, c.n_classes, 0.01)
    evil = _tiny_onnx(c.input_length, c.n_classes, -0.01)
    assert len(evil) == len(good) and evil != good
    path = bundle / "model_fp32.onnx"
    path.write_bytes(good)
    m = json.loads((bundle / MANIFEST_NAME).read_text())
    m["files"]["onnx_fp32"].update(size=len(good), sha256=bundle_mod.sha256_file(path))
    write_manifest(bundle, m)
    b = load_bundle(bundle)
    assert b.read_verified("onnx_fp32") == good
    path.write_bytes(evil)  # swapped after load, before an engine reads it
    import onnxruntime as ort

    ort.InferenceSession(evil, providers=["CPUExecutionProvider"])  # a model ORT would run
    with pytest.raises(BundleError) as e:
        b.read_verified("onnx_fp32")
    assert e.value.reason == "hash_mismatch" and e.value.path == str(path)
    with pytest.raises(EngineError, match="changed since the bundle was loaded"):
        OnnxEngine(b, "onnx_fp32")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_regression_archive_link_inside_the_bundle_is_refused_by_our_own_check(
    bundle: Path, tmp_path: Path, kind: bytes
) -> None:
    # A relative link to a member inside the archive passes tarfile's filter="data"; only the
    # project's "regular files and directories only" check refuses it. The link points at a
    # copy of the real model, so without that check the bundle would load and verify.
    real = (bundle / "model_fp32.onnx").read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(bundle.iterdir()):
            if p.name != "model_fp32.onnx":
                tar.add(p, arcname=f"bundle/{p.name}")
        blob = tarfile.TarInfo("bundle/blobs/model.bin")
        blob.size = len(real)
        tar.addfile(blob, io.BytesIO(real))
        link = tarfile.TarInfo("bundle/model_fp32.onnx")
        link.type = kind
        link.linkname = "blobs/model.bin" if kind == tarfile.SYMTYPE else "bundle/blobs/model.bin"
        tar.addfile(link)
    archive = tmp_path / "linked.tar"
    archive.write_bytes(buf.getvalue())
    dest = tmp_path / "dest"
    dest.mkdir()
    with tarfile.open(archive) as tar:  # tarfile's own filter lets every member through
        for member in tar.getmembers():
            tarfile.data_filter(member, str(dest))
        tar.extractall(dest, filter="data")
    assert load_bundle(dest / "bundle").read_verified("onnx_fp32") == real
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive" and "link or device" in str(e.value)
