"""The cloud's own certificate authority and the public endpoints' server certificate.

At first start `ensure_tls(config)` creates, under $EUCASIM_HOME/tls/, a CA (kept for the life of
the cloud: clients trust it once, through AWS_CA_BUNDLE) and a server certificate it signs for
127.0.0.1, localhost, *.localhost (virtual-host buckets) and PUBLIC_HOST. A later start reuses
both, and issues a new server certificate only when the names it must cover have changed.
Several services may start at once, so creation holds a file lock."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.config import CloudConfig
from services.pki import file_lock, write_atomic

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest lifetime Apple and browsers accept for a server certificate


@dataclass(frozen=True)
class TlsFiles:
    certfile: Path  # server certificate followed by the CA certificate (a full chain)
    keyfile: Path
    ca_bundle: Path  # what clients trust: AWS_CA_BUNDLE, boto3 verify=, curl --cacert


def tls_dir(config: CloudConfig) -> Path:
    return config.EUCASIM_HOME / "tls"


def server_names(config: CloudConfig) -> list[str]:
    """Every name and address the server certificate must cover, sorted."""
    names = {"localhost", "*.localhost", "127.0.0.1", config.PUBLIC_HOST}
    if config.BIND_ADDRESS not in ("0.0.0.0", "::", ""):
        names.add(config.BIND_ADDRESS)
    if not _is_ip(config.PUBLIC_HOST):
        names.add(f"*.{config.PUBLIC_HOST}")
    return sorted(n for n in names if n)


def ensure_tls(config: CloudConfig) -> TlsFiles:
    """(certfile, keyfile, ca_bundle) for the public endpoints, created when missing."""
    folder = tls_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "server.pem", folder / "server.key", config.ca_bundle)
    names = server_names(config)
    with file_lock(folder / ".lock"):
        ca_key_path = folder / "ca.key"
        if not (files.ca_bundle.exists() and ca_key_path.exists()):
            ca_key, ca_cert = _new_ca()
            write_atomic(ca_key_path, _key_pem(ca_key), private=True)
            write_atomic(files.ca_bundle, ca_cert.public_bytes(serialization.Encoding.PEM))
        names_file = folder / "server.names.json"
        current = json.loads(names_file.read_text()) if names_file.exists() else None
        if current != names or not files.certfile.exists() or not files.keyfile.exists():
            ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
            ca_cert = x509.load_pem_x509_certificate(files.ca_bundle.read_bytes())
            key, cert = _new_server(ca_key, ca_cert, names)  # type: ignore[arg-type]
            write_atomic(files.keyfile, _key_pem(key), private=True)
            write_atomic(files.certfile, cert.public_bytes(serialization.Encoding.PEM)
                   + ca_cert.public_bytes(serialization.Encoding.PEM))
            write_atomic(names_file, json.dumps(names).encode())
    return files


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eucasim"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "eucasim cloud CA")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _new_server(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                names: list[str]) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        if _is_ip(name):
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        else:
            alt.append(x509.DNSName(name))
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert
