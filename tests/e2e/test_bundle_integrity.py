"""Bundle integrity at daemon start: ``edge-daemon`` refuses a tampered or unsigned bundle.

The daemon requires a signature by a trusted key (issue 17): the toy bundle is signed with
the demo key, which a hub trusts by default, so a changed manifest byte (class names
swapped, a size edited, the file cut short) is refused by the signature, like a changed
model byte is by its hash.

``tests/unit/edge/test_bundle.py`` checks ``load_bundle`` itself, reason by reason; here the same
faults are met where a user meets them: the real CLI, started on a copy of a real exported
bundle, must exit non-zero before deciding anything, with one clear line on stderr that
names the file at fault; and with trusted keys configured (``trusted_keys`` in the config
file) a bundle signed by one of them (``export.signing.sign_bundle``, as ``edge-export
--sign`` does) runs, while an unsigned bundle, one signed by another key or one whose
manifest changed after signing is refused.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.bundle import MANIFEST_NAME, SIGNATURE_NAME
from export.signing import sign_bundle
from tests.fakes.bundles import signing_keys
from tests.fakes.daemon import db_rows, run_cli, toy_bundle

pytestmark = pytest.mark.slow

EXIT_FAILED = 1  # edge.cli: the daemon could not start


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_bundle(tmp_path_factory.getbasetemp())


@pytest.fixture
def bundle(built: Path, tmp_path: Path) -> Path:
    """A private copy of the exported toy bundle, free to damage."""
    return Path(shutil.copytree(built, tmp_path / "bundle"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return signing_keys(tmp_path_factory.mktemp("keys"))


def start(bundle: Path, tmp: Path, *, trusted: list[Path] | None = None,
          duration: str = "1") -> tuple[int, str]:
    cfg = tmp / "edge-daemon.toml"
    cfg.write_text("" if trusted is None else
                   "trusted_keys = [" + ", ".join(f'"{k}"' for k in trusted) + "]\n")
    p = run_cli(["--config", str(cfg), "--device", "sim", "--bundle", str(bundle),
                 "--backend", "onnx", "--precision", "fp32", "--speed", "100",
                 "--duration", duration, "--state-dir", str(tmp / "state"), "--status", "off"])
    return p.returncode, p.stderr


def refused(code: int, err: str, *needles: str) -> None:
    assert code == EXIT_FAILED, err
    lines = [x for x in err.splitlines() if x.startswith("edge-daemon: cannot start:")]
    assert len(lines) == 1, err  # one clear line, not a traceback
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


def _drop_entry_file(bundle: Path) -> None:
    (bundle / "model_int8.onnx").unlink()


def _manifest_lies_about_size(bundle: Path) -> None:
    m = json.loads((bundle / MANIFEST_NAME).read_text())
    m["files"]["onnx_fp32"]["size"] += 1
    (bundle / MANIFEST_NAME).write_text(json.dumps(m))


def _swap_class_names(bundle: Path) -> None:
    # stress reported as amusement: consistent in itself, so only the signature catches it
    m = json.loads((bundle / MANIFEST_NAME).read_text())
    for names in (m["class_names"], m["contract"]["class_names"]):
        names[1], names[2] = names[2], names[1]
    (bundle / MANIFEST_NAME).write_text(json.dumps(m))


def _swap_model_files(bundle: Path) -> None:
    # both files are intact models; the manifest's hashes say which is which
    a, b = bundle / "model_fp32.onnx", bundle / "model_int8.onnx"
    tmp = bundle / "swap"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


@pytest.mark.parametrize(("damage", "needles"), [
    (lambda b: _flip_byte(b / "model_fp32.onnx"), ("model_fp32.onnx", "sha256")),
    (lambda b: _flip_byte(b / "model_fp32.tflite"), ("model_fp32.tflite", "sha256")),
    (_drop_entry_file, ("model_int8.onnx",)),
    (_manifest_lies_about_size, (SIGNATURE_NAME, "manifest changed")),
    (_swap_class_names, (SIGNATURE_NAME, "manifest changed")),
    (_swap_model_files, ("model_fp32.onnx",)),
    (lambda b: (b / MANIFEST_NAME).write_bytes((b / MANIFEST_NAME).read_bytes()[:-7]),
     (SIGNATURE_NAME,)),
], ids=["changed-byte-onnx", "changed-byte-tflite", "missing-file", "size-mismatch",
        "swapped-class-names", "swapped-files", "truncated-manifest"])
def test_tampered_bundle_is_refused_at_start(bundle: Path, tmp_path: Path,
                                             damage: Callable[[Path], None],
                                             needles: tuple[str, ...]) -> None:
    damage(bundle)
    code, err = start(bundle, tmp_path)
    refused(code, err, *needles)
    assert not (tmp_path / "state" / "edge.db").exists()  # nothing was decided


def test_intact_bundle_control_starts(bundle: Path, tmp_path: Path) -> None:
    """The control for the refusals above: the same copy, undamaged, runs and decides."""
    code, err = start(bundle, tmp_path)
    assert code == 0, err
    assert db_rows(tmp_path / "state" / "edge.db")


def test_signed_bundle_with_its_key_trusted_runs(bundle: Path, tmp_path: Path,
                                                 keys: tuple[Path, Path, Path]) -> None:
    priv, pub, other = keys
    kid = sign_bundle(bundle, priv)
    code, err = start(bundle, tmp_path, trusted=[other, pub], duration="2")
    assert code == 0, err
    assert f"signed by {kid}" in err  # the log says which key vouched for it
    assert db_rows(tmp_path / "state" / "edge.db")


@pytest.mark.parametrize("case", ["unsigned", "untrusted-key", "manifest-changed-after-signing",
                                  "model-changed-after-signing", "garbage-signature"])
def test_signature_faults_are_refused_when_keys_are_trusted(
        bundle: Path, tmp_path: Path, keys: tuple[Path, Path, Path], case: str) -> None:
    priv, pub, other = keys
    trusted = [pub]
    if case == "unsigned":
        (bundle / SIGNATURE_NAME).unlink()
    else:
        sign_bundle(bundle, priv)
    if case == "untrusted-key":
        trusted = [other]
    elif case == "manifest-changed-after-signing":
        m = json.loads((bundle / MANIFEST_NAME).read_text())
        m["model_version"] = "9.9.9"
        (bundle / MANIFEST_NAME).write_text(json.dumps(m))
    elif case == "model-changed-after-signing":
        _flip_byte(bundle / "model_int8.onnx")
    elif case == "garbage-signature":
        (bundle / SIGNATURE_NAME).write_text('{"alg": "Ed25519", "signature": "AAAA"}')
    code, err = start(bundle, tmp_path, trusted=trusted)
    expect = {"unsigned": ("unsigned",), "untrusted-key": (SIGNATURE_NAME,),
              "manifest-changed-after-signing": (SIGNATURE_NAME,),
              "model-changed-after-signing": ("model_int8.onnx",),
              "garbage-signature": (SIGNATURE_NAME,)}[case]
    refused(code, err, *expect)


def _start_flags(bundle: Path, tmp: Path, *flags: str) -> tuple[int, str]:
    p = run_cli(["--device", "sim", "--bundle", str(bundle), "--backend", "onnx",
                 "--precision", "fp32", "--speed", "100", "--duration", "2",
                 "--state-dir", str(tmp / "state"), "--status", "off", *flags])
    return p.returncode, p.stderr


def test_an_unsigned_bundle_is_refused_by_default_and_runs_with_allow_unsigned_loudly(
        bundle: Path, tmp_path: Path) -> None:
    (bundle / SIGNATURE_NAME).unlink()
    code, err = _start_flags(bundle, tmp_path)
    refused(code, err, "unsigned", "edge-export sign")
    code, err = _start_flags(bundle, tmp_path, "--allow-unsigned")
    assert code == 0, err
    assert "LOADING AN UNSIGNED BUNDLE" in err


def test_allow_unsigned_still_refuses_a_signature_that_does_not_verify(
        bundle: Path, tmp_path: Path) -> None:
    _swap_class_names(bundle)
    code, err = _start_flags(bundle, tmp_path, "--allow-unsigned")
    refused(code, err, SIGNATURE_NAME)


def test_trusted_key_on_the_command_line(bundle: Path, tmp_path: Path,
                                         keys: tuple[Path, Path, Path]) -> None:
    priv, pub, _ = keys
    sign_bundle(bundle, priv)
    code, err = _start_flags(bundle, tmp_path)
    refused(code, err, SIGNATURE_NAME)  # a key nobody trusts
    code, err = _start_flags(bundle, tmp_path, "--trusted-key", str(pub))
    assert code == 0, err
