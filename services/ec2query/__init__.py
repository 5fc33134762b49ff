"""The EC2 Query protocol, driven by botocore's EC2 model: requests in (`parse_request`),
results and errors out as XML (`render_result`, `render_error`). Handlers see only dicts keyed
by the model's member names; no handler writes XML or reads raw parameters."""

from __future__ import annotations

from collections.abc import Iterable

from services.ec2query.model import NAMESPACE, operation_names
from services.ec2query.reader import Ec2Request, parse_request, preload_reader
from services.ec2query.writer import ShapeMismatch, preload_writer, render_error, render_result

__all__ = ["NAMESPACE", "Ec2Request", "ShapeMismatch", "operation_names", "parse_request",
           "preload", "render_error", "render_result"]


def preload(actions: Iterable[str] | None = None) -> None:
    """Load botocore's EC2 model and compile the codec for `actions` (default: all 830, about
    0.8 s in all) at service start, so the first request does not pay for it on the event
    loop. Unknown action names raise KeyError."""
    for action in sorted(operation_names()) if actions is None else actions:
        preload_reader(action)
        preload_writer(action)
