"""edge.fleet.serve: the Flower App it writes is one Flower accepts; certificates are checked."""

from __future__ import annotations

import datetime
import tomllib
from pathlib import Path

import pytest
from flwr.common.config import validate_config

from edge.fleet.coordinator import run_config
from edge.fleet.options import FleetOptions
from edge.fleet.serve import ServeError, _check_loopback_name, _delivered, app_pyproject
from tests.fakes.mosquitto import make_tls


def test_the_app_names_our_apps_and_carries_the_run_config(tmp_path: Path) -> None:
    cfg = run_config(
        FleetOptions(dp="central", dp_epsilon=8.0),
        hubs=4,
        initial_head=tmp_path / 'a "quoted" name.npz',
        out_dir=tmp_path,
        round_timeout=30.0,
    )
    doc = tomllib.loads(app_pyproject(cfg))
    ok, errors, _ = validate_config(doc)  # Flower's own check of an app's pyproject
    assert ok, errors
    components = doc["tool"]["flwr"]["app"]["components"]
    assert components == {
        "serverapp": "edge.fleet.coordinator:app",
        "clientapp": "edge.fleet.client:app",
    }
    assert doc["tool"]["flwr"]["app"]["config"] == cfg


def test_a_certificate_must_name_loopback(tmp_path: Path) -> None:
    _check_loopback_name(make_tls(tmp_path / "ok").cert)  # names 127.0.0.1: accepted
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "coordinator.lan")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("coordinator.lan")]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = tmp_path / "lan.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ServeError, match=r"must include IP 127\.0\.0\.1"):
        _check_loopback_name(path)
    path.write_text("not a certificate")
    with pytest.raises(ServeError, match="not a PEM certificate"):
        _check_loopback_name(path)


def test_the_last_line_says_where_the_head_update_went() -> None:
    sent = {"hubs": 3, "written": 2, "errors": ["1 hubs did not reply within 600 s"]}
    line = _delivered({"path": "out/head-update", "signed": True, "delivery": sent})
    assert line == (
        "head update in out/head-update, written into 2 of 3 hubs' update folders "
        "(1 hubs did not reply within 600 s)"
    )
    unsigned = _delivered({"path": "out/head-update", "signed": False})
    assert "not sent to the hubs" in unsigned
