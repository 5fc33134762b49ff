"""Every EC2 operation, both directions, against botocore's own client-side code:
random inputs through EC2Serializer into parse_request, random results through render_result
into EC2QueryParser. The codec is right when what comes out is what went in."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import botocore.parsers
import botocore.serialize
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.model import ServiceModel

from services.ec2query import parse_request, render_result

from .shapegen import ShapeGen, normalise_input

MODEL: ServiceModel = botocore.session.get_session().get_service_model("ec2")
SERIALIZER = botocore.serialize.create_serializer("ec2")
PARSER = botocore.parsers.create_parser("ec2")
OPERATIONS = sorted(MODEL.operation_names)
ROUNDS = 4


def wire_pairs(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The decoded form body a boto3 client would POST for these params."""
    request = SERIALIZER.serialize_to_request(params, MODEL.operation_model(operation))
    body = AWSRequest(method="POST", url="http://ec2.test/", data=request["body"]).prepare().body
    return parse_qsl(body, keep_blank_values=True)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_request_round_trip(operation: str) -> None:
    shape = MODEL.operation_model(operation).input_shape
    for round_no in range(ROUNDS):
        gen = ShapeGen(f"in-{operation}-{round_no}", for_output=False)
        params = gen.structure(shape, 0, nonempty=False)
        parsed = parse_request(wire_pairs(operation, params))

        expected = normalise_input(params)
        assert parsed.action == operation
        assert parsed.version == "2016-11-15"
        assert parsed.dry_run == expected.pop("DryRun", False)
        assert parsed.params == expected, f"round {round_no}"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_response_round_trip(operation: str) -> None:
    shape = MODEL.operation_model(operation).output_shape
    for round_no in range(ROUNDS if shape is not None else 1):
        result = (ShapeGen(f"out-{operation}-{round_no}", for_output=True)
                  .structure(shape, 0, nonempty=False) if shape is not None else None)
        body = render_result(operation, result, f"req-{round_no}")
        parsed = PARSER.parse({"body": body, "headers": {}, "status_code": 200}, shape)

        metadata = parsed.pop("ResponseMetadata")
        assert metadata["RequestId"] == f"req-{round_no}"
        assert parsed == (result or {}), f"round {round_no}"
