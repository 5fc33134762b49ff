"""S3's XML: answers written from botocore's `s3` model (`render`, in writer.py), request
documents read without caring about the namespace, and the `<Error>` document (documents.py)."""

from services.s3xml.documents import (MAX_XML_BODY, S3_NS, XML_DECLARATION, XSI_NS, child_text,
                                      children, error_xml, http_date, local, malformed_xml,
                                      parse_xml, timestamp)
from services.s3xml.writer import Answer, Mixed, ShapeMismatch, preload, render

__all__ = ["MAX_XML_BODY", "S3_NS", "XML_DECLARATION", "XSI_NS", "Answer", "Mixed",
           "ShapeMismatch", "child_text", "children", "error_xml", "http_date", "local",
           "malformed_xml", "parse_xml", "preload", "render", "timestamp"]
