"""The EC2 Query protocol, driven by botocore's EC2 model: requests in (`parse_request`),
results and errors out as XML (`render_result`, `render_error`). Handlers see only dicts keyed
by the model's member names; no handler writes XML or reads raw parameters."""

from services.ec2query.model import NAMESPACE, operation_names
from services.ec2query.reader import Ec2Request, parse_request
from services.ec2query.writer import ShapeMismatch, render_error, render_result

__all__ = ["NAMESPACE", "Ec2Request", "ShapeMismatch", "operation_names", "parse_request",
           "render_error", "render_result"]
