"""The model bundle a hub runs: a directory (or one ``.tar`` of it) with a manifest.

Layout (stable; ``edge-export`` writes it, the daemon reads it):

    BUNDLE/manifest.json
    BUNDLE/model_fp32.onnx  BUNDLE/model_int8.onnx  BUNDLE/model_fp32.tflite  BUNDLE/model_int8.tflite
    BUNDLE/quant_report.json  BUNDLE/quant_report.md  BUNDLE/plots/*.png   (not needed to run)
    BUNDLE/manifest.sig       (optional Ed25519 signature over manifest.json's bytes)

manifest.json (``schema_version`` 1):
    {"schema_version": 1, "model_id": str, "model_version": str, "created": ISO-8601,
     "git_commit": str|null, "dataset": {...}, "intended_use": str,
     "class_names": [...], "contract": InputContract.to_dict(),
     "calibration_required": bool,
     "files": {"onnx_fp32": {"path", "sha256", "size", "format": "onnx", "precision": "fp32",
               "input": {"name", "shape", "dtype", "scale"?, "zero_point"?},
               "output": {...}, "accuracy": {"acceptable": bool, ...}},
               "onnx_int8": {...}, "tflite_fp32": {...}, "tflite_int8": {...}},
     "recommended": "tflite_int8" | ..., "quantization": {...}, "macs": int, "params": int,
     "metrics": {...},
     "outputs": {"logits": K, "embedding": D}?, "head": {"path": "head.npz", "sha256", "size"}?}

``outputs``/``head`` (optional; a bundle without them loads, and cannot be personalized):
every model file then also returns ``embedding`` (B, D), described by its entry's
``"embedding"`` tensor spec, and ``head.npz`` holds ``W`` (D, K) and ``b`` (K,) of the
student's final Linear, ``logits = embedding @ W + b`` (checked at export). The head is
hashed like a model file, so the manifest's signature vouches for it too.

``files[key]["accuracy"]["acceptable"]`` is the exporter's verdict (parity thresholds met);
``edge.engines.open_engine(..., backend="auto")`` only picks acceptable formats.
``input.scale``/``zero_point`` are present only when that file takes int8 input (the engine
then quantizes ``q = round(x / scale) + zero_point``); likewise for an int8 output.

manifest.sig is JSON: ``{"alg": "Ed25519", "key_id": <sha256 hex of the raw public key,
first 16 chars>, "signature": <base64 of the 64-byte signature over manifest.json's bytes>}``.

API: ``load_bundle(path, *, trusted_keys=(), require_signature=False) -> Bundle`` verifies
schema and every file's size and sha256 and raises ``BundleError(path=<file>, reason=...)``
naming the file at fault; ``Bundle.contract``, ``Bundle.class_names``, ``Bundle.files``,
``Bundle.path_of(key)``, ``Bundle.read_verified(key)``, ``Bundle.manifest``,
``Bundle.embedding_dim`` (None without an embedding), ``Bundle.read_head()`` (the verified bytes of head.npz);
``demo_bundle_path()`` -> the wrist bundle shipped in ``edge/demo_bundle``;
``hr_demo_bundle_path()`` -> the heart-rate (RR) bundle shipped in ``edge/hr_demo_bundle``;
``demo_bundle_paths()`` -> those of the two that are installed.

Signatures: with ``trusted_keys`` (PEM public keys: bytes, text, or paths to PEM files) a
bundle must carry a ``manifest.sig`` made by one of them; ``require_signature=True``
without keys is refused (nothing to verify against). Verification needs the
``cryptography`` package (extra ``signing``), imported only when a signature is checked.

Only the stdlib (and core.contract): the daemon loads a bundle before it picks an engine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from core.contract import InputContract
from core.errors import ContractError
from edge.bundle_signature import (
    SIGNATURE_NAME,
    check_signature,
    key_id,
    verify_manifest_signature,
)
from edge.errors import BundleError

try:  # tarfile lets the decompressors' own errors through for a corrupt .tar.gz/.bz2/.xz
    from lzma import LZMAError
except ImportError:  # pragma: no cover - a Python without liblzma cannot open .xz either
    LZMAError = OSError  # type: ignore[misc,assignment]

__all__ = [
    "EMBEDDING_NAME",
    "FORMAT_KEYS",
    "HEAD_NAME",
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "SIGNATURE_NAME",
    "Bundle",
    "FileEntry",
    "TensorSpec",
    "demo_bundle_path",
    "demo_bundle_paths",
    "hr_demo_bundle_path",
    "key_id",
    "load_bundle",
    "sha256_file",
    "verify_manifest_signature",
]

_LOG = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1  # bump when a manifest field changes meaning; loaders refuse unknown
MANIFEST_NAME: Final = "manifest.json"
HEAD_NAME: Final = "head.npz"  # the shared classifier head, W (D, K) and b (K,)
EMBEDDING_NAME: Final = "embedding"  # the models' second output, (B, D)
FORMAT_KEYS: Final = ("onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8")
_FORMATS: Final = ("onnx", "tflite")
# A manifest is a few KB; anything far larger is not ours and is not parsed.
_MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
# Hash in 1 MiB blocks: bounded memory on a Pi for any model size.
_HASH_BLOCK: Final = 1 << 20
# An exported bundle is ~10 files of a few MB. An archive beyond these limits is refused before
# extraction: a compressed archive can inflate far beyond its own size (a "bomb") and must not
# fill the hub's SD card or its RAM-backed /tmp.
_MAX_ARCHIVE_BYTES: Final = 256 * 1024 * 1024
_MAX_ARCHIVE_MEMBERS: Final = 1000
_REQUIRED_KEYS: Final = ("schema_version", "model_id", "class_names", "contract", "files")


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the manifest declares it."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "float32", "int8", "uint8"
    scale: float | None = None  # only for quantized (int8/uint8) tensors
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str) -> TensorSpec:
        try:
            scale = d.get("scale")
            zp = d.get("zero_point")
            spec = cls(
                name=str(d["name"]),
                shape=tuple(int(v) for v in d["shape"]),
                dtype=str(d["dtype"]),
                scale=None if scale is None else float(scale),
                zero_point=None if zp is None else int(zp),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise BundleError(f"malformed tensor spec: {e!r}", path=where, reason="manifest") from e
        if not spec.shape:
            raise BundleError("tensor shape is empty", path=where, reason="manifest")
        if spec.dtype in ("int8", "uint8") and (spec.scale is None or spec.zero_point is None):
            raise BundleError(
                f"{spec.dtype} tensor {spec.name!r} needs scale and zero_point",
                path=where,
                reason="manifest",
            )
        return spec


@dataclass(frozen=True)
class FileEntry:
    """One model file of the bundle (a format/precision pair)."""

    key: str  # "onnx_fp32", ...
    path: str  # relative to the bundle root
    sha256: str
    size: int
    format: str  # "onnx" | "tflite"
    precision: str  # "fp32" | "int8" | "fp16"
    input: TensorSpec
    output: TensorSpec
    acceptable: bool  # the exporter's accuracy verdict (parity thresholds met)
    embedding: TensorSpec | None = None  # the second output, when the bundle has one
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


class Bundle:
    """A verified bundle. Build with :func:`load_bundle`, not directly.

    Loading from a ``.tar`` extracts into a private temporary directory that lives as long
    as this object (or until :meth:`close`); use ``with load_bundle(...) as b:`` to bound it.
    """

    def __init__(
        self,
        root: Path,
        manifest: Mapping[str, Any],
        files: Mapping[str, FileEntry],
        contract: InputContract,
        *,
        source: Path,
        signed_by: str | None,
        tmp: tempfile.TemporaryDirectory[str] | None = None,
    ) -> None:
        self.root = root
        self.manifest = manifest
        self.files = dict(files)
        self.contract = contract
        self.source = source  # what the caller passed: the directory or the .tar
        self.signed_by = signed_by  # key id of the verified signer, None if not verified
        self._tmp = tmp

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.contract.class_names

    @property
    def model_id(self) -> str:
        return str(self.manifest["model_id"])

    @property
    def model_version(self) -> str:
        return str(self.manifest.get("model_version", ""))

    @property
    def calibration_required(self) -> bool:
        return bool(self.manifest.get("calibration_required", self.contract.normalization.needs_calibration))

    @property
    def recommended(self) -> str | None:
        rec = self.manifest.get("recommended")
        return rec if isinstance(rec, str) and rec in self.files else None

    @property
    def dead_classes(self) -> tuple[str, ...]:
        """Classes the export found never predicted correctly on held-out windows."""
        dead = self.manifest.get("dead_classes") or ()
        return tuple(str(c) for c in dead) if isinstance(dead, list) else ()

    @property
    def embedding_dim(self) -> int | None:
        """D of the models' ``embedding`` output, None for a bundle without one."""
        outputs = self.manifest.get("outputs")
        if isinstance(outputs, dict) and EMBEDDING_NAME in outputs and "head" in self.manifest:
            return int(outputs[EMBEDDING_NAME])  # checked by the loader
        return None

    def read_head(self) -> bytes:
        """The bytes of ``head.npz``, hashed again now; BundleError without an embedding."""
        entry = self.manifest.get("head")
        if self.embedding_dim is None or not isinstance(entry, dict):
            raise BundleError("this bundle has no embedding output and no head.npz (exported "
                              "before personalization existed: re-export it)",
                              path=str(self.source), reason="missing_format")
        path = self.root / str(entry["path"])
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BundleError(f"cannot read: {e}", path=str(path), reason="missing_file") from e
        if len(data) != int(entry["size"]) or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BundleError("changed since the bundle was loaded", path=str(path),
                              reason="hash_mismatch")
        return data

    def path_of(self, key: str) -> Path:
        """Absolute path of model file ``key`` (e.g. ``"tflite_int8"``)."""
        return self.root / self.entry(key).path

    def entry(self, key: str) -> FileEntry:
        try:
            return self.files[key]
        except KeyError:
            raise BundleError(
                f"no model file {key!r}; this bundle has {sorted(self.files)}",
                path=str(self.source),
                reason="missing_format",
            ) from None

    def read_verified(self, key: str) -> bytes:
        """The bytes of model file ``key``, hashed again now (no swap after load)."""
        entry = self.entry(key)
        path = self.root / entry.path
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BundleError(f"cannot read: {e}", path=str(path), reason="missing_file") from e
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise BundleError(
                "changed since the bundle was loaded", path=str(path), reason="hash_mismatch"
            )
        return data

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Bundle({self.model_id!r}, {self.model_version!r}, files={sorted(self.files)})"


def demo_bundle_path() -> Path:
    """The wrist bundle shipped inside the package (``edge/demo_bundle``)."""
    return Path(__file__).resolve().parent / "demo_bundle"


def hr_demo_bundle_path() -> Path:
    """The heart-rate bundle shipped inside the package (``edge/hr_demo_bundle``): RR
    intervals from any standard Heart Rate Service strap or watch."""
    return Path(__file__).resolve().parent / "hr_demo_bundle"


def demo_bundle_paths() -> tuple[Path, ...]:
    """The shipped bundles that are installed (a manifest present), wrist first."""
    return tuple(p for p in (demo_bundle_path(), hr_demo_bundle_path())
                 if (p / MANIFEST_NAME).is_file())


# -- loading ------------------------------------------------------------------------------
def load_bundle(
    path: str | os.PathLike[str],
    *,
    trusted_keys: Iterable[str | bytes | os.PathLike[str]] = (),
    require_signature: bool = False,
) -> Bundle:
    """Open and verify a bundle directory or ``.tar`` archive.

    Raises :class:`BundleError` with ``path`` = the file at fault and ``reason`` one of
    ``not_found``, ``archive``, ``manifest``, ``schema``, ``contract``, ``missing_file``,
    ``size_mismatch``, ``hash_mismatch``, ``unsigned``, ``signature``, ``no_trusted_keys``,
    ``crypto_missing``.
    """
    source = Path(path)
    keys = list(trusted_keys)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if source.is_dir():
        root = source
    elif source.is_file():
        tmp = tempfile.TemporaryDirectory(prefix="edge-bundle-")
        try:
            root = _extract_archive(source, Path(tmp.name))
        except BaseException:
            tmp.cleanup()
            raise
    else:
        raise BundleError("no such bundle directory or archive", path=str(source), reason="not_found")
    try:
        return _load_dir(root, source, keys, require_signature, tmp)
    except BaseException:
        if tmp is not None:
            tmp.cleanup()
        raise


def _load_dir(
    root: Path,
    source: Path,
    keys: list[str | bytes | os.PathLike[str]],
    require_signature: bool,
    tmp: tempfile.TemporaryDirectory[str] | None,
) -> Bundle:
    manifest_path = root / MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        raise BundleError("missing manifest", path=str(manifest_path), reason="missing_file") from None
    except OSError as e:
        raise BundleError(f"cannot read: {e}", path=str(manifest_path), reason="manifest") from e
    if len(raw) > _MAX_MANIFEST_BYTES:
        raise BundleError("manifest too large", path=str(manifest_path), reason="manifest")

    signed_by = check_signature(root, raw, keys, require_signature)
    manifest = _parse_manifest(raw, str(manifest_path))
    try:
        contract = InputContract.from_dict(manifest["contract"])
    except ContractError as e:
        raise BundleError(f"invalid input contract: {e}", path=str(manifest_path), reason="contract") from e
    if tuple(manifest["class_names"]) != contract.class_names:
        raise BundleError(
            "class_names differ from the contract's", path=str(manifest_path), reason="manifest"
        )
    files = {key: _check_file(root, key, entry, manifest_path) for key, entry in manifest["files"].items()}
    if not files:
        raise BundleError("manifest lists no model file", path=str(manifest_path), reason="manifest")
    for entry in files.values():
        if entry.input.shape[-1] != contract.input_length:
            raise BundleError(
                f"input length {entry.input.shape[-1]} != contract's {contract.input_length}",
                path=str(root / entry.path),
                reason="manifest",
            )
        if entry.output.shape[-1] != contract.n_classes:
            raise BundleError(
                f"output size {entry.output.shape[-1]} != {contract.n_classes} classes",
                path=str(root / entry.path),
                reason="manifest",
            )
    _check_outputs(root, manifest, files, manifest_path)
    bundle = Bundle(root, manifest, files, contract, source=source, signed_by=signed_by, tmp=tmp)
    _LOG.info(
        "bundle %s %s verified: %d files%s",
        bundle.model_id,
        bundle.model_version,
        len(files),
        f", signed by {signed_by}" if signed_by else "",
    )
    return bundle


def _check_outputs(root: Path, manifest: dict[str, Any], files: Mapping[str, FileEntry],
                   manifest_path: Path) -> None:
    """With ``outputs.embedding``: every file returns it at that size and head.npz verifies."""
    outputs = manifest.get("outputs")
    if outputs is None:
        return
    where = f"{manifest_path}#outputs"
    try:
        dim = int(outputs[EMBEDDING_NAME]) if EMBEDDING_NAME in outputs else None
        head = manifest["head"] if dim is not None else None
        entry = {"path": str(head["path"]), "sha256": str(head["sha256"]).lower(),
                 "size": int(head["size"])} if head is not None else None
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise BundleError(f"malformed outputs/head: {e!r}", path=where, reason="manifest") from e
    if dim is None or entry is None:
        manifest.pop("head", None)  # a head without an embedding to apply it to is no head
        return
    if dim <= 0:
        raise BundleError(f"embedding size {dim} is not positive", path=where, reason="manifest")
    manifest["head"] = {**manifest["head"], **entry}
    for f in files.values():
        if f.embedding is None or f.embedding.shape[-1] != dim:
            raise BundleError(f"{f.key} has no {EMBEDDING_NAME} output of size {dim}",
                              path=str(root / f.path), reason="manifest")
    target = _inside(root, entry["path"], f"{manifest_path}#head")
    try:
        found = target.is_file()
    except OSError as e:  # is_file hides only "not found" kinds of error, not ENAMETOOLONG
        raise BundleError(f"cannot check: {e.strerror}", path=where, reason="missing_file") from e
    if not found:
        raise BundleError("listed in the manifest as the head but missing", path=str(target),
                          reason="missing_file")
    if target.stat().st_size != entry["size"] or sha256_file(target) != entry["sha256"]:
        raise BundleError("size or sha256 != manifest's (file changed)", path=str(target),
                          reason="hash_mismatch")


def _parse_manifest(raw: bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    # ValueError: also the int digit limit; RecursionError: "[[[[..." nesting
    except (ValueError, RecursionError) as e:
        raise BundleError(f"not valid JSON: {e}", path=where, reason="manifest") from e
    if not isinstance(manifest, dict):
        raise BundleError("top level is not an object", path=where, reason="manifest")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"schema_version {version!r} is not supported (this hub reads {SCHEMA_VERSION}); "
            "re-export the bundle with a matching edge-export or upgrade the hub",
            path=where,
            reason="schema",
        )
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"missing fields {missing}", path=where, reason="manifest")
    if not isinstance(manifest["files"], dict) or not isinstance(manifest["class_names"], list):
        raise BundleError("'files' must be an object, 'class_names' a list", path=where, reason="manifest")
    return manifest


def _check_file(root: Path, key: str, entry: Any, manifest_path: Path) -> FileEntry:
    where = f"{manifest_path}#files.{key}"
    if not isinstance(entry, dict):
        raise BundleError("file entry is not an object", path=where, reason="manifest")
    try:
        rel = str(entry["path"])
        sha = str(entry["sha256"]).lower()
        size = int(entry["size"])
        fmt = str(entry["format"])
        precision = str(entry["precision"])
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise BundleError(f"malformed file entry: {e!r}", path=where, reason="manifest") from e
    if fmt not in _FORMATS:
        raise BundleError(f"unknown format {fmt!r}", path=where, reason="manifest")
    target = _inside(root, rel, where)
    try:
        found = target.is_file()
    except OSError as e:  # is_file hides only "not found" kinds of error, not ENAMETOOLONG
        raise BundleError(f"cannot check: {e.strerror}", path=where, reason="missing_file") from e
    if not found:
        raise BundleError(
            f"listed in the manifest as {key!r} but missing", path=str(target), reason="missing_file"
        )
    actual_size = target.stat().st_size
    if actual_size != size:
        raise BundleError(
            f"size {actual_size} != manifest's {size} (truncated or replaced)",
            path=str(target),
            reason="size_mismatch",
        )
    actual = sha256_file(target)
    if actual != sha:
        raise BundleError(
            f"sha256 {actual[:12]}… != manifest's {sha[:12]}… (file changed)",
            path=str(target),
            reason="hash_mismatch",
        )
    accuracy = entry.get("accuracy") or {}
    if not isinstance(accuracy, dict):
        raise BundleError("'accuracy' is not an object", path=where, reason="manifest")
    return FileEntry(
        key=key,
        path=rel,
        sha256=sha,
        size=size,
        format=fmt,
        precision=precision,
        input=TensorSpec.from_dict(entry.get("input") or {}, where=f"{where}.input"),
        output=TensorSpec.from_dict(entry.get("output") or {}, where=f"{where}.output"),
        acceptable=bool(accuracy.get("acceptable", precision == "fp32")),
        embedding=(TensorSpec.from_dict(entry[EMBEDDING_NAME], where=f"{where}.{EMBEDDING_NAME}")
                   if isinstance(entry.get(EMBEDDING_NAME), dict) else None),
        raw=entry,
    )


def _inside(root: Path, rel: str, where: str) -> Path:
    """``root / rel``, refusing absolute paths and ``..`` (a manifest must not point outside)."""
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not rel:
        raise BundleError(f"path {rel!r} leaves the bundle", path=where, reason="manifest")
    return root / p


def _extract_archive(archive: Path, dest: Path) -> Path:
    """Extract a bundle ``.tar`` safely: regular files and directories only, nothing outside."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members: list[tarfile.TarInfo] = []
            total = 0
            for m in tar:  # header by header: a bomb is refused before it is inflated whole
                if len(members) >= _MAX_ARCHIVE_MEMBERS:
                    raise BundleError(
                        f"more than {_MAX_ARCHIVE_MEMBERS} members", path=str(archive), reason="archive"
                    )
                name = Path(m.name)
                if "\x00" in m.name or name.is_absolute() or ".." in name.parts:
                    raise BundleError(
                        f"archive member {m.name!r} would leave the bundle", path=str(archive), reason="archive"
                    )
                if not (m.isfile() or m.isdir()):
                    raise BundleError(
                        f"archive member {m.name!r} is a link or device", path=str(archive), reason="archive"
                    )
                total += m.size
                if total > _MAX_ARCHIVE_BYTES:
                    raise BundleError(
                        f"members add up to more than {_MAX_ARCHIVE_BYTES >> 20} MiB",
                        path=str(archive),
                        reason="archive",
                    )
                members.append(m)
            # filter="data" (Python >= 3.11.4) repeats these checks inside tarfile itself.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - old 3.11 patch releases; members were checked above
                tar.extractall(dest, members=members)
    except (tarfile.TarError, OSError, EOFError, zlib.error, LZMAError) as e:
        # tarfile lists every method it tried on several lines; one line is what helps
        why = str(e).splitlines()[0].rstrip(":") if str(e) else type(e).__name__
        raise BundleError(f"not a bundle: neither a bundle directory nor a .tar of one ({why})",
                          path=str(archive), reason="archive") from e
    if (dest / MANIFEST_NAME).is_file():
        return dest
    # An archive of the directory itself: BUNDLE/manifest.json
    subdirs = [p for p in dest.iterdir() if p.is_dir() and (p / MANIFEST_NAME).is_file()]
    if len(subdirs) == 1:
        return subdirs[0]
    raise BundleError("archive holds no manifest.json", path=str(archive), reason="missing_file")
