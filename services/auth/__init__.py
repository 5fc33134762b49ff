"""Server-side AWS signature verification, shared by the CLC (EC2 Query) and Walrus (S3).

    view = view_from_asgi(request.scope, body)              # or RequestView(...) by hand
    identity = verify_ec2(view, secrets)                     # raises AuthError
    identity = verify_s3(view_from_asgi(scope, b"", bucket), secrets)   # None when anonymous

SigV4 (Authorization header and presigned query) and SigV2 (EC2 Query parameters, S3
"AWS AK:sig" header and AWSAccessKeyId/Signature/Expires query) are accepted. For S3
aws-chunked bodies signed chunk by chunk, chunk_signature() continues the chain from
identity.seed_signature.
"""

from services.auth.asgi import joined_headers, view_from_asgi
from services.auth.ec2 import verify_ec2
from services.auth.model import (
    SCHEME_V2_QUERY,
    SCHEME_V2_S3_HEADER,
    SCHEME_V2_S3_QUERY,
    SCHEME_V4_HEADER,
    SCHEME_V4_QUERY,
    Identity,
    RequestView,
    SecretLookup,
)
from services.auth.s3 import PAYLOAD_MARKERS, verify_s3
from services.auth.sigv4 import chunk_signature, sign_v4_headers, trailer_signature

__all__ = [
    "PAYLOAD_MARKERS",
    "SCHEME_V2_QUERY",
    "SCHEME_V2_S3_HEADER",
    "SCHEME_V2_S3_QUERY",
    "SCHEME_V4_HEADER",
    "SCHEME_V4_QUERY",
    "Identity",
    "RequestView",
    "SecretLookup",
    "chunk_signature",
    "sign_v4_headers",
    "trailer_signature",
    "joined_headers",
    "verify_ec2",
    "verify_s3",
    "view_from_asgi",
]
