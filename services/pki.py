"""The cloud's X.509 certificates, as Eucalyptus kept them.

At first start the cloud creates its own certificate authority (`EUCASIM_HOME/pki/cloud-cert.pem`
and `cloud-pk.pem`). Bundles encrypt their AES key under that certificate, so only the cloud
(Walrus) can decrypt an image. Each user gets a key pair and a certificate signed by the cloud
(`pki/users/<account id>/euca2-<user>-cert.pem` / `-pk.pem`): the user signs bundle manifests
with that key, and the CLC and Walrus check the signature against the certificates the cloud
issued for the manifest's account."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

KEY_BITS = 2048
CLOUD_CERT = "cloud-cert.pem"
CLOUD_KEY = "cloud-pk.pem"
_NAME_SAFE = re.compile(r"^[A-Za-z0-9._@+=,-]{1,64}$")


@dataclass(frozen=True)
class CertificatePair:
    """A certificate and its private key, as files (what euca2ools-style tools take)."""

    cert_path: Path
    key_path: Path

    def certificate(self) -> x509.Certificate:
        return load_certificate(self.cert_path)

    def private_key(self) -> rsa.RSAPrivateKey:
        return load_private_key(self.key_path)


def pki_dir(home: Path) -> Path:
    return home / "pki"


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing) across processes: services that start
    together and want the same key files take turns, so one creates them and the others wait."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomic(path: Path, data: bytes, private: bool = False) -> None:
    """Write `path` whole or not at all (a crash leaves the old file or none), 0600 if private."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    """The CLC and Walrus start together and both want the CA: one creates it, the other waits."""
    folder = pki_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / ".lock"):
        yield


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    # PKCS#1 ("BEGIN RSA PRIVATE KEY"), the form euca2ools and openssl rsautl expect.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def ensure_cloud_ca(home: Path) -> CertificatePair:
    """The cloud's certificate and key, created on the first call and reused after."""
    folder = pki_dir(home)
    pair = CertificatePair(folder / CLOUD_CERT, folder / CLOUD_KEY)
    if pair.cert_path.is_file() and pair.key_path.is_file():
        return pair
    with _locked(home):
        if pair.cert_path.is_file() and pair.key_path.is_file():
            return pair
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eucasim"),
                          x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "cloud"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "eucasim cloud")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(_now() - dt.timedelta(days=1))
                .not_valid_after(_now() + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        write_atomic(pair.key_path, _key_pem(key), private=True)
        write_atomic(pair.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return pair


def _is_account_id(text: str) -> bool:
    return text.isdigit() and len(text) == 12


def _user_dir(home: Path, account_id: str) -> Path:
    if not _is_account_id(account_id):
        raise ValueError(f"not an account id: {account_id!r}")
    return pki_dir(home) / "users" / account_id


def user_certificate_paths(home: Path, account_id: str, user_name: str) -> CertificatePair:
    if not _NAME_SAFE.match(user_name):
        raise ValueError(f"user name {user_name!r} cannot name a certificate file")
    folder = _user_dir(home, account_id)
    return CertificatePair(folder / f"euca2-{user_name}-cert.pem", folder / f"euca2-{user_name}-pk.pem")


def ensure_user_certificate(home: Path, account_id: str, user_name: str) -> CertificatePair:
    """The user's certificate (signed by the cloud) and private key, issued on first request.
    `eucasim credentials` prints these paths; `eucasim image upload` signs manifests with them."""
    pair = user_certificate_paths(home, account_id, user_name)
    if pair.cert_path.is_file() and pair.key_path.is_file():
        return pair
    ca = ensure_cloud_ca(home)
    with _locked(home):
        if pair.cert_path.is_file() and pair.key_path.is_file():
            return pair
        ca_cert, ca_key = ca.certificate(), ca.private_key()
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, account_id),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "eucasim"),
                             x509.NameAttribute(NameOID.COMMON_NAME, user_name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(_now() - dt.timedelta(days=1))
                .not_valid_after(_now() + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))
        pair.key_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(pair.key_path, _key_pem(key), private=True)
        write_atomic(pair.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return pair


def issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """Whether the cloud's CA signed `cert` (and it is within its validity period)."""
    if cert.issuer != ca_cert.subject:
        return False
    ca_key = ca_cert.public_key()
    if not isinstance(ca_key, rsa.RSAPublicKey) or cert.signature_hash_algorithm is None:
        return False
    try:
        ca_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                      cert.signature_hash_algorithm)
    except InvalidSignature:
        return False
    now = _now()
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def account_certificates(home: Path, account_id: str) -> list[x509.Certificate]:
    """Every certificate the cloud issued to a user of `account_id` (the ones a manifest of
    that account may be signed with). A file the CA did not sign is ignored; so is a name that
    is no account id (a manifest's <user> is whatever its maker wrote): none was issued to it."""
    if not _is_account_id(account_id):
        return []
    folder = _user_dir(home, account_id)
    if not folder.is_dir():
        return []
    ca_cert = ensure_cloud_ca(home).certificate()
    found = []
    for path in sorted(folder.glob("euca2-*-cert.pem")):
        try:
            cert = load_certificate(path)
        except ValueError:
            continue
        if issued_by(cert, ca_cert):
            found.append(cert)
    return found
