"""edge-export's command line: help, key generation, a bad run reported without a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.bundle import SIGNATURE_NAME, demo_bundle_path, load_bundle
from edge.signing import DEMO_PUBLIC_KEY

REPO = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path) -> dict[str, str]:
    # the host key is made under $XDG_CONFIG_HOME: never in the real ~/.config from a test
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_cli_help_and_keygen(tmp_path: Path) -> None:
    help_text = subprocess.run([sys.executable, "-m", "export.cli", "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=120, check=True).stdout
    for flag in ("--out", "--formats", "--calib-size", "--calib-method", "--exclude-ops",
                 "--sign", "--archive", "--keygen"):
        assert flag in help_text
    out = subprocess.run([sys.executable, "-m", "export.cli", "--keygen", str(tmp_path / "k")],
                         cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    assert "key id" in out
    assert (tmp_path / "k.pem").stat().st_mode & 0o077 == 0  # private key is owner-only
    assert (tmp_path / "k.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_cli_reports_a_bad_run_without_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "export.cli", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "b")], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=_env(tmp_path))
    assert proc.returncode == 1
    assert "edge-export failed" in proc.stderr and "Traceback" not in proc.stderr


def test_sign_an_existing_bundle_with_the_demo_key_or_the_host_key(tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(demo_bundle_path(), tmp_path / "b"))
    (bundle / SIGNATURE_NAME).unlink()
    done = subprocess.run([sys.executable, "-m", "export.cli", "sign", str(bundle), "--key",
                           "export/demo_signing_key.pem"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    with load_bundle(bundle, trusted_keys=[DEMO_PUBLIC_KEY], require_signature=True) as b:
        assert b.signed_by is not None
    done = subprocess.run([sys.executable, "-m", "export.cli", "sign", str(bundle)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    host = tmp_path / "config" / "wearable-edge"
    assert (host / "bundle-signing.pem").stat().st_mode & 0o077 == 0  # made once, owner-only
    with load_bundle(bundle, trusted_keys=[host / "bundle-signing.pub.pem"],
                     require_signature=True):
        pass


def test_sign_refuses_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "export.cli", "sign", str(tmp_path), "--key",
                           "export/demo_signing_key.pem"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=_env(tmp_path))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "manifest" in done.stderr


def test_export_refuses_a_non_empty_out_in_one_line_and_leaves_nothing_on_failure(
        tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    proc = subprocess.run([sys.executable, "-m", "export.cli", str(tmp_path / "nope"), "--out",
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**_env(tmp_path), "COLUMNS": "40"})  # a narrow terminal
    assert proc.returncode == 1
    (line,) = [x for x in proc.stderr.splitlines() if x.strip()]  # not wrapped mid-sentence
    assert "is not empty: choose another --out, or add --force" in line
    proc = subprocess.run([sys.executable, "-m", "export.cli", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "new")], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=_env(tmp_path))
    assert proc.returncode == 1
    assert not (tmp_path / "new").exists()  # the failed export left no empty folder


@pytest.mark.slow
def test_export_output_is_ours_alone_unless_verbose(tmp_path: Path) -> None:
    from tests.fakes.runs import build_run

    run = build_run(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-m", "export.cli", str(run.path), "--out", str(tmp_path / "b"),
         "--formats", "onnx_fp32,onnx_int8,tflite_fp32", "--calib-method", "minmax",
         "--exclude-ops", "none", "--no-plots", "--no-sign"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = proc.stdout + proc.stderr
    assert "recommended:" in said and "bundle:" in said
    # ONNX Runtime's quantizer, torch's exporter and LiteRT's converter say these by default
    for chatter in ("out-of-range for weight", "torchvision is not installed",
                    "flatbuffer_export.cc", "WARNING root:", "torchao"):
        assert chatter not in said, chatter
