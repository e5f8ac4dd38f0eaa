"""edge.bundle against its documented rules, one rule per test, each at its boundary: the
archive limits (exactly at the limit loads, one over is refused), what the archive check
refuses by itself (not tarfile's filter), the error each refusal carries (reason, the file
at fault, the one line a user reads), head.npz and model files re-hashed on read, and the
shipped bundles' paths."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

import edge.bundle as bundle_mod
from edge.bundle import (
    MANIFEST_NAME,
    demo_bundle_path,
    demo_bundle_paths,
    hr_demo_bundle_path,
    load_bundle,
)
from edge.errors import BundleError
from export.bundle_writer import write_manifest
from tests.fakes.bundles import write_fake_bundle, write_small_bundle
from tests.fakes.runs import toy_contract

REPO = Path(__file__).resolve().parents[3]


def _message(e: pytest.ExceptionInfo[BundleError]) -> str:
    """The error's own line, without the ``path: `` BundleError puts before it."""
    prefix = f"{e.value.path}: "
    assert str(e.value).startswith(prefix)
    return str(e.value)[len(prefix) :]


def _tar(
    root: Path,
    archive: Path,
    *,
    extra: list[tarfile.TarInfo] = (),  # type: ignore[assignment]
    top: str = "b",
) -> Path:
    """Files of ``root`` under ``top/`` (no directory entries), then ``extra`` members."""
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                tar.add(p, arcname=f"{top}/{p.relative_to(root).as_posix()}", recursive=False)
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return archive


def _members(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return tar.getmembers()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "b"
    write_small_bundle(r)
    return r


# -- archive limits: at the limit loads, one over is refused ------------------------------------
def test_member_count_limit_is_inclusive(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _tar(root, tmp_path / "b.tar")
    n = len(_members(archive))
    monkeypatch.setattr(bundle_mod, "_MAX_ARCHIVE_MEMBERS", n)
    load_bundle(archive).close()
    monkeypatch.setattr(bundle_mod, "_MAX_ARCHIVE_MEMBERS", n - 1)
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive" and e.value.path == str(archive)
    assert _message(e) == f"more than {n - 1} members"


def test_byte_limit_is_on_the_sum_of_members_and_inclusive(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "plots").mkdir()
    (root / "plots" / "a.png").write_bytes(b"\0" * (3 << 19))  # 1.5 MiB, twice
    (root / "plots" / "b.png").write_bytes(b"\0" * (3 << 19))
    archive = _tar(root, tmp_path / "b.tar")
    sizes = [m.size for m in _members(archive)]
    total = sum(sizes)
    assert max(sizes) < (2 << 20) < total  # no one member is over 2 MiB; together they are
    monkeypatch.setattr(bundle_mod, "_MAX_ARCHIVE_BYTES", total)
    load_bundle(archive).close()
    monkeypatch.setattr(bundle_mod, "_MAX_ARCHIVE_BYTES", total - 1)
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive" and e.value.path == str(archive)
    monkeypatch.setattr(bundle_mod, "_MAX_ARCHIVE_BYTES", 2 << 20)
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.path == str(archive)
    assert _message(e) == "members add up to more than 2 MiB"


# -- what the project's own member check refuses, with its own message --------------------------
@pytest.mark.parametrize("name", ["b/../../evil.txt", "/abs/evil.txt", "b/a\x00b"])
def test_members_leaving_the_bundle_are_refused_by_name(
    root: Path, tmp_path: Path, name: str
) -> None:
    info = tarfile.TarInfo(name)
    info.size = 1
    info.pax_headers = {"path": name}  # a ustar name field would stop at the NUL
    archive = _tar(root, tmp_path / "b.tar", extra=[info])
    assert name in [m.name for m in _members(archive)]
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive" and e.value.path == str(archive)
    assert _message(e) == f"archive member {name!r} would leave the bundle"
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE]
)
def test_links_and_devices_are_refused_by_kind(root: Path, tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("b/thing")
    info.type = kind
    info.linkname = "b/manifest.json" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    archive = _tar(root, tmp_path / "b.tar", extra=[info])
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "archive" and e.value.path == str(archive)
    assert _message(e) == "archive member 'b/thing' is a link or device"


def test_extraction_drops_special_permission_bits(root: Path, tmp_path: Path) -> None:
    # the "data" filter: no setuid/setgid/sticky and no group/other write on extracted files
    archive = tmp_path / "b.tar"
    with tarfile.open(archive, "w") as tar:
        for p in sorted(root.iterdir()):
            info = tar.gettarinfo(p, arcname=f"b/{p.name}")
            info.mode = 0o6777
            with p.open("rb") as f:
                tar.addfile(info, f)
    with load_bundle(archive) as b:
        for p in b.root.iterdir():
            mode = stat.S_IMODE(p.stat().st_mode)
            assert not mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX), (p, oct(mode))
            assert not mode & (stat.S_IWGRP | stat.S_IWOTH), (p, oct(mode))


def test_without_tarfiles_filter_the_checked_members_still_extract_privately(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a Python whose tarfile has no data_filter (3.11.0-3.11.3) takes the other branch
    archive = _tar(root, tmp_path / "b.tar")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delattr(tarfile, "data_filter")
    with load_bundle(archive) as b:
        assert b.root != root and (b.root / MANIFEST_NAME).is_file()
        assert b.root.is_relative_to(Path(os.path.realpath(bundle_mod.tempfile.gettempdir())))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "b.tar"]  # nothing in cwd


def test_an_extra_top_level_directory_beside_the_bundle_is_allowed(
    root: Path, tmp_path: Path
) -> None:
    extra = tarfile.TarInfo("notes")
    extra.type = tarfile.DIRTYPE
    note = tarfile.TarInfo("notes/readme.txt")
    note.size = 3
    with load_bundle(_tar(root, tmp_path / "b.tar", extra=[extra, note])) as b:
        assert b.root.name == "b" and (b.root / MANIFEST_NAME).is_file()


def test_archive_without_a_manifest_says_so(root: Path, tmp_path: Path) -> None:
    (root / MANIFEST_NAME).unlink()
    archive = _tar(root, tmp_path / "b.tar")
    with pytest.raises(BundleError) as e:
        load_bundle(archive)
    assert e.value.reason == "missing_file" and e.value.path == str(archive)
    assert _message(e) == "archive holds no manifest.json"


# -- a file that is no archive: one line, from the first line of what tarfile said -------------
def test_not_an_archive_gives_tarfiles_first_line(tmp_path: Path) -> None:
    path = tmp_path / "x.tar"
    path.write_bytes(b"not a tar at all" * 40)
    with pytest.raises(BundleError) as e:
        load_bundle(path)
    assert e.value.reason == "archive" and e.value.path == str(path)
    assert _message(e) == (
        "not a bundle: neither a bundle directory nor a .tar of one "
        "(file could not be opened successfully)"
    )


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (tarfile.ReadError(), "ReadError"),  # no text: the type names it
        (tarfile.ReadError("bad header X:\nmore"), "bad header X"),  # first line, ':' dropped
        (EOFError("cut short:: "), "cut short:: "),  # only trailing colons go
    ],
)
def test_the_one_line_is_built_from_any_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, why: str
) -> None:
    path = tmp_path / "x.tar"
    path.write_bytes(b"\0")

    def refuse(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr(bundle_mod.tarfile, "open", refuse)
    with pytest.raises(BundleError) as e:
        load_bundle(path)
    assert _message(e) == f"not a bundle: neither a bundle directory nor a .tar of one ({why})"


# -- after load: model files and head.npz are hashed again on every read ------------------------
@pytest.fixture
def loaded(tmp_path: Path) -> bundle_mod.Bundle:
    write_fake_bundle(tmp_path / "b", toy_contract(), embedding_dim=8)
    return load_bundle(tmp_path / "b")


def test_read_head_rehashes_a_same_size_change(loaded: bundle_mod.Bundle) -> None:
    path = loaded.root / "head.npz"
    good = loaded.read_head()
    assert good == path.read_bytes()
    data = bytearray(good)
    data[-30] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError) as e:
        loaded.read_head()
    assert e.value.reason == "hash_mismatch" and e.value.path == str(path)
    assert _message(e) == "changed since the bundle was loaded"


def test_read_head_of_a_removed_head(loaded: bundle_mod.Bundle) -> None:
    path = loaded.root / "head.npz"
    path.unlink()
    with pytest.raises(BundleError) as e:
        loaded.read_head()
    assert e.value.reason == "missing_file" and e.value.path == str(path)
    assert _message(e).startswith("cannot read: [Errno 2]")


def test_a_head_without_outputs_is_no_head(tmp_path: Path) -> None:
    # the head applies to the embedding output: a manifest with "head" but no "outputs"
    # gives a bundle that has no embedding and whose head is never read
    root = tmp_path / "b"
    m = write_fake_bundle(root, toy_contract(), embedding_dim=8)
    del m["outputs"]
    write_manifest(root, m)
    with load_bundle(root) as b:
        assert b.embedding_dim is None and "head" in b.manifest
        with pytest.raises(BundleError) as e:
            b.read_head()
        assert e.value.reason == "missing_format" and e.value.path == str(root)
        assert _message(e) == (
            "this bundle has no embedding output and no head.npz (exported "
            "before personalization existed: re-export it)"
        )


def test_unknown_model_file_key_names_what_the_bundle_has(loaded: bundle_mod.Bundle) -> None:
    with pytest.raises(BundleError) as e:
        loaded.entry("onnx_fp16")
    assert e.value.reason == "missing_format" and e.value.path == str(loaded.source)
    assert _message(e) == (
        "no model file 'onnx_fp16'; this bundle has ['onnx_fp32', "
        "'onnx_int8', 'tflite_fp32', 'tflite_int8']"
    )


def test_close_is_idempotent(root: Path, tmp_path: Path) -> None:
    b = load_bundle(_tar(root, tmp_path / "b.tar"))
    extracted = b.root
    b.close()
    b.close()
    with b:
        pass
    assert not extracted.exists()


# -- the shipped bundles -----------------------------------------------------------------------
def test_shipped_bundle_paths() -> None:
    assert demo_bundle_path() == REPO / "edge" / "demo_bundle"
    assert hr_demo_bundle_path() == REPO / "edge" / "hr_demo_bundle"
    assert demo_bundle_paths() == (REPO / "edge" / "demo_bundle", REPO / "edge" / "hr_demo_bundle")


def test_read_verified_of_a_removed_model_file(loaded: bundle_mod.Bundle) -> None:
    path = loaded.root / "model_fp32.onnx"
    path.unlink()
    with pytest.raises(BundleError) as e:
        loaded.read_verified("onnx_fp32")
    assert e.value.reason == "missing_file" and e.value.path == str(path)
    assert _message(e).startswith("cannot read: [Errno 2]")


def test_the_bundle_keeps_what_it_was_loaded_from(root: Path, tmp_path: Path) -> None:
    with load_bundle(root) as b:
        assert b.source == root and b.root == root
        assert (b.files["onnx_fp32"].input.name, b.files["onnx_fp32"].output.name) == (
            "x",
            "logits",
        )
    archive = _tar(root, tmp_path / "b.tar")
    with load_bundle(archive) as b:
        assert b.source == archive and b.root != root


def test_read_verified_rehashes_a_same_size_change(loaded: bundle_mod.Bundle) -> None:
    path = loaded.root / "model_int8.onnx"
    data = bytearray(path.read_bytes())
    data[7] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError) as e:
        loaded.read_verified("onnx_int8")
    assert e.value.reason == "hash_mismatch" and e.value.path == str(path)
    assert _message(e) == "changed since the bundle was loaded"


# -- outputs/head: the head is checked like a model file, and only with an embedding ------------
def _head_bundle(tmp_path: Path, dim: int = 8) -> tuple[Path, dict[str, object]]:
    root = tmp_path / "h"
    return root, write_fake_bundle(root, toy_contract(), embedding_dim=dim)


def _refused(root: Path, manifest: dict[str, object]) -> pytest.ExceptionInfo[BundleError]:
    write_manifest(root, manifest)
    with pytest.raises(BundleError) as e:
        load_bundle(root)
    return e


def test_outputs_without_an_embedding_drop_the_head(tmp_path: Path) -> None:
    root, m = _head_bundle(tmp_path)
    m["outputs"] = {"logits": 3}  # a head but nothing to apply it to
    write_manifest(root, m)
    with load_bundle(root) as b:
        assert "head" not in b.manifest and b.embedding_dim is None
    del m["head"]
    write_manifest(root, m)
    with load_bundle(root) as b:
        assert "head" not in b.manifest and b.embedding_dim is None


def test_the_head_entry_is_normalized_where_read_head_reads_it(tmp_path: Path) -> None:
    root, m = _head_bundle(tmp_path)
    head = dict(m["head"])  # type: ignore[call-overload]
    m["head"] = {**head, "sha256": head["sha256"].upper(), "size": str(head["size"])}
    write_manifest(root, m)
    with load_bundle(root) as b:
        assert b.manifest["head"]["sha256"] == head["sha256"]
        assert b.manifest["head"]["size"] == head["size"]
        assert b.read_head() == (root / "head.npz").read_bytes()


def test_embedding_size_must_be_positive_and_one_is(tmp_path: Path) -> None:
    root, m = _head_bundle(tmp_path, dim=1)
    with load_bundle(root) as b:
        assert b.embedding_dim == 1
    m["outputs"] = {"logits": 3, "embedding": 0}
    e = _refused(root, m)
    assert e.value.reason == "manifest" and e.value.path == f"{root / MANIFEST_NAME}#outputs"
    assert _message(e) == "embedding size 0 is not positive"
    m["outputs"] = {"logits": 3, "embedding": "eight"}
    e = _refused(root, m)
    assert e.value.reason == "manifest" and e.value.path == f"{root / MANIFEST_NAME}#outputs"
    assert _message(e).startswith("malformed outputs/head: ValueError(")


def test_the_embedding_size_is_the_last_dimension(tmp_path: Path) -> None:
    root, m = _head_bundle(tmp_path)
    for entry in m["files"].values():  # type: ignore[attr-defined]
        entry["embedding"]["shape"] = [1, 2, 8]
    write_manifest(root, m)
    with load_bundle(root) as b:
        assert b.embedding_dim == 8


def test_a_file_without_the_embedding_output_is_named(tmp_path: Path) -> None:
    root, m = _head_bundle(tmp_path)
    del m["files"]["onnx_int8"]["embedding"]  # type: ignore[index]
    e = _refused(root, m)
    assert e.value.reason == "manifest" and e.value.path == str(root / "model_int8.onnx")
    assert _message(e) == "onnx_int8 has no embedding output of size 8"


def test_head_path_rules(tmp_path: Path) -> None:
    root, m = _head_bundle(tmp_path)
    head = dict(m["head"])  # type: ignore[call-overload]
    m["head"] = {**head, "path": "../head.npz"}
    e = _refused(root, m)
    assert e.value.reason == "manifest" and e.value.path == f"{root / MANIFEST_NAME}#head"
    m["head"] = {**head, "path": "1" * 400}  # ENAMETOOLONG from is_file
    e = _refused(root, m)
    assert e.value.reason == "missing_file" and e.value.path == f"{root / MANIFEST_NAME}#outputs"
    assert _message(e) == "cannot check: File name too long"
    m["head"] = {**head, "path": "gone.npz"}
    e = _refused(root, m)
    assert e.value.reason == "missing_file" and e.value.path == str(root / "gone.npz")
    assert _message(e) == "listed in the manifest as the head but missing"
    m["head"] = {**head, "size": head["size"] + 1}
    e = _refused(root, m)
    assert e.value.reason == "hash_mismatch" and e.value.path == str(root / "head.npz")
    assert _message(e) == "size or sha256 != manifest's (file changed)"


def test_tensor_spec_errors_name_the_tensor(tmp_path: Path) -> None:
    root, m = _head_bundle(tmp_path)
    where = f"{root / MANIFEST_NAME}#files.onnx_fp32.input"
    files = m["files"]
    files["onnx_fp32"]["input"] = {"name": "x", "shape": ["one"], "dtype": "float32"}  # type: ignore[index]
    e = _refused(root, m)
    assert e.value.reason == "manifest" and e.value.path == where
    assert _message(e).startswith("malformed tensor spec: ValueError(")
    files["onnx_fp32"]["input"] = {"name": "x", "shape": [], "dtype": "float32"}  # type: ignore[index]
    e = _refused(root, m)
    assert e.value.reason == "manifest" and e.value.path == where
    assert _message(e) == "tensor shape is empty"


# -- manifest and file entries: every refusal names the file at fault and says why -------------
def _set(key: str, field: str, value: object) -> object:
    def change(m: dict[str, object]) -> None:
        m["files"][key][field] = value  # type: ignore[index]

    return change


def _drop(key: str, field: str) -> object:
    def change(m: dict[str, object]) -> None:
        del m["files"][key][field]  # type: ignore[index]

    return change


_F = "#files.onnx_fp32"
MANIFEST_CASES = [
    # (change, reason, path suffix after the bundle root, message: exact, or prefix when "…")
    (
        lambda m: m.update(schema_version=2),
        "schema",
        MANIFEST_NAME,
        "schema_version 2 is not supported (this hub reads 1); re-export the bundle with a "
        "matching edge-export or upgrade the hub",
    ),
    (lambda m: m.pop("files"), "manifest", MANIFEST_NAME, "missing fields ['files']"),
    (
        lambda m: m.update(files=[]),
        "manifest",
        MANIFEST_NAME,
        "'files' must be an object, 'class_names' a list",
    ),
    (
        lambda m: m["files"].update(onnx_fp32=3),
        "manifest",
        MANIFEST_NAME + _F,
        "file entry is not an object",
    ),
    (
        _drop("onnx_fp32", "precision"),
        "manifest",
        MANIFEST_NAME + _F,
        "malformed file entry: KeyError('precision')",
    ),
    (_set("onnx_fp32", "format", "pt"), "manifest", MANIFEST_NAME + _F, "unknown format 'pt'"),
    (
        _set("onnx_fp32", "path", "../x.onnx"),
        "manifest",
        MANIFEST_NAME + _F,
        "path '../x.onnx' leaves the bundle",
    ),
    (
        _set("onnx_fp32", "path", "1" * 400),
        "missing_file",
        MANIFEST_NAME + _F,
        "cannot check: File name too long",
    ),
    (
        _set("onnx_fp32", "path", "gone.onnx"),
        "missing_file",
        "gone.onnx",
        "listed in the manifest as 'onnx_fp32' but missing",
    ),
    (
        _set("onnx_fp32", "accuracy", [1]),
        "manifest",
        MANIFEST_NAME + _F,
        "'accuracy' is not an object",
    ),
    (
        _set("onnx_fp32", "output", {"name": "y", "shape": [], "dtype": "float32"}),
        "manifest",
        MANIFEST_NAME + _F + ".output",
        "tensor shape is empty",
    ),
    (
        _set("onnx_fp32", "input", {"name": "x", "shape": [1, 8], "dtype": "uint8", "scale": 1.0}),
        "manifest",
        MANIFEST_NAME + _F + ".input",
        "uint8 tensor 'x' needs scale and zero_point",
    ),
]


@pytest.mark.parametrize(("change", "reason", "where", "message"), MANIFEST_CASES)
def test_manifest_refusals(
    tmp_path: Path, change: object, reason: str, where: str, message: str
) -> None:
    root, m = _head_bundle(tmp_path)
    change(m)  # type: ignore[operator]
    (root / MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(BundleError) as e:
        load_bundle(root)
    assert (e.value.reason, e.value.path) == (reason, str(root / where))
    assert _message(e) == message


@pytest.mark.parametrize(
    ("raw", "message"), [(b"\xff{", "not valid JSON: "), (b"[1]", "top level is not an object")]
)
def test_manifest_that_is_no_object(root: Path, raw: bytes, message: str) -> None:
    (root / MANIFEST_NAME).write_bytes(raw)
    with pytest.raises(BundleError) as e:
        load_bundle(root)
    assert (e.value.reason, e.value.path) == ("manifest", str(root / MANIFEST_NAME))
    assert _message(e).startswith(message)


def test_a_changed_model_file_names_both_hashes(root: Path) -> None:
    path = root / "model_fp32.onnx"
    want = json.loads((root / MANIFEST_NAME).read_text())["files"]["onnx_fp32"]["sha256"]
    path.write_bytes(b"\x01" * path.stat().st_size)
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(BundleError) as e:
        load_bundle(root)
    assert (e.value.reason, e.value.path) == ("hash_mismatch", str(path))
    assert _message(e) == f"sha256 {got[:12]}… != manifest's {want[:12]}… (file changed)"


def test_file_entries_keep_key_precision_raw_and_the_acceptable_default(tmp_path: Path) -> None:
    root, m = _head_bundle(tmp_path)
    for entry in m["files"].values():  # type: ignore[attr-defined]
        del entry["accuracy"]  # the exporter's verdict absent: fp32 files count as acceptable
    m["files"]["tflite_fp32"]["accuracy"] = {"acceptable": False}  # type: ignore[index]
    write_manifest(root, m)
    with load_bundle(root) as b:
        assert {k: f.acceptable for k, f in b.files.items()} == {
            "onnx_fp32": True,
            "onnx_int8": False,
            "tflite_fp32": False,
            "tflite_int8": False,
        }
        f = b.files["onnx_int8"]
        assert (f.key, f.precision, f.format) == ("onnx_int8", "int8", "onnx")
        assert f.raw == m["files"]["onnx_int8"]  # type: ignore[index]
        assert f.embedding is not None and f.embedding.shape == (1, 8)
    m["files"]["onnx_int8"]["embedding"] = {"name": "e", "shape": []}  # type: ignore[index]
    e = _refused(root, m)
    assert e.value.path == f"{root / MANIFEST_NAME}#files.onnx_int8.embedding"


def test_a_truncated_model_file_names_both_sizes(root: Path) -> None:
    path = root / "model_fp32.onnx"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BundleError) as e:
        load_bundle(root)
    assert (e.value.reason, e.value.path) == ("size_mismatch", str(path))
    assert _message(e) == f"size {size - 3} != manifest's {size} (truncated or replaced)"
