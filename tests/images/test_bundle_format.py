"""The bundle format on its own: build -> parse -> verify -> decrypt gives the same bytes, in
euca2ools's exact forms (checked with openssl, as euca2ools itself used it), and every kind of
damage is reported as what it is."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path

import pytest

from services import pki
from services.bundles import (CorruptBundle, DecryptionFailed, ManifestError, PartDigestMismatch,
                              SignatureInvalid, build_bundle, bundle_keys, local_parts,
                              parse_manifest, unbundle, verify_manifest)

ACCOUNT = "123456789012"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pki")
    pki.ensure_cloud_ca(home)
    pki.ensure_user_certificate(home, ACCOUNT, "admin")
    return home


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Random bytes do not compress, so the bundle really spans several parts.
    path = tmp_path_factory.mktemp("img") / "disk.img"
    path.write_bytes(os.urandom(2 * MIB + 12345) + bytes(MIB))
    return path


def _bundle(home: Path, image: Path, out: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    user = pki.user_certificate_paths(home, ACCOUNT, "admin")
    return build_bundle(image, out, account_id=ACCOUNT, cloud_cert=pki.ensure_cloud_ca(home).certificate(),
                        user_cert=user.certificate(), user_key=user.private_key(),
                        part_size=MIB, **kwargs)  # type: ignore[arg-type]


def _unbundle(home: Path, folder: Path, manifest_bytes: bytes | None = None) -> bytes:
    manifest_path = next(folder.glob("*.manifest.xml"))
    manifest = parse_manifest(manifest_bytes or manifest_path.read_bytes())
    verify_manifest(manifest, pki.account_certificates(home, ACCOUNT))
    key, iv = bundle_keys(manifest, pki.ensure_cloud_ca(home).private_key())
    out = io.BytesIO()
    result = unbundle(manifest, key, iv, local_parts(str(folder)), out)
    assert result.size == len(out.getvalue())
    return out.getvalue()


def test_round_trip_over_several_parts(home: Path, image: Path, tmp_path: Path) -> None:
    built = _bundle(home, image, tmp_path, name="disk-image")
    assert len(built.part_paths) == 3
    assert [p.name for p in built.part_paths] == [f"disk.img.part.{i:02d}" for i in range(3)]
    assert all(p.stat().st_size == MIB for p in built.part_paths[:-1])
    manifest = parse_manifest(built.manifest_path.read_bytes())
    assert (manifest.name, manifest.account_id, manifest.image_type) == ("disk-image", ACCOUNT, "machine")
    assert manifest.size == image.stat().st_size
    assert manifest.bundled_size == sum(p.stat().st_size for p in built.part_paths)
    assert manifest.unbundled_sha256 == hashlib.sha256(image.read_bytes()).hexdigest()
    assert _unbundle(home, tmp_path) == image.read_bytes()


def test_manifest_is_euca2ools_2007_10_10(home: Path, image: Path, tmp_path: Path) -> None:
    built = _bundle(home, image, tmp_path, kind="kernel")
    text = built.manifest_path.read_text()
    for element in ("<version>2007-10-10</version>", "<kernel_id>true</kernel_id>",
                    '<digest algorithm="SHA1">', '<ec2_encrypted_key algorithm="AES-128-CBC">',
                    "<user_encrypted_key", "<ec2_encrypted_iv>", "<user_encrypted_iv>",
                    '<parts count="3">', '<part index="0">', "<type>kernel</type>", "<signature>"):
        assert element in text
    assert parse_manifest(built.manifest_path.read_bytes()).image_type == "kernel"


def test_openssl_reads_what_we_write(home: Path, image: Path, tmp_path: Path) -> None:
    """The same pipeline euca2ools ran: rsautl-decrypt the hex key, `openssl enc -d`, gunzip,
    untar; and the signature verifies as RSA-SHA1 over machine_configuration + image."""
    built = _bundle(home, image, tmp_path / "b")
    manifest = parse_manifest(built.manifest_path.read_bytes())
    cloud_key = pki.pki_dir(home) / pki.CLOUD_KEY

    def rsa_decrypt(hex_text: str) -> str:
        return subprocess.run(["openssl", "pkeyutl", "-decrypt", "-inkey", str(cloud_key)],
                              input=bytes.fromhex(hex_text), capture_output=True, check=True).stdout.decode()

    key, iv = rsa_decrypt(manifest.ec2_encrypted_key), rsa_decrypt(manifest.ec2_encrypted_iv)
    assert len(key) == len(iv) == 32
    joined = tmp_path / "joined"
    with open(joined, "wb") as out:
        for part in built.part_paths:
            out.write(part.read_bytes())
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run(f"openssl enc -d -aes-128-cbc -K {key} -iv {iv} < {joined} | gzip -dc | tar -x -C {extract}",
                   shell=True, check=True)
    assert (extract / "disk.img").read_bytes() == image.read_bytes()
    cert = pki.user_certificate_paths(home, ACCOUNT, "admin").cert_path
    pub = tmp_path / "pub.pem"
    subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout", "-out", str(pub)], check=True)
    (tmp_path / "sig").write_bytes(bytes.fromhex(manifest.signature))
    (tmp_path / "data").write_bytes(manifest.signed_text)
    verified = subprocess.run(["openssl", "dgst", "-sha1", "-verify", str(pub), "-signature",
                               str(tmp_path / "sig"), str(tmp_path / "data")], capture_output=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_tampered_part_is_named(home: Path, image: Path, tmp_path: Path) -> None:
    built = _bundle(home, image, tmp_path)
    with open(built.part_paths[2], "r+b") as part:
        part.seek(100)
        byte = part.read(1)
        part.seek(100)
        part.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(PartDigestMismatch) as caught:
        _unbundle(home, tmp_path)
    assert "part 2 (disk.img.part.02) is corrupt" in caught.value.reason


def test_missing_part_is_reported(home: Path, image: Path, tmp_path: Path) -> None:
    built = _bundle(home, image, tmp_path)
    built.part_paths[1].unlink()
    with pytest.raises(CorruptBundle, match="part 1 .* is missing"):
        _unbundle(home, tmp_path)


def test_tampered_manifest_fails_its_signature(home: Path, image: Path, tmp_path: Path) -> None:
    built = _bundle(home, image, tmp_path, name="honest")
    forged = built.manifest_path.read_bytes().replace(b"<name>honest</name>", b"<name>forged</name>")
    with pytest.raises(SignatureInvalid, match="altered after signing"):
        _unbundle(home, tmp_path, forged)


def test_manifest_signed_by_a_stranger_is_refused(home: Path, image: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    pki.ensure_user_certificate(stranger, ACCOUNT, "admin")  # same account id, another cloud's CA
    user = pki.user_certificate_paths(stranger, ACCOUNT, "admin")
    built = build_bundle(image, tmp_path / "b", account_id=ACCOUNT,
                         cloud_cert=pki.ensure_cloud_ca(home).certificate(), user_cert=user.certificate(),
                         user_key=user.private_key(), part_size=MIB)
    manifest = parse_manifest(built.manifest_path.read_bytes())
    with pytest.raises(SignatureInvalid):
        verify_manifest(manifest, pki.account_certificates(home, ACCOUNT))
    assert pki.account_certificates(home, "999999999999") == []


def test_bundle_for_another_cloud_cannot_be_decrypted(home: Path, image: Path, tmp_path: Path) -> None:
    other = pki.ensure_cloud_ca(tmp_path / "other-cloud")
    user = pki.user_certificate_paths(home, ACCOUNT, "admin")
    built = build_bundle(image, tmp_path / "b", account_id=ACCOUNT, cloud_cert=other.certificate(),
                         user_cert=user.certificate(), user_key=user.private_key(), part_size=MIB)
    manifest = parse_manifest(built.manifest_path.read_bytes())
    verify_manifest(manifest, pki.account_certificates(home, ACCOUNT))  # the user did sign it
    with pytest.raises(DecryptionFailed, match="not encrypted for this cloud"):
        bundle_keys(manifest, pki.ensure_cloud_ca(home).private_key())


def test_wrong_key_in_manifest_fails_cleanly(home: Path, image: Path, tmp_path: Path) -> None:
    built = _bundle(home, image, tmp_path)
    manifest = parse_manifest(built.manifest_path.read_bytes())
    with pytest.raises((CorruptBundle, DecryptionFailed)):
        unbundle(manifest, "00" * 16, "00" * 16, local_parts(str(tmp_path)), io.BytesIO())


def test_malformed_manifests(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not well-formed"):
        parse_manifest(b"<manifest><image>")
    with pytest.raises(ManifestError, match="root element"):
        parse_manifest(b"<ListBucketResult/>")
    with pytest.raises(ManifestError, match="lacks image > name"):
        parse_manifest(b"<manifest><machine_configuration/><image><size>1</size></image></manifest>")


def test_empty_image(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    _bundle(home, empty, tmp_path / "b")
    assert _unbundle(home, tmp_path / "b") == b""
