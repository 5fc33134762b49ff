"""SSH key pairs as EC2 makes them: generation (RSA 2048, ED25519), private key formats (PEM,
PuTTY's PPK), public keys users import, and EC2's fingerprint rules, which differ by how the
key arrived:

- a key EC2 created, RSA: SHA-1 of the DER PKCS#8 private key, colon-separated hex;
- a key the user imported, RSA: MD5 of the DER SubjectPublicKeyInfo (RFC 4716 §4), colon hex;
- ED25519, created or imported: base64 SHA-256 of the OpenSSH public key blob without padding,
  as `ssh-keygen -l` prints it since OpenSSH 6.8 (without its `SHA256:` label).

Nothing here knows about accounts or databases; the private key leaves this module once and
is never stored."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

KEY_TYPES = ("rsa", "ed25519")
KEY_FORMATS = ("pem", "ppk")
RSA_BITS = 2048
IMPORTABLE_RSA_BITS = (1024, 2048, 3072, 4096)

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class GeneratedKey:
    key_type: str
    public_openssh: str  # "ssh-rsa AAAA…" without a comment
    private_material: str  # what CreateKeyPair returns as KeyMaterial, once
    fingerprint: str


@dataclass(frozen=True)
class ImportedKey:
    key_type: str
    public_openssh: str
    fingerprint: str


class InvalidPublicKey(ValueError):
    """The material is not a public key we can read (or not one EC2 accepts)."""


class UnsupportedKeySize(InvalidPublicKey):
    def __init__(self, bits: int) -> None:
        super().__init__(f"RSA keys of {bits} bits are not supported")
        self.bits = bits


# ---------------------------------------------------------------------- fingerprints

def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def openssh_blob(public: PublicKey) -> bytes:
    """The SSH wire encoding of a public key (the base64 part of an OpenSSH line, decoded)."""
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def openssh_line(public: PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.OpenSSH,
                               serialization.PublicFormat.OpenSSH).decode("ascii")


def sha256_fingerprint(public: PublicKey) -> str:
    return base64.b64encode(hashlib.sha256(openssh_blob(public)).digest()).decode().rstrip("=")


def created_rsa_fingerprint(private: rsa.RSAPrivateKey) -> str:
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return _colon_hex(hashlib.sha1(der).digest())


def imported_rsa_fingerprint(public: rsa.RSAPublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return _colon_hex(hashlib.md5(der).digest())


# ---------------------------------------------------------------------- generation

def generate(key_type: str = "rsa", key_format: str = "pem", comment: str = "") -> GeneratedKey:
    """A new key pair. PEM means PKCS#1 (`BEGIN RSA PRIVATE KEY`) for RSA and the OpenSSH
    private key format for ED25519, as EC2 hands them out; `ppk` is PuTTY's format."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"key type {key_type!r}")
    if key_format not in KEY_FORMATS:
        raise ValueError(f"key format {key_format!r}")
    private: PrivateKey
    if key_type == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        fingerprint = created_rsa_fingerprint(private)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        fingerprint = sha256_fingerprint(private.public_key())
    if key_format == "ppk":
        material = to_ppk(private, comment)
    elif key_type == "rsa":
        material = private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption()).decode("ascii")
    else:
        material = private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.OpenSSH,
                                         serialization.NoEncryption()).decode("ascii")
    return GeneratedKey(key_type=key_type, public_openssh=openssh_line(private.public_key()),
                        private_material=material.rstrip("\n"), fingerprint=fingerprint)


# ---------------------------------------------------------------------- PuTTY private keys

def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _mpint(value: int) -> bytes:
    # SSH mpint: big-endian two's complement, so a set top bit needs a leading zero byte.
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b""
    return _ssh_string(raw)


def _b64_lines(data: bytes) -> list[str]:
    text = base64.b64encode(data).decode("ascii")
    return [text[i:i + 64] for i in range(0, len(text), 64)]


def to_ppk(private: PrivateKey, comment: str = "") -> str:
    """An unencrypted `PuTTY-User-Key-File-2`, the version every PuTTY release reads."""
    public_blob = openssh_blob(private.public_key())
    if isinstance(private, rsa.RSAPrivateKey):
        algorithm = "ssh-rsa"
        numbers = private.private_numbers()
        private_blob = (_mpint(numbers.d) + _mpint(numbers.p) + _mpint(numbers.q)
                        + _mpint(numbers.iqmp))
    else:
        algorithm = "ssh-ed25519"
        private_blob = _ssh_string(private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption()))
    encryption = "none"
    mac_key = hashlib.sha1(b"putty-private-key-file-mac-key").digest()
    mac_data = b"".join(_ssh_string(part) for part in (
        algorithm.encode(), encryption.encode(), comment.encode(), public_blob, private_blob))
    mac = hmac.new(mac_key, mac_data, hashlib.sha1).hexdigest()
    public_lines = _b64_lines(public_blob)
    private_lines = _b64_lines(private_blob)
    return "\n".join([f"PuTTY-User-Key-File-2: {algorithm}", f"Encryption: {encryption}",
                      f"Comment: {comment}", f"Public-Lines: {len(public_lines)}", *public_lines,
                      f"Private-Lines: {len(private_lines)}", *private_lines,
                      f"Private-MAC: {mac}"])


# ---------------------------------------------------------------------- imported public keys

_SSH_PREFIXES = (b"ssh-rsa", b"ssh-ed25519")


def _from_rfc4716(text: bytes) -> bytes:
    """The key blob of an `---- BEGIN SSH2 PUBLIC KEY ----` block (headers and their `\\`
    continuations dropped)."""
    body: list[bytes] = []
    continued = False
    for raw in text.splitlines()[1:]:
        line = raw.strip()
        if line.startswith(b"---- END SSH2 PUBLIC KEY"):
            break
        if continued or b":" in line:
            continued = line.endswith(b"\\")
            continue
        body.append(line)
    return base64.b64decode(b"".join(body), validate=True)


def _from_blob(blob: bytes) -> PublicKey:
    (length,) = struct.unpack(">I", blob[:4])
    algorithm = blob[4:4 + length]
    return _checked(serialization.load_ssh_public_key(algorithm + b" " + base64.b64encode(blob)))


def _checked(key: object) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in IMPORTABLE_RSA_BITS:
            raise UnsupportedKeySize(key.key_size)
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise InvalidPublicKey("only RSA and ED25519 keys can be imported")


def _load(material: bytes) -> PublicKey:
    text = material.strip()
    if text.startswith(_SSH_PREFIXES):
        parts = text.split()
        if len(parts) < 2:
            raise InvalidPublicKey("no key data after the key type")
        return _checked(serialization.load_ssh_public_key(b" ".join(parts[:2])))
    if text.startswith(b"---- BEGIN SSH2 PUBLIC KEY"):
        return _from_blob(_from_rfc4716(text))
    if text.startswith(b"-----BEGIN"):
        # Both SubjectPublicKeyInfo (`PUBLIC KEY`) and PKCS#1 (`RSA PUBLIC KEY`).
        return _checked(serialization.load_pem_public_key(text))
    # DER, raw or base64-encoded (EC2 accepts "Base64 encoded DER format").
    for candidate in (material, _maybe_b64(text)):
        if candidate:
            try:
                return _checked(serialization.load_der_public_key(candidate))
            except InvalidPublicKey:
                raise
            except ValueError:
                continue
    raise InvalidPublicKey("unrecognised public key format")


def _maybe_b64(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_public_key(material: bytes) -> ImportedKey:
    """Read what ImportKeyPair received. Raises InvalidPublicKey (UnsupportedKeySize for RSA
    lengths EC2 refuses)."""
    try:
        key = _load(material)
    except InvalidPublicKey:
        raise
    except (ValueError, TypeError, IndexError, struct.error, binascii.Error,
            UnicodeDecodeError) as exc:
        raise InvalidPublicKey(str(exc)) from None
    if isinstance(key, rsa.RSAPublicKey):
        return ImportedKey("rsa", openssh_line(key), imported_rsa_fingerprint(key))
    return ImportedKey("ed25519", openssh_line(key), sha256_fingerprint(key))
