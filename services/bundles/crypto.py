"""The cryptography of a bundle, in euca2ools's exact forms: the AES key and IV are 32-digit
hex strings (they were handed to `openssl enc -K … -iv …`), each encrypted with RSA PKCS#1 v1.5
(`openssl rsautl -encrypt -pkcs`) and written as hex; the manifest is signed RSA-SHA1
PKCS#1 v1.5, hex. The data itself is AES-128-CBC with PKCS#7 padding, as `openssl enc` does."""

from __future__ import annotations

import binascii
import secrets

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from services.bundles.errors import DecryptionFailed

ALGORITHM = "AES-128-CBC"
BLOCK = 16


def new_key_and_iv() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(16)


def _rsa_public(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("bundles need an RSA certificate")
    return key


def encrypt_for(cert: x509.Certificate, hex_text: str) -> str:
    return _rsa_public(cert).encrypt(hex_text.encode("ascii"), padding.PKCS1v15()).hex()


def decrypt_with(key: rsa.RSAPrivateKey, hex_cipher: str, what: str) -> str:
    """The hex key or IV that `hex_cipher` hides; `DecryptionFailed` if it was not encrypted
    for `key` (a bundle made for another cloud)."""
    try:
        plain = key.decrypt(binascii.unhexlify(hex_cipher.strip()), padding.PKCS1v15())
        text = plain.decode("ascii").strip().lower()
        if len(text) != 32:
            raise ValueError(text)
        bytes.fromhex(text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise DecryptionFailed(f"the bundle's {what} is not encrypted for this cloud's certificate "
                               f"(was it bundled with another cloud's cloud-cert.pem?)") from None
    return text


def sign(key: rsa.RSAPrivateKey, data: bytes) -> str:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA1()).hex()


def signature_valid(cert: x509.Certificate, signature_hex: str, data: bytes) -> bool:
    try:
        _rsa_public(cert).verify(binascii.unhexlify(signature_hex.strip()), data,
                                 padding.PKCS1v15(), hashes.SHA1())
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


class Encryptor:
    """AES-128-CBC over a stream: feed `update`, end with `finish` (adds the padding)."""

    def __init__(self, key_hex: str, iv_hex: str) -> None:
        self._cipher = Cipher(algorithms.AES(bytes.fromhex(key_hex)), modes.CBC(bytes.fromhex(iv_hex))).encryptor()
        self._padder = sym_padding.PKCS7(128).padder()

    def update(self, data: bytes) -> bytes:
        return self._cipher.update(self._padder.update(data))

    def finish(self) -> bytes:
        return self._cipher.update(self._padder.finalize()) + self._cipher.finalize()


class Decryptor:
    def __init__(self, key_hex: str, iv_hex: str) -> None:
        self._cipher = Cipher(algorithms.AES(bytes.fromhex(key_hex)), modes.CBC(bytes.fromhex(iv_hex))).decryptor()
        self._unpadder = sym_padding.PKCS7(128).unpadder()

    def update(self, data: bytes) -> bytes:
        return self._unpadder.update(self._cipher.update(data))

    def finish(self) -> bytes:
        try:
            return self._unpadder.update(self._cipher.finalize()) + self._unpadder.finalize()
        except ValueError:
            raise DecryptionFailed("the bundle's last block has no valid padding: the parts are "
                                   "truncated or were encrypted with another key") from None
