"""Access to botocore's EC2 service model, loaded once per process and only when first needed
(the model is large: loading it costs most of a second and tens of megabytes)."""

from __future__ import annotations

import functools
import threading

import botocore.session
from botocore.model import OperationModel, ServiceModel

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
