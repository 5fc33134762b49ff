"""Security groups through boto3, boto 2's flat parameters and the AWS CLI: create, describe
(with filters and paging), delete, authorize and revoke ingress, and the errors EC2 gives."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.clc import RunningClc
from tests.support.clc import aws_ec2 as _aws
from tests.support.clc import error_of as _error

AWS = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws")


def _name(prefix: str = "grp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _group(ec2, group_id: str) -> dict:
    [group] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return group


def _new_group(ec2, **kwargs) -> str:
    return ec2.create_security_group(GroupName=kwargs.pop("GroupName", _name()),
                                     Description=kwargs.pop("Description", "test group"),
                                     **kwargs)["GroupId"]


SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def test_create_and_describe_a_group(clc: RunningClc, ec2):
    name = _name()
    created = ec2.create_security_group(GroupName=name, Description="web servers")
    assert re.fullmatch(r"sg-[0-9a-f]{17}", created["GroupId"])
    group = _group(ec2, created["GroupId"])
    assert group["GroupName"] == name and group["Description"] == "web servers"
    assert group["OwnerId"] == clc.admin.account_id
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []
    assert group["Tags"] == []
    [by_name] = ec2.describe_security_groups(GroupNames=[name])["SecurityGroups"]
    assert by_name["GroupId"] == created["GroupId"]


def test_every_account_has_a_default_group_that_cannot_be_deleted(ec2):
    [default] = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_security_group(GroupName="default")
    assert _error(excinfo) == (400, "CannotDelete")
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_security_group(GroupId=default["GroupId"])
    assert _error(excinfo) == (400, "CannotDelete")
    assert ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]


@pytest.mark.parametrize("kwargs, code", [
    ({"GroupName": "sg-looks-like-an-id", "Description": "d"}, "InvalidParameterValue"),
    ({"GroupName": "x" * 256, "Description": "d"}, "InvalidParameterValue"),
    ({"GroupName": "ok", "Description": "d" * 256}, "InvalidParameterValue"),
    ({"GroupName": "ok", "Description": ""}, "MissingParameter"),
    ({"GroupName": "ok", "Description": "d", "VpcId": "vpc-12345678"}, "InvalidVpcID.NotFound"),
    ({"GroupName": "ok", "Description": "d", "TagSpecifications": [
        {"ResourceType": "key-pair", "Tags": [{"Key": "a", "Value": "b"}]}]},
     "InvalidParameterValue"),
])
def test_invalid_creates_are_refused_and_create_nothing(ec2, kwargs: dict, code: str):
    before = len(ec2.describe_security_groups()["SecurityGroups"])
    with pytest.raises(ClientError) as excinfo:
        ec2.create_security_group(**kwargs)
    assert _error(excinfo) == (400, code)
    assert len(ec2.describe_security_groups()["SecurityGroups"]) == before


def test_duplicate_group_name(ec2):
    name = _name()
    _new_group(ec2, GroupName=name)
    with pytest.raises(ClientError) as excinfo:
        ec2.create_security_group(GroupName=name, Description="again")
    assert _error(excinfo) == (400, "InvalidGroup.Duplicate")
    assert excinfo.value.response["Error"]["Message"] == \
        f"The security group '{name}' already exists"


def test_unknown_and_malformed_groups(ec2):
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_security_groups(GroupIds=["sg-0123456789abcdef0"])
    assert _error(excinfo) == (400, "InvalidGroup.NotFound")
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_security_groups(GroupNames=["no-such-group"])
    assert _error(excinfo) == (400, "InvalidGroup.NotFound")
    assert excinfo.value.response["Error"]["Message"] == \
        "The security group 'no-such-group' does not exist"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_security_groups(GroupIds=["web"])
    assert _error(excinfo) == (400, "InvalidGroupId.Malformed")
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_security_group(GroupName="no-such-group")
    assert _error(excinfo) == (400, "InvalidGroup.NotFound")
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_security_group_ingress(GroupId="sg-0123456789abcdef0", IpPermissions=[SSH])
    assert _error(excinfo) == (400, "InvalidGroup.NotFound")


def test_authorize_and_describe_rules(clc: RunningClc, ec2):
    source_name = _name("src")
    source = _new_group(ec2, GroupName=source_name)
    group_id = _new_group(ec2)
    answer = ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "lan"}, {"CidrIp": "0.0.0.0/0"}],
         "UserIdGroupPairs": [{"GroupId": source}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": source_name}]},
        {"IpProtocol": "17", "FromPort": 53, "ToPort": 53,
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]},
    ])
    assert answer["Return"] is True
    rules = answer["SecurityGroupRules"]
    assert len(rules) == 6
    assert all(re.fullmatch(r"sgr-[0-9a-f]{17}", r["SecurityGroupRuleId"]) for r in rules)
    assert all(r["GroupId"] == group_id and r["IsEgress"] is False for r in rules)
    assert {r.get("CidrIpv4") for r in rules} >= {"10.0.0.0/8", "0.0.0.0/0"}
    assert {"GroupId": source, "UserId": clc.admin.account_id} in \
        [r.get("ReferencedGroupInfo") for r in rules]

    permissions = _group(ec2, group_id)["IpPermissions"]
    by_protocol = {p["IpProtocol"]: p for p in permissions}
    assert set(by_protocol) == {"tcp", "icmp", "-1", "udp"}
    web = by_protocol["tcp"]
    assert (web["FromPort"], web["ToPort"]) == (80, 80)
    assert web["IpRanges"] == [{"CidrIp": "10.0.0.0/8", "Description": "lan"},
                               {"CidrIp": "0.0.0.0/0"}]
    assert web["UserIdGroupPairs"] == [{"UserId": clc.admin.account_id, "GroupId": source,
                                        "GroupName": source_name}]
    assert web["Ipv6Ranges"] == [] and web["PrefixListIds"] == []
    assert (by_protocol["icmp"]["FromPort"], by_protocol["icmp"]["ToPort"]) == (8, -1)
    assert "FromPort" not in by_protocol["-1"]
    assert by_protocol["udp"]["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8::/32"}]


@pytest.mark.parametrize("permission, code", [
    ({"IpProtocol": "tcp", "FromPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 0, "ToPort": 70000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "InvalidPermission.Malformed"),
    ({"IpProtocol": "udp", "FromPort": 100, "ToPort": 10, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "InvalidParameterValue"),
    ({"IpProtocol": "icmp", "FromPort": 300, "ToPort": 0, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "InvalidParameterValue"),
    ({"IpProtocol": "icmp", "FromPort": 8, "ToPort": 256, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "InvalidParameterValue"),
    ({"IpProtocol": "gre", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/33"}]},
     "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "banana"}]},
     "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.1/8"}]},
     "InvalidPermission.Malformed"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "UserIdGroupPairs": [{"GroupName": "no-such-group"}]}, "InvalidGroup.NotFound"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "PrefixListIds": [{"PrefixListId": "pl-12345678"}]}, "InvalidPrefixListId.NotFound"),
])
def test_invalid_rules_are_refused_and_the_request_changes_nothing(ec2, permission: dict, code: str):
    group_id = _new_group(ec2)
    # A valid rule first: the request is all-or-nothing, so it must not be stored either.
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[SSH, permission])
    assert _error(excinfo) == (400, code)
    assert _group(ec2, group_id)["IpPermissions"] == []


def test_duplicate_rules_are_refused_whole(ec2):
    group_id = _new_group(ec2)
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[SSH])
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[https, SSH])
    assert _error(excinfo) == (400, "InvalidPermission.Duplicate")
    assert excinfo.value.response["Error"]["Message"] == \
        'the specified rule "peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW" already exists'
    [only] = _group(ec2, group_id)["IpPermissions"]
    assert only["FromPort"] == 22
    # The same rule twice in one request is a duplicate too.
    with pytest.raises(ClientError) as excinfo:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[https, https])
    assert _error(excinfo) == (400, "InvalidPermission.Duplicate")


def test_revoke_rules_all_or_nothing(ec2):
    group_id = _new_group(ec2)
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[SSH, https])
    missing = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
               "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    with pytest.raises(ClientError) as excinfo:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[SSH, missing])
    assert _error(excinfo) == (400, "InvalidPermission.NotFound")
    assert len(_group(ec2, group_id)["IpPermissions"]) == 2
    answer = ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[SSH])
    assert answer["Return"] is True
    [left] = _group(ec2, group_id)["IpPermissions"]
    assert left["FromPort"] == 443


def test_revoke_by_security_group_rule_id(ec2):
    group_id = _new_group(ec2)
    [rule] = ec2.authorize_security_group_ingress(GroupId=group_id,
                                                  IpPermissions=[SSH])["SecurityGroupRules"]
    revoked = ec2.revoke_security_group_ingress(GroupId=group_id,
                                                SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
    assert revoked["Return"] is True
    assert _group(ec2, group_id)["IpPermissions"] == []


def test_boto2_style_flat_parameters_and_group_names(ec2):
    name = _name()
    source_name = _name("src")
    source = _new_group(ec2, GroupName=source_name)
    _new_group(ec2, GroupName=name)
    ec2.authorize_security_group_ingress(GroupName=name, IpProtocol="tcp", FromPort=22, ToPort=22,
                                         CidrIp="192.168.0.0/16")
    # A source group without a protocol opens all TCP, UDP and ICMP to it (EC2-Classic).
    ec2.authorize_security_group_ingress(GroupName=name, SourceSecurityGroupName=source_name)
    [group] = ec2.describe_security_groups(GroupNames=[name])["SecurityGroups"]
    shapes = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in group["IpPermissions"]}
    assert shapes == {("tcp", 22, 22), ("tcp", 0, 65535), ("udp", 0, 65535), ("icmp", -1, -1)}
    for permission in group["IpPermissions"]:
        if permission["FromPort"] != 22:
            assert [p["GroupId"] for p in permission["UserIdGroupPairs"]] == [source]
    ec2.revoke_security_group_ingress(GroupName=name, IpProtocol="tcp", FromPort=22, ToPort=22,
                                      CidrIp="192.168.0.0/16")
    with pytest.raises(ClientError) as excinfo:
        ec2.revoke_security_group_ingress(GroupName=name, IpProtocol="tcp", FromPort=22,
                                          ToPort=22, CidrIp="192.168.0.0/16")
    assert _error(excinfo) == (400, "InvalidPermission.NotFound")
    assert len(_group(ec2, group["GroupId"])["IpPermissions"]) == 3


def test_a_group_used_by_another_groups_rule_cannot_be_deleted(clc: RunningClc, ec2):
    used_name = _name("used")
    used = _new_group(ec2, GroupName=used_name)
    user_name = _name("user")
    user = _new_group(ec2, GroupName=user_name)
    # A rule of a group naming itself does not block its own deletion.
    ec2.authorize_security_group_ingress(GroupId=used, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": used}]}])
    ec2.authorize_security_group_ingress(GroupId=user, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "UserIdGroupPairs": [{"GroupId": used}]}])
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_security_group(GroupId=used)
    assert _error(excinfo) == (400, "InvalidGroup.InUse")
    account = clc.admin.account_id
    assert excinfo.value.response["Error"]["Message"] == \
        f"Group {account}:{used_name} is used by groups: {account}:{user_name}"
    assert _group(ec2, used)["GroupId"] == used
    ec2.delete_security_group(GroupId=user)
    deleted = ec2.delete_security_group(GroupId=used)
    assert deleted["Return"] is True and deleted["GroupId"] == used
    with pytest.raises(ClientError) as excinfo:
        _group(ec2, used)
    assert _error(excinfo) == (400, "InvalidGroup.NotFound")


def test_describe_filters(ec2):
    marker = uuid.uuid4().hex[:8]
    web = _new_group(ec2, Description=f"web {marker}", TagSpecifications=[
        {"ResourceType": "security-group", "Tags": [{"Key": "role", "Value": "web"},
                                                    {"Key": "marker", "Value": marker}]}])
    db = _new_group(ec2, Description=f"db {marker}", TagSpecifications=[
        {"ResourceType": "security-group", "Tags": [{"Key": "marker", "Value": marker}]}])
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[SSH])
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "UserIdGroupPairs": [{"GroupId": web}]}])

    def ids(*filters: dict) -> set[str]:
        answer = ec2.describe_security_groups(Filters=[{"Name": "tag:marker", "Values": [marker]},
                                                       *filters])
        return {g["GroupId"] for g in answer["SecurityGroups"]}

    assert ids() == {web, db}
    assert ids({"Name": "tag:role", "Values": ["web"]}) == {web}
    assert ids({"Name": "tag-key", "Values": ["role"]}) == {web}
    assert ids({"Name": "description", "Values": ["db *"]}) == {db}
    assert ids({"Name": "group-id", "Values": [web]}) == {web}
    assert ids({"Name": "ip-permission.from-port", "Values": ["22"]}) == {web}
    assert ids({"Name": "ip-permission.to-port", "Values": ["5432"]}) == {db}
    assert ids({"Name": "ip-permission.protocol", "Values": ["tcp"]}) == {web, db}
    assert ids({"Name": "ip-permission.cidr", "Values": ["0.0.0.0/0"]}) == {web}
    assert ids({"Name": "ip-permission.group-id", "Values": [web]}) == {db}
    web_name = _group(ec2, web)["GroupName"]
    assert ids({"Name": "ip-permission.group-name", "Values": [web_name]}) == {db}
    assert ids({"Name": "group-name", "Values": [web_name]}) == {web}
    owner = _group(ec2, web)["OwnerId"]
    assert ids({"Name": "owner-id", "Values": [owner]}) == {web, db}
    with pytest.raises(ClientError) as excinfo:
        ids({"Name": "flavour", "Values": ["x"]})
    assert _error(excinfo) == (400, "InvalidParameterValue")


def test_paging_through_250_groups(clc: RunningClc):
    key = clc.new_account(_name("paged"))
    ec2 = clc.ec2(key)
    created = {_new_group(ec2, GroupName=f"g-{i:03d}") for i in range(250)}
    first = ec2.describe_security_groups(MaxResults=100)
    assert len(first["SecurityGroups"]) == 100 and first["NextToken"]
    pages = list(ec2.get_paginator("describe_security_groups").paginate(
        PaginationConfig={"PageSize": 100}))
    assert [len(p["SecurityGroups"]) for p in pages] == [100, 100, 51]
    seen = [g["GroupId"] for p in pages for g in p["SecurityGroups"]]
    assert len(seen) == len(set(seen)) == 251 and created <= set(seen)
    unchecked = clc.ec2(key, parameter_validation=False)
    with pytest.raises(ClientError) as excinfo:
        unchecked.describe_security_groups(MaxResults=4)
    assert _error(excinfo) == (400, "InvalidParameterValue")
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_security_groups(MaxResults=5, NextToken="garbage!")
    assert _error(excinfo)[0] == 400

    listed = _aws(clc, "describe-security-groups", "--page-size", "100", key=key)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["SecurityGroups"]) == 251


def test_security_groups_through_the_aws_cli(clc: RunningClc, ec2):
    name = _name("cli")
    created = _aws(clc, "create-security-group", "--group-name", name, "--description", "cli group")
    assert created.returncode == 0, created.stderr
    group_id = json.loads(created.stdout)["GroupId"]
    authorized = _aws(clc, "authorize-security-group-ingress", "--group-id", group_id,
                      "--protocol", "tcp", "--port", "22-23", "--cidr", "10.1.0.0/16")
    assert authorized.returncode == 0, authorized.stderr
    described = _aws(clc, "describe-security-groups", "--group-ids", group_id)
    assert described.returncode == 0, described.stderr
    [group] = json.loads(described.stdout)["SecurityGroups"]
    assert group["GroupName"] == name
    assert group["IpPermissions"] == [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 23,
                                       "IpRanges": [{"CidrIp": "10.1.0.0/16"}], "Ipv6Ranges": [],
                                       "PrefixListIds": [], "UserIdGroupPairs": []}]
    deleted = _aws(clc, "delete-security-group", "--group-id", group_id)
    assert deleted.returncode == 0, deleted.stderr
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_security_groups(GroupIds=[group_id])
    assert _error(excinfo) == (400, "InvalidGroup.NotFound")


def test_boto2_euca2ools_style_session(clc: RunningClc):
    """boto 2 (what euca2ools 2.x used) creates, authorizes with flat parameters, reads rules
    back through its own XML parser, revokes and deletes."""
    from urllib.parse import urlparse

    from boto.ec2.connection import EC2Connection
    from boto.ec2.regioninfo import RegionInfo

    url = urlparse(clc.url)
    conn = EC2Connection(aws_access_key_id=clc.admin.access_key,
                         aws_secret_access_key=clc.admin.secret_key, is_secure=False,
                         port=url.port, region=RegionInfo(name=clc.config.REGION,
                                                          endpoint=url.hostname))
    name, source_name = _name("b2"), _name("b2src")
    group = conn.create_security_group(name, "boto 2 group")
    source = conn.create_security_group(source_name, "boto 2 source")
    assert group.id.startswith("sg-")
    assert conn.authorize_security_group(group_name=name, ip_protocol="tcp", from_port=22,
                                         to_port=22, cidr_ip="10.0.0.0/8")
    assert conn.authorize_security_group(group_name=name, src_security_group_name=source_name,
                                         src_security_group_owner_id=clc.admin.account_id,
                                         ip_protocol="udp", from_port=53, to_port=53)
    [read] = conn.get_all_security_groups(groupnames=[name])
    rules = {(r.ip_protocol, r.from_port, r.to_port): r for r in read.rules}
    assert set(rules) == {("tcp", "22", "22"), ("udp", "53", "53")}
    assert [g.cidr_ip for g in rules[("tcp", "22", "22")].grants] == ["10.0.0.0/8"]
    assert [g.group_id for g in rules[("udp", "53", "53")].grants] == [source.id]
    assert conn.revoke_security_group(group_name=name, ip_protocol="tcp", from_port=22,
                                      to_port=22, cidr_ip="10.0.0.0/8")
    assert conn.delete_security_group(name=name)
    assert conn.delete_security_group(group_id=source.id)
    pair = conn.create_key_pair(_name("b2key"))
    assert pair.material.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert [k.fingerprint for k in conn.get_all_key_pairs(keynames=[pair.name])] == \
        [pair.fingerprint]
    assert conn.delete_key_pair(pair.name)


def test_concurrent_creates_of_one_name_make_one_group(clc: RunningClc):
    from concurrent.futures import ThreadPoolExecutor

    name = _name("race")

    def attempt(_: int) -> str:
        try:
            clc.ec2().create_security_group(GroupName=name, Description="d")
            return "created"
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(attempt, range(6)))
    assert sorted(results) == ["InvalidGroup.Duplicate"] * 5 + ["created"]
