"""XML from outside the cloud (S3 request documents, bundle manifests) read through defusedxml:
no document type declaration, so no entity of any kind (billion laughs, external entities,
external DTDs), whatever the document's encoding says. Every reason a document cannot be read
is one exception, `UnreadableXml`, for the caller to name in its own protocol."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as defused


class UnreadableXml(ValueError):
    """Not well-formed, in an encoding expat does not know, or declaring a DTD or entities."""

    def __init__(self, message: str, *, unsafe: bool = False) -> None:
        super().__init__(message)
        self.unsafe = unsafe


def read_xml(data: bytes) -> ET.Element:
    """The document's root element. A byte scan for `<!DOCTYPE` would not do: the same
    declaration in UTF-16 has no such bytes, and expat would expand its entities."""
    try:
        return defused.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                  forbid_external=True)
    except DefusedXmlException as exc:
        raise UnreadableXml(f"the document declares a DTD or entities ({type(exc).__name__})",
                            unsafe=True) from None
    except ET.ParseError as exc:
        raise UnreadableXml(f"not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # encoding="bogus", or one Python cannot decode
        raise UnreadableXml(f"unreadable XML: {exc}") from None
