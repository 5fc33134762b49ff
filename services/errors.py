"""AWS-style errors. Behaviour code raises these; each protocol's codec renders them
(EC2's `<Response><Errors>` document, S3's `<Error>` document)."""

from __future__ import annotations


class AwsError(Exception):
    """An error a client should see, with AWS's code, a message a person can act on and the
    HTTP status AWS uses for it (never below 400)."""

    status: int = 400

    def __init__(self, code: str, message: str, status: int | None = None, **extra: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        if self.status < 400:
            raise ValueError("an error answer must carry a status of 400 or more")
        # S3 adds elements such as <Key> or <BucketName> beside Code and Message.
        self.extra = extra
        # ...and some headers (x-amz-delete-marker on a GET of a deleted key).
        self.headers: dict[str, str] = {}


class EC2Error(AwsError):
    """An EC2 Query API error (400 unless said otherwise)."""


class S3Error(AwsError):
    """An S3 REST API error."""


class AuthError(AwsError):
    """A request whose credentials or signature did not check out."""

    status = 403


class InternalError(AwsError):
    status = 500

    def __init__(self, message: str = "An internal error has occurred.") -> None:
        super().__init__("InternalError", message, 500)
