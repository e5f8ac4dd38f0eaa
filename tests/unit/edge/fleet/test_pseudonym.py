"""edge.fleet.pseudonym: keyed, stable, unlinkable pseudonyms; the key stays private."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from edge.errors import EdgeError
from edge.fleet.pseudonym import KEY_FILE, PseudonymError, Pseudonymizer, load_or_create_key


def test_the_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "state")
    path = tmp_path / "state" / KEY_FILE
    assert len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "state") == key


def test_same_hub_same_pseudonym_and_no_id_inside(tmp_path: Path) -> None:
    p = Pseudonymizer.for_state_dir(tmp_path)
    again = Pseudonymizer.for_state_dir(tmp_path)
    assert p.wearer("anna") == again.wearer("anna")
    assert p.wearer("anna") != p.wearer("bert")
    assert "anna" not in p.wearer("anna") and p.wearer("anna").startswith("wearer-")
    # one device however its address is written; a name however it is spaced or cased
    assert p.device("aa-bb-cc-dd-ee-ff") == p.device("AA:BB:CC:DD:EE:FF")
    assert p.name(" Anna  Schmidt") == p.name("anna schmidt")


def test_another_hub_cannot_link_and_a_plain_hash_is_not_used(tmp_path: Path) -> None:
    a = Pseudonymizer.for_state_dir(tmp_path / "a")
    b = Pseudonymizer.for_state_dir(tmp_path / "b")
    assert a.wearer("anna") != b.wearer("anna")
    # positive control for "keyed": the unkeyed hash of the id does not reproduce it
    plain = hashlib.sha256(b"wearer\x00anna").hexdigest()[:16]
    assert a.wearer("anna") != f"wearer-{plain}"


def test_kinds_are_separate_domains(tmp_path: Path) -> None:
    p = Pseudonymizer.for_state_dir(tmp_path)
    assert p("wearer", "x").split("-")[1] != p("device", "X").split("-")[1]
    with pytest.raises(PseudonymError, match="unknown identifier kind"):
        p("email", "x")


def test_a_bad_or_exposed_key_is_one_line(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"short")
    os.chmod(tmp_path / KEY_FILE, 0o600)
    with pytest.raises(PseudonymError, match="32 bytes") as info:
        load_or_create_key(tmp_path)
    assert isinstance(info.value, EdgeError) and "\n" not in str(info.value)
    (tmp_path / KEY_FILE).write_bytes(b"k" * 32)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(PseudonymError, match="readable by others"):
        load_or_create_key(tmp_path)


def test_the_key_never_shows_in_repr() -> None:
    key = b"s" * 32
    assert "sss" not in repr(Pseudonymizer(key))
