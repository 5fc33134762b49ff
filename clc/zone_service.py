"""What the CLC's clients of a zone's services (the CC, the SC) share: one signed client kept
per address, and the one translation of a failed call into the EC2Error its callers handle.

A subclass names its service and says how a refusal and an outage read (`_refused`,
`_unavailable`); `_call` and `_unless_unknown` are all its methods use."""

from __future__ import annotations

import threading
from typing import Protocol, TypeVar

import httpx
from pydantic import BaseModel

from services.config import CloudConfig
from services.errors import EC2Error
from services.internal import InternalCallError, InternalClient

Answer = TypeVar("Answer", bound=BaseModel)


class Directory(Protocol):
    """Where a zone's service is (clc/zone_directory.py)."""

    def url(self, service: str, zone: str) -> str: ...


class ServiceError(EC2Error):
    """The zone's service refused (its EC2 code, its HTTP status in `service_status`), or, when
    `unavailable`, did not answer or failed (5xx): that reaches the user as 503."""
    unavailable = False

    def __init__(self, code: str, message: str, service_status: int) -> None:
        super().__init__(code, message, 503 if service_status >= 500 else 400)
        self.service_status = service_status


def error_of(error: InternalCallError) -> tuple[str, str]:
    """The EC2 code and message a service put in its error's JSON detail."""
    detail = error.detail
    if isinstance(detail, dict) and "code" in detail:
        return str(detail["code"]), str(detail.get("message", ""))
    return "InternalError", str(detail)


class ZoneServiceClient:
    SERVICE = ""        # the launcher's name for it: "cc", "sc"
    TITLE = ""          # how a message names it: "cluster controller"
    CALL_TIMEOUT = 30.0

    def __init__(self, config: CloudConfig, transport: httpx.BaseTransport | None = None,
                 directory: Directory | None = None) -> None:
        self._config = config
        self._transport = transport
        self._directory = directory
        self._clients: dict[str, InternalClient] = {}
        self._lock = threading.Lock()

    # -- what a subclass says ------------------------------------------------------------------

    def _unknown_zone(self, zone: str) -> EC2Error:
        return EC2Error("InvalidParameterValue", f"The zone '{zone}' does not exist")

    def _refused(self, code: str, message: str, status: int) -> ServiceError:
        raise NotImplementedError

    def _unavailable(self, message: str, status: int, code: str) -> ServiceError:
        raise NotImplementedError

    # -- the calls -----------------------------------------------------------------------------

    def _client(self, zone: str) -> InternalClient:
        if zone not in self._config.zones:
            raise self._unknown_zone(zone)
        # A zone's own registered service (register-cluster, register-sc), else the configured one.
        url = (self._directory.url(self.SERVICE, zone) if self._directory is not None
               else self._config.service_url(self.SERVICE))
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = self._clients[url] = InternalClient(
                    url, self._config.CLOUD_SECRET, transport=self._transport,
                    timeout=self.CALL_TIMEOUT)
            return client

    def _call(self, zone: str, method: str, path: str, body: BaseModel | None,
              answer: type[Answer]) -> Answer:
        try:
            result: Answer = self._client(zone).call(method, path, body, answer)
            return result
        except InternalCallError as exc:
            code, message = error_of(exc)
            if exc.status >= 500:
                raise self._unavailable(f"the {self.TITLE} of zone {zone} failed: {code}: {message}",
                                        exc.status, code) from None
            raise self._refused(code, message, exc.status) from None
        except httpx.HTTPError as exc:
            raise self._unavailable(f"the {self.TITLE} of zone {zone} did not answer: "
                                    f"{type(exc).__name__} {exc}", 503, "Unavailable") from None

    def _unless_unknown(self, zone: str, method: str, path: str, body: BaseModel | None,
                        answer: type[Answer], unknown: tuple[int, ...] = (404,)) -> Answer | None:
        """The call's answer, or None when the service does not know what it names."""
        try:
            return self._call(zone, method, path, body, answer)
        except ServiceError as exc:
            if not exc.unavailable and exc.service_status in unknown:
                return None
            raise

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
