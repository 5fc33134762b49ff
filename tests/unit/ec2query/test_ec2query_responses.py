"""render_result and render_error, read back by botocore's EC2QueryParser and by plain XML."""

from __future__ import annotations

import datetime as dt
import enum
import time
import xml.etree.ElementTree as ET
from typing import Any

import botocore.parsers
import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ec2query import NAMESPACE, ShapeMismatch, render_error, render_result

MODEL = botocore.session.get_session().get_service_model("ec2")
PARSER = botocore.parsers.create_parser("ec2")
NS = {"ec2": NAMESPACE}
UTC = dt.timezone.utc


def botocore_reads(action: str, body: bytes, status: int = 200) -> dict[str, Any]:
    shape = MODEL.operation_model(action).output_shape
    return PARSER.parse({"body": body, "headers": {}, "status_code": status}, shape)


def test_operation_without_output_shape_returns_true() -> None:
    body = render_result("CreateTags", None, "r-1")
    root = ET.fromstring(body)
    assert root.tag == f"{{{NAMESPACE}}}CreateTagsResponse"
    assert root.findtext("ec2:requestId", namespaces=NS) == "r-1"
    assert root.findtext("ec2:return", namespaces=NS) == "true"
    assert botocore_reads("CreateTags", body)["ResponseMetadata"]["RequestId"] == "r-1"


def test_describe_regions_uses_ec2_tags() -> None:
    body = render_result("DescribeRegions", {"Regions": [
        {"RegionName": "eucalyptus", "Endpoint": "http://127.0.0.1:8773/",
         "OptInStatus": "opt-in-not-required"}]}, "r-2")
    root = ET.fromstring(body)
    item = root.find("ec2:regionInfo/ec2:item", NS)
    assert item is not None
    assert item.findtext("ec2:regionName", namespaces=NS) == "eucalyptus"
    assert item.findtext("ec2:regionEndpoint", namespaces=NS) == "http://127.0.0.1:8773/"
    assert botocore_reads("DescribeRegions", body)["Regions"][0]["RegionName"] == "eucalyptus"


def test_instances_nest_with_renamed_members_booleans_and_timestamps() -> None:
    launched = dt.datetime(2024, 1, 1, 12, 30, 5, 123456, tzinfo=UTC)
    result = {"Reservations": [{"ReservationId": "r-1", "OwnerId": "000000000001", "Groups": [],
                                "Instances": [{
                                    "InstanceId": "i-1", "State": {"Code": 16, "Name": "running"},
                                    "PublicDnsName": "", "LaunchTime": launched,
                                    "EbsOptimized": False, "AmiLaunchIndex": 0,
                                    "KernelId": None}]}]}
    body = render_result("DescribeInstances", result, "r-3")
    text = body.decode()
    assert "<instanceState><code>16</code><name>running</name></instanceState>" in text
    assert "<dnsName></dnsName>" in text
    assert "<launchTime>2024-01-01T12:30:05.123Z</launchTime>" in text
    assert "<ebsOptimized>false</ebsOptimized>" in text
    assert "<groupSet></groupSet>" in text
    assert "kernelId" not in text
    instance = botocore_reads("DescribeInstances", body)["Reservations"][0]["Instances"][0]
    assert instance["LaunchTime"] == launched.replace(microsecond=123000)
    assert instance["AmiLaunchIndex"] == 0 and instance["EbsOptimized"] is False


def test_naive_and_other_zone_timestamps_are_written_in_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    for value in [dt.datetime(2024, 1, 1, 14, 0, tzinfo=plus_two), dt.datetime(2024, 1, 1, 12)]:
        body = render_result("DescribeVolumes", {"Volumes": [{"CreateTime": value}]}, "r")
        assert b"<createTime>2024-01-01T12:00:00.000Z</createTime>" in body


def test_enum_values_are_written_as_their_values() -> None:
    class State(str, enum.Enum):
        RUNNING = "running"

    body = render_result("DescribeInstanceStatus", {"InstanceStatuses": [
        {"InstanceState": {"Name": State.RUNNING, "Code": 16}}]}, "r")
    assert b"<name>running</name>" in body


def test_unknown_key_is_a_loud_programming_error_naming_the_path() -> None:
    with pytest.raises(ShapeMismatch, match=r"Reservations\.0\.Instances\.0.*'Colour'"):
        render_result("DescribeInstances", {"Reservations": [
            {"Instances": [{"InstanceId": "i-1", "Colour": "blue"}]}]}, "r")
    with pytest.raises(ValueError, match="no output shape"):
        render_result("CreateTags", {"Return": True}, "r")
    with pytest.raises(ValueError, match="not an EC2 operation"):
        render_result("LaunchRocket", {}, "r")


@pytest.mark.parametrize("bad", [{"AmiLaunchIndex": "0"}, {"AmiLaunchIndex": True},
                                 {"EbsOptimized": "true"}, {"EbsOptimized": 1},
                                 {"State": "running"}, {"SecurityGroups": "sg-1"},
                                 {"LaunchTime": "last tuesday"}])
def test_wrong_types_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ShapeMismatch):
        render_result("DescribeInstances", {"Reservations": [{"Instances": [bad]}]}, "r")


def test_error_document_parses_into_code_message_and_request_id() -> None:
    body = render_error("InvalidInstanceID.NotFound",
                        "The instance ID 'i-<&>' does not exist", "req-9")
    parsed = PARSER.parse({"body": body, "headers": {}, "status_code": 400},
                          MODEL.operation_model("DescribeInstances").output_shape)
    assert parsed["Error"] == {"Code": "InvalidInstanceID.NotFound",
                               "Message": "The instance ID 'i-<&>' does not exist"}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"


def test_characters_xml_cannot_carry_are_replaced_not_fatal() -> None:
    body = render_result("DescribeKeyPairs", {"KeyPairs": [{"KeyName": "a\x00b\x1bc\ud800"}]},
                         "r")
    assert botocore_reads("DescribeKeyPairs", body)["KeyPairs"][0]["KeyName"] == \
        "a\ufffdb\ufffdc\ufffd"


XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",),
                                 blacklist_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08"
                                 "\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19"
                                 "\x1a\x1b\x1c\x1d\x1e\x1f\ufffe\uffff")
                   | st.sampled_from("&<>\"'\r\n\t ]]>é😀"))


@settings(max_examples=200, deadline=None)
@given(tags=st.lists(st.fixed_dictionaries({"Key": XML_TEXT, "Value": XML_TEXT}), max_size=4),
       request_id=XML_TEXT.filter(bool))
def test_any_text_round_trips_through_botocore(tags: list[dict[str, str]],
                                                request_id: str) -> None:
    body = render_result("DescribeTags", {"Tags": tags}, request_id)
    parsed = botocore_reads("DescribeTags", body)
    assert parsed["Tags"] == tags
    assert parsed["ResponseMetadata"]["RequestId"] == request_id


def test_describe_instances_over_a_thousand_instances_is_fast() -> None:
    instance = {"InstanceId": "i-0123456789abcdef0", "ImageId": "emi-12345678",
                "State": {"Code": 16, "Name": "running"}, "PrivateDnsName": "euca-10-0-0-1",
                "PublicDnsName": "euca-1-2-3-4", "KeyName": "k", "AmiLaunchIndex": 0,
                "InstanceType": "m1.small", "LaunchTime": dt.datetime(2024, 1, 1, tzinfo=UTC),
                "Placement": {"AvailabilityZone": "zone-1", "Tenancy": "default"},
                "Monitoring": {"State": "disabled"}, "PrivateIpAddress": "10.0.0.1",
                "PublicIpAddress": "1.2.3.4", "Architecture": "x86_64",
                "RootDeviceType": "instance-store", "RootDeviceName": "/dev/sda1",
                "BlockDeviceMappings": [], "VirtualizationType": "hvm",
                "Tags": [{"Key": "Name", "Value": "web & db"}],
                "SecurityGroups": [{"GroupName": "default", "GroupId": "sg-1"}],
                "Hypervisor": "xen", "EbsOptimized": False, "ProductCodes": []}
    result = {"Reservations": [{"ReservationId": f"r-{n}", "OwnerId": "000000000001",
                                "Groups": [], "Instances": [dict(instance)]}
                               for n in range(1000)]}
    render_result("DescribeInstances", result, "warm-up")
    started = time.perf_counter()
    body = render_result("DescribeInstances", result, "r")
    elapsed = time.perf_counter() - started
    assert len(botocore_reads("DescribeInstances", body)["Reservations"]) == 1000
    # Generous for a shared 2-core machine; measured around 40 ms.
    assert elapsed < 0.5, elapsed
