"""Tags through boto3 and the AWS CLI: CreateTags, DeleteTags, DescribeTags on key pairs and
security groups, the limits and key rules EC2 enforces, and paging."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.clc import RunningClc
from tests.support.clc import aws_ec2 as _aws
from tests.support.clc import error_of as _error

AWS = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws")


def _name(prefix: str = "tag") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _tags_of(ec2, resource_id: str) -> dict[str, str]:
    answer = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])
    return {t["Key"]: t["Value"] for t in answer["Tags"]}


@pytest.fixture
def group(ec2) -> str:
    return ec2.create_security_group(GroupName=_name("grp"), Description="tagged")["GroupId"]


@pytest.fixture
def key_pair(ec2) -> str:
    return ec2.create_key_pair(KeyName=_name("kp"), KeyType="ed25519")["KeyPairId"]


def test_create_describe_and_overwrite_tags(ec2, group: str, key_pair: str):
    ec2.create_tags(Resources=[group, key_pair], Tags=[{"Key": "Name", "Value": "web"},
                                                       {"Key": "empty", "Value": ""}])
    answer = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [group, key_pair]}])
    assert sorted((t["ResourceId"], t["ResourceType"], t["Key"], t["Value"])
                  for t in answer["Tags"]) == sorted([
                      (group, "security-group", "Name", "web"), (group, "security-group", "empty", ""),
                      (key_pair, "key-pair", "Name", "web"), (key_pair, "key-pair", "empty", "")])
    ec2.create_tags(Resources=[group], Tags=[{"Key": "Name", "Value": "db"}])
    assert _tags_of(ec2, group) == {"Name": "db", "empty": ""}
    [described] = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    assert described["Tags"] == [{"Key": "Name", "Value": "db"}, {"Key": "empty", "Value": ""}]
    [pair] = ec2.describe_key_pairs(KeyPairIds=[key_pair])["KeyPairs"]
    assert {t["Key"]: t["Value"] for t in pair["Tags"]} == {"Name": "web", "empty": ""}


def test_describe_tags_filters(ec2, group: str, key_pair: str):
    marker = uuid.uuid4().hex[:8]
    ec2.create_tags(Resources=[group], Tags=[{"Key": f"m-{marker}", "Value": "alpha"}])
    ec2.create_tags(Resources=[key_pair], Tags=[{"Key": f"m-{marker}", "Value": "beta"},
                                                {"Key": f"n-{marker}", "Value": "alpha"}])

    def found(*filters: dict) -> set[tuple[str, str]]:
        return {(t["ResourceId"], t["Key"]) for t in ec2.describe_tags(Filters=list(filters))["Tags"]}

    assert found({"Name": "key", "Values": [f"m-{marker}"]}) == \
        {(group, f"m-{marker}"), (key_pair, f"m-{marker}")}
    assert found({"Name": "key", "Values": [f"?-{marker}"]},
                 {"Name": "value", "Values": ["alpha"]}) == \
        {(group, f"m-{marker}"), (key_pair, f"n-{marker}")}
    assert found({"Name": "key", "Values": [f"*{marker}"]},
                 {"Name": "resource-type", "Values": ["key-pair"]}) == \
        {(key_pair, f"m-{marker}"), (key_pair, f"n-{marker}")}
    # resource-id by exact ids (read from the database by id), by a wildcard, and beside a key.
    assert found({"Name": "resource-id", "Values": [key_pair]},
                 {"Name": "key", "Values": [f"*{marker}"]}) == \
        {(key_pair, f"m-{marker}"), (key_pair, f"n-{marker}")}
    assert found({"Name": "resource-id", "Values": [group, key_pair]},
                 {"Name": "value", "Values": ["alpha"]}) == \
        {(group, f"m-{marker}"), (key_pair, f"n-{marker}")}
    assert found({"Name": "resource-id", "Values": [group[:4] + "*"]},
                 {"Name": "key", "Values": [f"m-{marker}"]}) == {(group, f"m-{marker}")}
    assert found({"Name": "resource-id", "Values": ["sg-00000000"]}) == set()
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_tags(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert _error(excinfo) == (400, "InvalidParameterValue")


def test_delete_tags_by_key_by_key_and_value_and_all(ec2, group: str):
    ec2.create_tags(Resources=[group], Tags=[{"Key": k, "Value": v} for k, v in
                                             [("a", "1"), ("b", "2"), ("c", ""), ("d", "4")]])
    ec2.delete_tags(Resources=[group], Tags=[{"Key": "b", "Value": "not-2"}])
    assert _tags_of(ec2, group) == {"a": "1", "b": "2", "c": "", "d": "4"}
    ec2.delete_tags(Resources=[group], Tags=[{"Key": "b", "Value": "2"}, {"Key": "a"}])
    assert _tags_of(ec2, group) == {"c": "", "d": "4"}
    # An empty Value deletes the tag only when its value is empty.
    ec2.delete_tags(Resources=[group], Tags=[{"Key": "c", "Value": ""}, {"Key": "d", "Value": ""}])
    assert _tags_of(ec2, group) == {"d": "4"}
    ec2.create_tags(Resources=[group], Tags=[{"Key": "e", "Value": "5"}])
    ec2.delete_tags(Resources=[group])
    assert _tags_of(ec2, group) == {}


@pytest.mark.parametrize("tag", [{"Key": "k" * 129, "Value": "v"}, {"Key": "k", "Value": "v" * 257},
                                 {"Key": "aws:owner", "Value": "me"},
                                 {"Key": "AWS:owner", "Value": "me"}])
def test_invalid_tags_are_refused_and_nothing_is_tagged(ec2, group: str, tag: dict):
    with pytest.raises(ClientError) as excinfo:
        ec2.create_tags(Resources=[group], Tags=[{"Key": "fine", "Value": "x"}, tag])
    assert _error(excinfo) == (400, "InvalidParameterValue")
    assert _tags_of(ec2, group) == {}


def test_longest_allowed_key_and_value(ec2, group: str):
    ec2.create_tags(Resources=[group], Tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    assert _tags_of(ec2, group) == {"k" * 128: "v" * 256}


def test_fifty_tags_per_resource(ec2, group: str):
    ec2.create_tags(Resources=[group], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    ec2.create_tags(Resources=[group], Tags=[{"Key": "k0", "Value": "overwritten"}])
    with pytest.raises(ClientError) as excinfo:
        ec2.create_tags(Resources=[group], Tags=[{"Key": "one-too-many", "Value": "v"}])
    assert _error(excinfo) == (400, "TagLimitExceeded")
    tags = _tags_of(ec2, group)
    assert len(tags) == 50 and tags["k0"] == "overwritten" and "one-too-many" not in tags


@pytest.mark.parametrize("resource, code", [
    ("sg-0123456789abcdef0", "InvalidGroup.NotFound"),
    ("key-0123456789abcdef0", "InvalidKeyPair.NotFound"),
    ("vpc-12345678", "InvalidID"),
    ("not-an-id", "InvalidID"),
    ("web", "InvalidID"),
])
def test_unknown_resources_cannot_be_tagged_and_nothing_is_tagged(ec2, group: str, resource: str,
                                                                  code: str):
    with pytest.raises(ClientError) as excinfo:
        ec2.create_tags(Resources=[group, resource], Tags=[{"Key": "k", "Value": "v"}])
    assert _error(excinfo) == (400, code)
    assert _tags_of(ec2, group) == {}
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_tags(Resources=[resource])
    assert _error(excinfo) == (400, code)


def test_paging_through_250_tags(clc: RunningClc):
    key = clc.new_account(_name("paged"))
    ec2 = clc.ec2(key)
    group = ec2.create_security_group(GroupName="tagged", Description="d")["GroupId"]
    pair = ec2.create_key_pair(KeyName="tagged", KeyType="ed25519")["KeyPairId"]
    groups = [ec2.create_security_group(GroupName=f"g{i}", Description="d")["GroupId"]
              for i in range(3)]
    for i, resource in enumerate([group, pair, *groups]):
        ec2.create_tags(Resources=[resource],
                        Tags=[{"Key": f"key-{j:02d}", "Value": str(i)} for j in range(50)])
    first = ec2.describe_tags(MaxResults=100)
    assert len(first["Tags"]) == 100 and first["NextToken"]
    pages = list(ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 100}))
    assert [len(p["Tags"]) for p in pages] == [100, 100, 50]
    seen = [(t["ResourceId"], t["Key"]) for p in pages for t in p["Tags"]]
    assert len(set(seen)) == 250
    assert seen == sorted(seen)  # a stable order: resource, then key

    listed = _aws(clc, "describe-tags", "--page-size", "100", key=key)
    assert listed.returncode == 0, listed.stderr
    assert [(t["ResourceId"], t["Key"]) for t in json.loads(listed.stdout)["Tags"]] == seen


def test_tags_through_the_aws_cli(clc: RunningClc, ec2, group: str):
    created = _aws(clc, "create-tags", "--resources", group, "--tags", "Key=Name,Value=cli",
                   "Key=stage,Value=test")
    assert created.returncode == 0, created.stderr
    described = _aws(clc, "describe-tags", "--filters", f"Name=resource-id,Values={group}")
    assert described.returncode == 0, described.stderr
    assert sorted((t["Key"], t["Value"], t["ResourceType"])
                  for t in json.loads(described.stdout)["Tags"]) == \
        [("Name", "cli", "security-group"), ("stage", "test", "security-group")]
    deleted = _aws(clc, "delete-tags", "--resources", group, "--tags", "Key=stage")
    assert deleted.returncode == 0, deleted.stderr
    assert _tags_of(ec2, group) == {"Name": "cli"}
    refused = _aws(clc, "create-tags", "--resources", "sg-0123456789abcdef0", "--tags", "Key=k,Value=v")
    assert refused.returncode == 255
    assert "An error occurred (InvalidGroup.NotFound)" in refused.stderr
