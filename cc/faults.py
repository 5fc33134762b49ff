"""The errors the CC answers with: an HTTP status and a ClusterError body whose code is the
EC2 error code the CLC passes on to the user."""

from __future__ import annotations

from services.messages.cluster import ClusterError


class ClusterFault(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.error = ClusterError(code=code, message=message)
