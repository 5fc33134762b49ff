"""XML from outside the cloud is read without a DTD: no entity is ever expanded, whatever the
encoding, and every unreadable document is one error its reader names in its own protocol
(MalformedXML for S3, a ManifestError for bundles)."""

from __future__ import annotations

import pytest

from services.bundles.errors import ManifestError
from services.bundles.manifest import parse_manifest
from services.errors import S3Error
from services.s3xml import parse_xml
from services.safexml import UnreadableXml, read_xml

LAUGHS = ('<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">' + "".join(
    f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)) + "]>")
DECLARATIONS = {
    "billion-laughs": (LAUGHS, "&i;"),
    "external-file": ('<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
    "parameter-entity": ('<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', "x"),
    "external-dtd": ('<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">', "x"),
    "internal-entity": ('<!DOCTYPE d [<!ENTITY e "expanded">]>', "&e;"),
    "bare-doctype": ("<!DOCTYPE Delete>", "x"),
}


def _declaring(kind: str, root: str, encoding: str) -> bytes:
    prologue, reference = DECLARATIONS[kind]
    return (f'<?xml version="1.0" encoding="{encoding}"?>{prologue}'
            f"<{root}><Key>{reference}</Key></{root}>").encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-be"])
@pytest.mark.parametrize("kind", sorted(DECLARATIONS))
def test_a_document_declaring_a_dtd_is_refused_as_unsafe(kind: str, encoding: str):
    with pytest.raises(UnreadableXml) as refused:
        read_xml(_declaring(kind, "Delete", encoding))
    # UTF-16 without a byte order mark is an encoding expat refuses before any DTD.
    assert refused.value.unsafe or encoding == "utf-16-be"


@pytest.mark.parametrize("kind", sorted(DECLARATIONS))
def test_s3_documents_declaring_entities_are_malformed_xml(kind: str):
    for encoding in ("utf-8", "utf-16"):
        with pytest.raises(S3Error) as refused:
            parse_xml(_declaring(kind, "Delete", encoding), "Delete")
        assert (refused.value.code, refused.value.status) == ("MalformedXML", 400)
        assert "DTD or entities" in refused.value.message


@pytest.mark.parametrize("body", [
    b"", b"<Delete>", b"<Delete></Other>", b"\xff\xfe\x00", b"<Delete>&undefined;</Delete>",
    b'<?xml version="1.0" encoding="bogus"?><Delete/>',
    b'<?xml version="1.0" encoding="utf-32"?><Delete/>',
    b"<Delete><Key>\xc3\x28</Key></Delete>",
])
def test_unreadable_s3_documents_are_malformed_xml_not_a_failure(body: bytes):
    with pytest.raises(S3Error) as refused:
        parse_xml(body, "Delete")
    assert refused.value.code == "MalformedXML"


def test_well_formed_documents_read_in_any_encoding_they_declare():
    text = '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>kéy</Key></Object></Delete>'
    for encoding in ("utf-8", "utf-16", "iso-8859-1"):
        body = f'<?xml version="1.0" encoding="{encoding}"?>{text}'.encode(encoding)
        root = parse_xml(body, "Delete")
        assert [k.text for k in root.iter("{http://s3.amazonaws.com/doc/2006-03-01/}Key")] == ["kéy"]


def test_deep_nesting_is_read_without_recursion():
    depth = 50_000
    root = read_xml(b"<a>" * depth + b"</a>" * depth)
    assert root.tag == "a"


def test_wrong_root_and_oversized_documents_are_malformed_xml():
    with pytest.raises(S3Error, match="Expected a Delete document"):
        parse_xml(b"<Other/>", "Delete")
    with pytest.raises(S3Error) as refused:
        parse_xml(b"<Delete>" + b" " * (1024 * 1024) + b"</Delete>", "Delete")
    assert refused.value.code == "MalformedXML"


@pytest.mark.parametrize("kind", sorted(DECLARATIONS))
def test_a_bundle_manifest_declaring_entities_is_refused(kind: str):
    prologue, reference = DECLARATIONS[kind]
    manifest = (f'<?xml version="1.0"?>{prologue}<manifest><image><name>{reference}</name>'
                "</image></manifest>").encode()
    with pytest.raises(ManifestError, match="DTD or entities"):
        parse_manifest(manifest)
