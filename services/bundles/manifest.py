"""`manifest.xml`, version 2007-10-10, as euca2ools wrote it and Eucalyptus read it.

The signature covers the text of `<machine_configuration>…</machine_configuration>` followed by
`<image>…</image>`, exactly as they stand in the file, so reading takes those two substrings
from the raw bytes rather than re-serializing a parsed tree."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from services.bundles.errors import ManifestError
from services.safexml import UnreadableXml, read_xml

VERSION = "2007-10-10"
KINDS = ("machine", "kernel", "ramdisk")
# euca2ools's default mappings for a machine image: the root disk, ephemeral disk and swap.
DEFAULT_MAPPINGS = {"ami": "sda1", "root": "/dev/sda1", "ephemeral0": "sda2", "swap": "sda3"}
_DIGEST = re.compile(r"^[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class ManifestPart:
    index: int
    filename: str
    digest: str              # hex SHA-1 of the part file
    digest_algorithm: str = "SHA1"


@dataclass
class Manifest:
    name: str
    account_id: str          # <image><user>
    image_type: str          # machine | kernel | ramdisk
    architecture: str
    digest: str              # SHA-1 of the tar stream (before gzip), as euca2ools computed it
    size: int                # the image file's size
    bundled_size: int        # sum of the encrypted parts
    ec2_encrypted_key: str
    ec2_encrypted_iv: str
    user_encrypted_key: str
    user_encrypted_iv: str
    parts: list[ManifestPart]
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    block_device_mappings: dict[str, str] = field(default_factory=dict)
    digest_algorithm: str = "SHA1"
    enc_algorithm: str = "AES-128-CBC"
    # eucasim's addition (euca2ools ignores unknown elements): SHA-256 of the image itself,
    # so a node can check what it streams. Absent from bundles other tools made.
    unbundled_sha256: str | None = None
    bundler: tuple[str, str] = ("eucasim", "1.0")
    signature: str = ""
    signed_text: bytes = b""

    def part_filenames(self) -> list[str]:
        return [p.filename for p in sorted(self.parts, key=lambda p: p.index)]


def _el(tag: str, text: object, **attrs: str) -> str:
    attributes = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    return f"<{tag}{attributes}>{escape(str(text))}</{tag}>"


def machine_configuration_xml(m: Manifest) -> str:
    inner = [_el("architecture", m.architecture)]
    # Eucalyptus marks kernel and ramdisk images with the magic value "true" here.
    kernel = "true" if m.image_type == "kernel" else m.kernel_id
    ramdisk = "true" if m.image_type == "ramdisk" else m.ramdisk_id
    if kernel:
        inner.append(_el("kernel_id", kernel))
    if ramdisk:
        inner.append(_el("ramdisk_id", ramdisk))
    if m.image_type == "machine" and m.block_device_mappings:
        mappings = "".join(f"<mapping>{_el('device', d)}{_el('virtual', v)}</mapping>"
                           for v, d in sorted(m.block_device_mappings.items()))
        inner.append(f"<block_device_mapping>{mappings}</block_device_mapping>")
    return f"<machine_configuration>{''.join(inner)}</machine_configuration>"


def image_xml(m: Manifest) -> str:
    enc = {"algorithm": m.enc_algorithm}
    parts = "".join(f'<part index="{p.index}">{_el("filename", p.filename)}'
                    f'{_el("digest", p.digest, algorithm=p.digest_algorithm)}</part>'
                    for p in sorted(m.parts, key=lambda p: p.index))
    inner = [_el("name", m.name), _el("user", m.account_id),
             _el("digest", m.digest, algorithm=m.digest_algorithm), _el("size", m.size),
             _el("bundled_size", m.bundled_size), _el("type", m.image_type),
             _el("ec2_encrypted_key", m.ec2_encrypted_key, **enc),
             _el("user_encrypted_key", m.user_encrypted_key, **enc),
             _el("ec2_encrypted_iv", m.ec2_encrypted_iv), _el("user_encrypted_iv", m.user_encrypted_iv),
             f'<parts count="{len(m.parts)}">{parts}</parts>']
    if m.unbundled_sha256:
        inner.append(_el("unbundled_digest", m.unbundled_sha256, algorithm="SHA256"))
    return f"<image>{''.join(inner)}</image>"


def render_manifest(m: Manifest) -> bytes:
    """The manifest document; `m.signature` must already sign `signed_bytes(m)`."""
    bundler = (f"<bundler>{_el('name', m.bundler[0])}{_el('version', m.bundler[1])}"
               f"{_el('release', 0)}</bundler>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<manifest>{_el("version", VERSION)}{bundler}'
            f"{machine_configuration_xml(m)}{image_xml(m)}{_el('signature', m.signature)}"
            f"</manifest>\n").encode()


def signed_bytes(m: Manifest) -> bytes:
    return (machine_configuration_xml(m) + image_xml(m)).encode()


# ---------------------------------------------------------------------- reading

def _raw_element(data: bytes, tag: str) -> bytes:
    start = data.find(b"<" + tag.encode())
    end_tag = b"</" + tag.encode() + b">"
    end = data.rfind(end_tag)
    if start < 0 or end < start:
        raise ManifestError(f"manifest.xml has no <{tag}> element")
    return data[start:end + len(end_tag)]


def _text(root: ET.Element, path: str, required: bool = True) -> str | None:
    node = root.find(path)
    if node is None or node.text is None or not node.text.strip():
        if required:
            raise ManifestError(f"manifest.xml lacks {path.replace('/', ' > ')}")
        return None
    return node.text.strip()


def _int(root: ET.Element, path: str) -> int:
    text = _text(root, path)
    assert text is not None
    try:
        value = int(text)
    except ValueError:
        raise ManifestError(f"manifest.xml: {path} is not a number: {text!r}") from None
    if value < 0:
        raise ManifestError(f"manifest.xml: {path} is negative")
    return value


def _parts(root: ET.Element) -> list[ManifestPart]:
    container = root.find("image/parts")
    if container is None:
        raise ManifestError("manifest.xml lists no <parts>")
    parts: list[ManifestPart] = []
    for node in container.findall("part"):
        filename = _text(node, "filename")
        digest = _text(node, "digest")
        assert filename is not None and digest is not None
        if "/" in filename or filename in (".", ".."):
            raise ManifestError(f"manifest.xml names a part outside its folder: {filename!r}")
        if not _DIGEST.match(digest):
            raise ManifestError(f"manifest.xml: part {filename} has no SHA-1 digest")
        try:
            index = int(node.get("index", ""))
        except ValueError:
            raise ManifestError(f"manifest.xml: part {filename} has no index") from None
        algorithm = (node.find("digest").get("algorithm") or "SHA1")  # type: ignore[union-attr]
        parts.append(ManifestPart(index, filename, digest.lower(), algorithm))
    count = container.get("count")
    if count is not None and count.isascii() and count.isdigit() and int(count) != len(parts):
        raise ManifestError(f"manifest.xml says {count} parts but lists {len(parts)}")
    if sorted(p.index for p in parts) != list(range(len(parts))):
        raise ManifestError("manifest.xml: part indexes are not 0..N-1")
    if not parts:
        raise ManifestError("manifest.xml lists no parts")
    return sorted(parts, key=lambda p: p.index)


def parse_manifest(data: bytes) -> Manifest:
    try:
        root = read_xml(data)
    except UnreadableXml as exc:
        raise ManifestError(f"manifest.xml: {exc}") from None
    if root.tag != "manifest":
        raise ManifestError(f"not a bundle manifest: the root element is <{root.tag}>")
    image_type = (_text(root, "image/type", required=False) or "machine").lower()
    if image_type not in KINDS:
        raise ManifestError(f"manifest.xml: unknown image type {image_type!r}")
    kernel = _text(root, "machine_configuration/kernel_id", required=False)
    ramdisk = _text(root, "machine_configuration/ramdisk_id", required=False)
    mappings: dict[str, str] = {}
    for mapping in root.findall("machine_configuration/block_device_mapping/mapping"):
        virtual, device = _text(mapping, "virtual", False), _text(mapping, "device", False)
        if virtual and device:
            mappings[virtual] = device
    digest = root.find("image/digest")
    unbundled = root.find("image/unbundled_digest")
    enc_key = root.find("image/ec2_encrypted_key")
    bundler_name = _text(root, "bundler/name", required=False) or ""
    bundler_version = _text(root, "bundler/version", required=False) or ""
    manifest = Manifest(
        name=_text(root, "image/name") or "", account_id=_text(root, "image/user") or "",
        image_type=image_type,
        architecture=_text(root, "machine_configuration/architecture", required=False) or "x86_64",
        digest=(_text(root, "image/digest") or "").lower(),
        digest_algorithm=(digest.get("algorithm") if digest is not None else None) or "SHA1",
        size=_int(root, "image/size"), bundled_size=_int(root, "image/bundled_size"),
        ec2_encrypted_key=_text(root, "image/ec2_encrypted_key") or "",
        ec2_encrypted_iv=_text(root, "image/ec2_encrypted_iv") or "",
        user_encrypted_key=_text(root, "image/user_encrypted_key", required=False) or "",
        user_encrypted_iv=_text(root, "image/user_encrypted_iv", required=False) or "",
        enc_algorithm=(enc_key.get("algorithm") if enc_key is not None else None) or "AES-128-CBC",
        parts=_parts(root),
        kernel_id=None if kernel in (None, "true") else kernel,
        ramdisk_id=None if ramdisk in (None, "true") else ramdisk,
        block_device_mappings=mappings,
        unbundled_sha256=(unbundled.text or "").strip().lower() or None if unbundled is not None else None,
        bundler=(bundler_name, bundler_version),
        signature=_text(root, "signature") or "",
        signed_text=_raw_element(data, "machine_configuration") + _raw_element(data, "image"),
    )
    if manifest.enc_algorithm.upper() != "AES-128-CBC":
        raise ManifestError(f"manifest.xml: unsupported encryption {manifest.enc_algorithm}")
    if not _DIGEST.match(manifest.digest):
        raise ManifestError("manifest.xml: the image digest is not a SHA-1")
    return manifest
