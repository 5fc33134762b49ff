"""What a multipart upload must be before it completes, on any store: the rules of S3's
CompleteMultipartUpload that Walrus checks on its own rows (walrus/ops/multipart.py,
walrus/ops/cluster_parts.py)."""

from __future__ import annotations

from services.errors import S3Error
from walrus.models import Part, Upload

__all__ = ["MIN_PART_SIZE", "chosen_parts", "no_upload"]

MIN_PART_SIZE = 5 * 1024 * 1024


def no_upload(upload_id: str) -> S3Error:
    return S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be "
                   "invalid, or the upload may have been aborted or completed.", 404,
                   UploadId=upload_id)


def chosen_parts(upload: Upload, stored: dict[int, Part],
                 wanted: list[tuple[int, str]]) -> list[Part]:
    chosen: list[Part] = []
    for index, (number, etag) in enumerate(wanted):
        part = stored.get(number)
        if part is None or part.etag != etag:
            raise S3Error("InvalidPart", "One or more of the specified parts could not be found. "
                          "The part may not have been uploaded, or the specified entity tag may "
                          "not match the part's entity tag.", UploadId=upload.upload_id,
                          PartNumber=str(number), ETag=etag)
        if index < len(wanted) - 1 and part.size < MIN_PART_SIZE:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum "
                          "allowed object size.", ProposedSize=str(part.size),
                          MinSizeAllowed=str(MIN_PART_SIZE), PartNumber=str(number),
                          ETag=etag)
        chosen.append(part)
    return chosen
