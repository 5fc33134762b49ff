"""Access to botocore's EC2 service model, loaded once per process and only when first needed
(the model is large: loading it costs most of a second and tens of megabytes)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import botocore.session
from botocore.model import OperationModel, ServiceModel

T = TypeVar("T")

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"

_lock = threading.Lock()


_model: ServiceModel | None = None


def service_model() -> ServiceModel:
    global _model
    if _model is None:
        # The lock stops two threads of a server from loading the model twice at start-up.
        with _lock:
            if _model is None:
                _model = botocore.session.get_session().get_service_model("ec2")
    return _model


@functools.cache
def operation_names() -> frozenset[str]:
    """Every action botocore's EC2 model knows, e.g. "DescribeInstances"."""
    return frozenset(service_model().operation_names)


def api_version() -> str:
    return str(service_model().metadata["apiVersion"])


@functools.cache
def operation(action: str) -> OperationModel:
    """The operation model of a known action (KeyError for an unknown one)."""
    if action not in operation_names():
        raise KeyError(action)
    return service_model().operation_model(action)


class PerOperation(Generic[T]):
    """A codec compiled once per operation and published only when complete.

    A structure's compiled form exists before its member table is filled (that is how recursive
    shapes resolve), so other threads must never reach one while it is being built: `build`
    runs under this cache's lock, and so does every touch of the shape-level cache it fills."""

    def __init__(self) -> None:
        self._done: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, action: str, build: Callable[[], T]) -> T:
        try:
            return self._done[action]
        except KeyError:
            pass
        with self._lock:
            if action not in self._done:
                self._done[action] = build()
            return self._done[action]
