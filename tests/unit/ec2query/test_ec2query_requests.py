"""parse_request on what clients really send, and on what they must be told off for."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import parse_qsl

import pytest

from services.ec2query import parse_request
from services.errors import EC2Error

UTC = dt.timezone.utc


def parse(query: str):
    return parse_request(parse_qsl(query, keep_blank_values=True))


def error_of(query: str) -> EC2Error:
    with pytest.raises(EC2Error) as caught:
        parse(query)
    assert caught.value.status == 400
    return caught.value


def test_filters_values_and_integers_come_back_as_boto3_wrote_them() -> None:
    request = parse("Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-state-name"
                    "&Filter.1.Value.1=running&Filter.1.Value.2=pending&MaxResults=5")
    assert request.action == "DescribeInstances"
    assert request.params == {"Filters": [{"Name": "instance-state-name",
                                           "Values": ["running", "pending"]}],
                              "MaxResults": 5}
    assert request.dry_run is False


def test_list_indices_sort_as_numbers_and_gaps_are_allowed() -> None:
    request = parse("Action=DescribeInstances&InstanceId.10=i-10&InstanceId.2=i-2"
                    "&InstanceId.9=i-9")
    assert request.params == {"InstanceIds": ["i-2", "i-9", "i-10"]}


@pytest.mark.parametrize("index", ["abc", "-1", "01", ""])
def test_malformed_list_index_is_invalid_parameter_value(index: str) -> None:
    error = error_of(f"Action=DescribeInstances&InstanceId.{index}=i-1")
    assert error.code == "InvalidParameterValue"
    assert f"InstanceId.{index}" in error.message


def test_lists_numbered_from_zero_as_libcloud_sends_them() -> None:
    request = parse("Action=CreateTags&ResourceId.0=vol-1&Tag.0.Key=Name&Tag.0.Value=data"
                    "&Tag.1.Key=k&Tag.1.Value=v")
    assert request.params == {"Resources": ["vol-1"], "Tags": [{"Key": "Name", "Value": "data"},
                                                               {"Key": "k", "Value": "v"}]}


def test_missing_required_parameter_is_named_as_on_the_wire() -> None:
    error = error_of("Action=CreateTags&Tag.1.Key=Name&Tag.1.Value=web")
    assert error.code == "MissingParameter"
    assert error.message == "The request must contain the parameter ResourceId"


def test_missing_required_member_inside_a_structure_names_its_full_path() -> None:
    error = error_of("Action=RunInstances&MinCount=1&MaxCount=1"
                     "&ElasticInferenceAccelerator.2.Count=1")
    assert error.code == "MissingParameter"
    assert error.message.endswith("the parameter ElasticInferenceAccelerator.2.Type")
    error = error_of("Action=RequestSpotFleet&SpotFleetRequestConfig.IamFleetRole=r")
    assert error.message.endswith("the parameter SpotFleetRequestConfig.TargetCapacity")


def test_bad_integer_names_parameter_and_value() -> None:
    error = error_of("Action=DescribeInstances&MaxResults=abc")
    assert error.code == "InvalidParameterValue"
    assert "MaxResults" in error.message and "'abc'" in error.message


def test_bad_boolean_names_parameter_and_value() -> None:
    error = error_of("Action=DescribeInstances&DryRun=maybe")
    assert error.code == "InvalidParameterValue"
    assert "DryRun" in error.message and "'maybe'" in error.message
    error = error_of("Action=DescribeImages&IncludeDeprecated=maybe")
    assert "IncludeDeprecated" in error.message and "'maybe'" in error.message


@pytest.mark.parametrize("query", ["Version=2016-11-15", "Action=&Version=2016-11-15"])
def test_no_action_is_invalid_action(query: str) -> None:
    assert error_of(query).code == "InvalidAction"


def test_unknown_action_is_invalid_action() -> None:
    error = error_of("Action=LaunchRocket&Version=2016-11-15")
    assert error.code == "InvalidAction"
    assert error.message == "The action LaunchRocket is not valid for this web service."


def test_dry_run_is_taken_out_of_the_parameters() -> None:
    request = parse("Action=RunInstances&ImageId=emi-1&MinCount=1&MaxCount=1&DryRun=true")
    assert request.dry_run is True
    assert request.params == {"ImageId": "emi-1", "MinCount": 1, "MaxCount": 1}


def test_boto2_version_and_capitalised_booleans_are_accepted() -> None:
    request = parse("Action=DescribeImages&Version=2014-10-01&ExecutableBy.1=self"
                    "&IncludeDeprecated=True")
    assert request.version == "2014-10-01"
    assert request.params == {"ExecutableUsers": ["self"], "IncludeDeprecated": True}


def test_missing_version_defaults_to_the_model_version() -> None:
    assert parse("Action=DescribeRegions").version == "2016-11-15"


def test_signature_parameters_are_not_arguments(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="services.ec2query.reader")
    request = parse("Action=DescribeRegions&AWSAccessKeyId=AK&SignatureVersion=2"
                    "&SignatureMethod=HmacSHA256&Timestamp=2024-01-01T00%3A00%3A00Z&Signature=x"
                    "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240101T000000Z"
                    "&X-Amz-Credential=a&X-Amz-SignedHeaders=host&X-Amz-Signature=s")
    assert request.params == {}
    assert "ignored" not in caplog.text


def test_unknown_parameters_are_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="services.ec2query.reader")
    request = parse("Action=DescribeRegions&RegionName.1=eucalyptus&Frobnicate=1"
                    "&Filter.1.Colour=red")
    assert request.params == {"RegionNames": ["eucalyptus"]}
    assert "Frobnicate" in caplog.text and "Filter.1.Colour" in caplog.text


def test_blank_values_are_kept_and_whitespace_survives() -> None:
    request = parse("Action=CreateTags&ResourceId.1=i-1&Tag.1.Key=a&Tag.1.Value="
                    "&Tag.2.Key=%20%09&Tag.2.Value=%26%3C%3E%C3%A9")
    assert request.params["Tags"] == [{"Key": "a", "Value": ""},
                                      {"Key": " \t", "Value": "&<>é"}]


def test_timestamps_iso_and_epoch_are_aware_utc() -> None:
    iso = parse("Action=DescribeSpotPriceHistory&StartTime=2024-01-02T03%3A04%3A05.600000Z"
                "&EndTime=2024-01-02T05%3A04%3A05%2B02%3A00")
    assert iso.params == {"StartTime": dt.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
                          "EndTime": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)}
    epoch = parse("Action=DescribeSpotPriceHistory&StartTime=1704164645")
    assert epoch.params == {"StartTime": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)}
    assert error_of("Action=DescribeSpotPriceHistory&StartTime=yesterday").code == \
        "InvalidParameterValue"


def test_blobs_are_base64_decoded_and_user_data_is_not() -> None:
    request = parse("Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=c3NoLXJzYSBBQUFB")
    assert request.params["PublicKeyMaterial"] == b"ssh-rsa AAAA"
    assert error_of("Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=%21%21").code == \
        "InvalidParameterValue"
    # UserData is a string shape: the handler decodes it (PROTOCOL-NOTES §1).
    run = parse("Action=RunInstances&MinCount=1&MaxCount=1&UserData=aGk%3D")
    assert run.params["UserData"] == "aGk="


def test_integers_refuse_what_python_int_would_take() -> None:
    for text in ["1_000", "%201", "1.0", "%EF%BC%91"]:
        assert error_of(f"Action=DescribeInstances&MaxResults={text}").code == \
            "InvalidParameterValue"
    assert parse("Action=DescribeInstances&MaxResults=-5").params == {"MaxResults": -5}


def test_first_of_repeated_keys_wins() -> None:
    request = parse("Action=DescribeRegions&Action=RunInstances&RegionName.1=a&RegionName.1=b")
    assert request.action == "DescribeRegions"
    assert request.params == {"RegionNames": ["a"]}


def test_preload_compiles_named_actions_and_refuses_unknown_ones() -> None:
    from services.ec2query import preload

    preload(["DescribeInstances", "CreateTags"])
    with pytest.raises(KeyError):
        preload(["LaunchRocket"])
