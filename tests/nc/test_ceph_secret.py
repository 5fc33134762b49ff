"""The node's side of an RBD volume's key: found in its own keyring, named in libvirt by a UUID
derived from the user (the domain XML and the secret agree without asking each other)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nc.ceph_secret import NoCephKey, key_in, key_source, secret_uuid, secret_xml


def test_the_key_of_the_user_is_read_from_the_keyring(tmp_path: Path) -> None:
    keyring = tmp_path / "ceph.client.eucasim.keyring"
    keyring.write_text("[client.admin]\n\tkey = QURNSU4=\n[client.eucasim]\n\tkey = RVVDQVNJTQ==\n"
                       '\tcaps mon = "profile rbd"\n')
    assert key_in(keyring, "eucasim") == "RVVDQVNJTQ=="
    assert key_source(keyring, None)("admin") == "QURNSU4="
    with pytest.raises(NoCephKey, match="client.nobody"):
        key_source(keyring, None)("nobody")
    assert key_in(tmp_path / "missing", "admin") is None


def test_the_secret_is_named_by_the_user_the_same_way_every_time() -> None:
    assert secret_uuid("eucasim") == secret_uuid("eucasim") != secret_uuid("admin")
    xml = secret_xml("eucasim")
    assert f"<uuid>{secret_uuid('eucasim')}</uuid>" in xml
    assert "<usage type='ceph'><name>client.eucasim secret</name></usage>" in xml
    assert "private='yes'" in xml
