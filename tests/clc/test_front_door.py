"""The EC2 endpoint refuses bad requests with EC2's codes and statuses, and changes nothing."""

import datetime as dt
import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.support.clc import RunningClc
from tests.support.signing import clock, signed_ec2_call


def _error(response: httpx.Response) -> tuple[int, str]:
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    assert root.find("RequestID") is not None and root.find("RequestID").text
    return response.status_code, root.find("Errors/Error/Code").text


def _call(clc: RunningClc, params: dict, **kwargs) -> httpx.Response:
    key = kwargs.pop("key", clc.admin)
    return signed_ec2_call(clc.url, {"Version": "2016-11-15", **params}, key.access_key,
                           kwargs.pop("secret", key.secret_key), **kwargs)


def _key_names(ec2) -> set[str]:
    return {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}


@pytest.mark.parametrize("path", ["/", "/services/compute", "/services/Eucalyptus"])
def test_served_at_the_paths_eucalyptus_clients_use(clc: RunningClc, path: str):
    response = _call(clc, {"Action": "DescribeRegions"}, path=path)
    assert response.status_code == 200, response.text
    assert b"<regionName>eucalyptus</regionName>" in response.content


def test_wrong_secret_is_auth_failure_and_creates_nothing(clc: RunningClc, ec2):
    response = _call(clc, {"Action": "CreateKeyPair", "KeyName": "never-made"}, secret="wrong")
    assert _error(response) == (401, "AuthFailure")
    assert "never-made" not in _key_names(ec2)


def test_unknown_access_key_is_auth_failure(clc: RunningClc):
    response = signed_ec2_call(clc.url, {"Action": "DescribeRegions"}, "AKIDUNKNOWN000000000", "x")
    assert _error(response) == (401, "AuthFailure")


def test_unsigned_request_is_missing_authentication_token(clc: RunningClc):
    response = httpx.post(clc.url, data={"Action": "DescribeRegions", "Version": "2016-11-15"})
    assert _error(response) == (401, "MissingAuthenticationToken")


def test_expired_timestamp_is_refused_and_creates_nothing(clc: RunningClc, ec2):
    with clock(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)):
        response = _call(clc, {"Action": "CreateKeyPair", "KeyName": "too-late"})
    status, code = _error(response)
    assert (status, code) == (400, "RequestExpired")
    assert "too-late" not in _key_names(ec2)


def test_timestamp_within_the_skew_window_is_accepted(clc: RunningClc):
    with clock(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)):
        assert _call(clc, {"Action": "DescribeRegions"}).status_code == 200


def test_missing_parameter(clc: RunningClc):
    assert _error(_call(clc, {"Action": "CreateKeyPair"})) == (400, "MissingParameter")


def test_malformed_list_index(clc: RunningClc):
    response = _call(clc, {"Action": "DescribeRegions", "RegionName.abc": "eucalyptus"})
    assert _error(response) == (400, "InvalidParameterValue")
    response = _call(clc, {"Action": "DescribeRegions", "RegionName.01": "eucalyptus"})
    assert _error(response) == (400, "InvalidParameterValue")
    # From 0, as libcloud numbers CreateTags' lists, is a list like any other.
    assert _call(clc, {"Action": "DescribeRegions", "RegionName.0": "eucalyptus"}).status_code == 200


def test_wrong_type(clc: RunningClc):
    response = _call(clc, {"Action": "DescribeInstanceTypes", "MaxResults": "lots"})
    assert _error(response) == (400, "InvalidParameterValue")


def test_unknown_action(clc: RunningClc):
    assert _error(_call(clc, {"Action": "LaunchRocket"})) == (400, "InvalidAction")


def test_oversized_body_is_refused_and_creates_nothing(clc: RunningClc, ec2):
    body = b"Action=CreateKeyPair&Version=2016-11-15&KeyName=huge&Padding=" + b"x" * (1024 * 1024)
    response = signed_ec2_call(clc.url, None, clc.admin.access_key, clc.admin.secret_key, body=body)
    assert _error(response) == (413, "RequestEntityTooLarge")
    assert "huge" not in _key_names(ec2)


def test_dry_run_answers_412(ec2):
    with pytest.raises(ec2.exceptions.ClientError) as info:
        ec2.describe_regions(DryRun=True)
    assert info.value.response["Error"]["Code"] == "DryRunOperation"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_any_version_is_accepted(clc: RunningClc):
    response = signed_ec2_call(clc.url, {"Action": "DescribeRegions", "Version": "2014-10-01"},
                               clc.admin.access_key, clc.admin.secret_key)
    assert response.status_code == 200


def test_sigv2_signed_call(clc: RunningClc):
    response = signed_ec2_call(clc.url, {"Action": "DescribeAvailabilityZones", "Version": "2014-10-01"},
                               clc.admin.access_key, clc.admin.secret_key, version="v2")
    assert response.status_code == 200, response.text
    assert b"<zoneName>zone-1</zoneName>" in response.content


def test_errors_carry_the_request_id_the_client_sees(ec2):
    with pytest.raises(ec2.exceptions.ClientError) as info:
        ec2.describe_availability_zones(ZoneNames=["no-such-zone"])
    assert info.value.response["ResponseMetadata"]["RequestId"]
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_the_request_id_header_is_the_answers_request_id(clc: RunningClc):
    response = _call(clc, {"Action": "DescribeRegions"})
    root = ET.fromstring(response.content)
    namespace = root.tag.split("}")[0] + "}"
    assert response.headers["x-eucasim-request-id"] == root.find(f"{namespace}requestId").text


def test_a_request_id_the_caller_sends_is_the_one_traced_and_echoed(clc: RunningClc):
    request = httpx.Request("POST", clc.url, data={"Action": "DescribeRegions", "Version": "2016-11-15"},
                            headers={"x-eucasim-request-id": "req-from-the-caller"})
    response = httpx.Client().send(request)
    assert _error(response) == (401, "MissingAuthenticationToken")
    assert response.headers["x-eucasim-request-id"] == "req-from-the-caller"
    assert ET.fromstring(response.content).find("RequestID").text == "req-from-the-caller"


def test_other_methods_on_the_ec2_paths_are_not_ec2_calls(clc: RunningClc):
    assert httpx.put(clc.url + "/", content=b"Action=DescribeRegions").status_code == 405
