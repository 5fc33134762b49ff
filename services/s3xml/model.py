"""botocore's S3 service model, loaded once per process when first needed, and what the model
does not say about S3's answers: the name of each answer's root element."""

from __future__ import annotations

import threading

import botocore.session
from botocore.model import OperationModel, ServiceModel

_lock = threading.Lock()
_model: ServiceModel | None = None

# The root element of each answer whose document is the output shape itself (the model names
# only the members; a payload member names its own element). As the S3 API reference gives them.
ROOTS = {
    "ListBuckets": "ListAllMyBucketsResult",
    "ListObjects": "ListBucketResult",
    "ListObjectsV2": "ListBucketResult",
    "ListObjectVersions": "ListVersionsResult",
    "ListMultipartUploads": "ListMultipartUploadsResult",
    "ListParts": "ListPartsResult",
    "GetBucketVersioning": "VersioningConfiguration",
    "GetBucketAcl": "AccessControlPolicy",
    "GetObjectAcl": "AccessControlPolicy",
    "GetBucketCors": "CORSConfiguration",
    "GetBucketLifecycleConfiguration": "LifecycleConfiguration",
    "GetObjectTagging": "Tagging",
    "GetBucketTagging": "Tagging",
    "GetObjectAttributes": "GetObjectAttributesResponse",
    "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CompleteMultipartUpload": "CompleteMultipartUploadResult",
    "DeleteObjects": "DeleteResult",
}

# Answers whose root element's text is their one member (botocore reads them with a
# customization, botocore.handlers.parse_get_bucket_location).
TEXT_ROOTS = {"GetBucketLocation": "LocationConstraint"}


def service_model() -> ServiceModel:
    global _model
    if _model is None:
        # The lock stops two threads of a server from loading the model twice at start-up.
        with _lock:
            if _model is None:
                _model = botocore.session.get_session().get_service_model("s3")
    return _model


def operation(name: str) -> OperationModel:
    """The operation model of a known S3 operation (KeyError for an unknown one)."""
    model = service_model()
    if name not in model.operation_names:
        raise KeyError(name)
    return model.operation_model(name)
