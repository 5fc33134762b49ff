"""The codec behind a real HTTP server, driven by the real clients: boto3, the AWS CLI (which
carries its own, older botocore and model) and boto 2 (Version 2014-10-01, its own XML reader).
The server does no auth: signatures are the auth layer's job, not the codec's."""

from __future__ import annotations

from tests.support import EMPTY_AWS_FILE

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import botocore.exceptions
import pytest

from services.ec2query import Ec2Request, parse_request, render_error, render_result
from services.errors import EC2Error


@dataclass
class FakeCloud:
    """Answers each action with a canned result and remembers what it was asked."""

    results: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    seen: list[Ec2Request] = field(default_factory=list)
    endpoint: str = ""

    def answer(self, pairs: list[tuple[str, str]]) -> tuple[int, bytes]:
        request_id = f"req-{len(self.seen) + 1}"
        try:
            request = parse_request(pairs)
            self.seen.append(request)
            if request.dry_run:
                raise EC2Error("DryRunOperation", "Request would have succeeded, but DryRun "
                               "flag is set.", 412)
            return 200, render_result(request.action, self.results.get(request.action),
                                      request_id)
        except EC2Error as error:
            return error.status, render_error(error.code, error.message, request_id)


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeCloud]:
    fake = FakeCloud()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8")
            pairs = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
            pairs += parse_qsl(body, keep_blank_values=True)
            status, answer = fake.answer(pairs)
            self.send_response(status)
            self.send_header("Content-Type", "text/xml;charset=UTF-8")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def ec2(cloud: FakeCloud) -> Any:
    return boto3.client("ec2", endpoint_url=cloud.endpoint, region_name="eucalyptus",
                        aws_access_key_id="AKTEST", aws_secret_access_key="secret")


REGIONS = {"Regions": [{"RegionName": "eucalyptus", "Endpoint": "http://127.0.0.1:8773/"}]}


def test_boto3_filters_reach_the_server_and_results_come_back(cloud: FakeCloud, ec2: Any) -> None:
    cloud.results["DescribeInstances"] = {"Reservations": [{
        "ReservationId": "r-1", "OwnerId": "000000000001", "Groups": [],
        "Instances": [{"InstanceId": "i-1", "State": {"Code": 16, "Name": "running"},
                       "Tags": [{"Key": "Name", "Value": "a & <b> é"}]}]}]}
    answer = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["a & b", " "]}],
                                    InstanceIds=["i-1", "i-2"])
    assert cloud.seen[-1].params == {"Filters": [{"Name": "tag:Name", "Values": ["a & b", " "]}],
                                     "InstanceIds": ["i-1", "i-2"]}
    instance = answer["Reservations"][0]["Instances"][0]
    assert instance["State"] == {"Code": 16, "Name": "running"}
    assert instance["Tags"] == [{"Key": "Name", "Value": "a & <b> é"}]
    assert answer["ResponseMetadata"]["RequestId"].startswith("req-")


def test_boto3_sees_errors_with_code_status_and_request_id(cloud: FakeCloud, ec2: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.create_tags(Resources=["i-1"], Tags=[{"Key": "k", "Value": ""}], DryRun=True)
    error = caught.value.response
    assert error["Error"]["Code"] == "DryRunOperation"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert error["ResponseMetadata"]["RequestId"].startswith("req-")
    assert cloud.seen[-1].params == {"Resources": ["i-1"], "Tags": [{"Key": "k", "Value": ""}]}
    ec2.create_tags(Resources=["i-1"], Tags=[{"Key": "k", "Value": ""}])


def test_aws_cli_with_its_own_model(cloud: FakeCloud) -> None:
    cloud.results["DescribeRegions"] = REGIONS
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKTEST", "AWS_SECRET_ACCESS_KEY": "secret",
           "AWS_DEFAULT_REGION": "eucalyptus", "AWS_CONFIG_FILE": EMPTY_AWS_FILE,
           "AWS_SHARED_CREDENTIALS_FILE": EMPTY_AWS_FILE}
    aws = Path(sys.executable).with_name("aws")
    done = subprocess.run([str(aws), "ec2", "describe-regions", "--region-names", "eucalyptus",
                           "--endpoint-url", cloud.endpoint, "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Regions"][0]["RegionName"] == "eucalyptus"
    assert cloud.seen[-1].params == {"RegionNames": ["eucalyptus"]}


@pytest.mark.filterwarnings("ignore:the imp module is deprecated:DeprecationWarning")
def test_boto2_with_its_old_version(cloud: FakeCloud) -> None:
    # boto 2 is slow to import; only this test needs it.
    import boto.ec2.connection
    from boto.regioninfo import RegionInfo

    cloud.results["DescribeRegions"] = REGIONS
    port = int(cloud.endpoint.rsplit(":", 1)[1])
    # The endpoint comes from the region: boto 2 ignores `host` for EC2.
    connection = boto.ec2.connection.EC2Connection(
        aws_access_key_id="AKTEST", aws_secret_access_key="secret", is_secure=False,
        region=RegionInfo(name="eucalyptus", endpoint="127.0.0.1"), port=port, path="/")
    regions = connection.get_all_regions(region_names=["eucalyptus"])
    assert [region.name for region in regions] == ["eucalyptus"]
    assert regions[0].endpoint == "http://127.0.0.1:8773/"
    assert cloud.seen[-1].version == "2014-10-01"
    assert cloud.seen[-1].params == {"RegionNames": ["eucalyptus"]}
