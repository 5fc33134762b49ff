"""Two accounts side by side: neither sees, tags, changes or deletes the other's key pairs and
security groups; it gets the NotFound answer it would get if they did not exist."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support.clc import RunningClc, error_of as _code


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def accounts(clc: RunningClc):
    alice = clc.new_account(_name("alice"))
    bob = clc.new_account(_name("bob"))
    return alice, clc.ec2(alice), bob, clc.ec2(bob)


@pytest.fixture(scope="module")
def alices(accounts):
    """Alice's key pair and group, tagged, with a rule."""
    _, ec2, _, _ = accounts
    pair = ec2.create_key_pair(KeyName="shared-name", KeyType="ed25519", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "owner", "Value": "alice"}]}])
    group = ec2.create_security_group(GroupName="shared-name", Description="alice's",
                                      TagSpecifications=[{"ResourceType": "security-group",
                                                          "Tags": [{"Key": "owner",
                                                                    "Value": "alice"}]}])
    ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return pair, group


def _state(ec2) -> tuple:
    pairs = sorted((k["KeyPairId"], k["KeyName"], str(k["Tags"]))
                   for k in ec2.describe_key_pairs()["KeyPairs"])
    groups = sorted((g["GroupId"], g["GroupName"], str(g["IpPermissions"]), str(g["Tags"]))
                    for g in ec2.describe_security_groups()["SecurityGroups"])
    tags = sorted((t["ResourceId"], t["Key"], t["Value"]) for t in ec2.describe_tags()["Tags"])
    return pairs, groups, tags


def test_each_account_sees_only_its_own(accounts, alices):
    alice, alice_ec2, bob, bob_ec2 = accounts
    pair, group = alices
    assert [k["KeyPairId"] for k in alice_ec2.describe_key_pairs()["KeyPairs"]] == [pair["KeyPairId"]]
    assert bob_ec2.describe_key_pairs()["KeyPairs"] == []
    bob_groups = bob_ec2.describe_security_groups()["SecurityGroups"]
    assert [g["GroupName"] for g in bob_groups] == ["default"]
    assert bob_groups[0]["OwnerId"] == bob.account_id
    assert bob_ec2.describe_tags()["Tags"] == []
    # Each account's default group is its own.
    alice_default = alice_ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    assert alice_default["GroupId"] != bob_groups[0]["GroupId"]
    assert alice_default["OwnerId"] == alice.account_id


def test_names_are_per_account(accounts, alices):
    _, _, _, bob_ec2 = accounts
    # Bob may use the names Alice uses; they are different resources.
    pair = bob_ec2.create_key_pair(KeyName="shared-name", KeyType="ed25519")
    group = bob_ec2.create_security_group(GroupName="shared-name", Description="bob's")
    assert pair["KeyPairId"] != alices[0]["KeyPairId"]
    assert group["GroupId"] != alices[1]["GroupId"]
    bob_ec2.delete_key_pair(KeyPairId=pair["KeyPairId"])
    bob_ec2.delete_security_group(GroupId=group["GroupId"])


def test_other_accounts_resources_do_not_exist_for_describe(accounts, alices):
    _, _, _, bob_ec2 = accounts
    pair, group = alices
    with pytest.raises(ClientError) as excinfo:
        bob_ec2.describe_key_pairs(KeyPairIds=[pair["KeyPairId"]])
    assert _code(excinfo) == (400, "InvalidKeyPair.NotFound")
    with pytest.raises(ClientError) as excinfo:
        bob_ec2.describe_security_groups(GroupIds=[group["GroupId"]])
    assert _code(excinfo) == (400, "InvalidGroup.NotFound")
    assert bob_ec2.describe_tags(Filters=[{"Name": "resource-id",
                                           "Values": [group["GroupId"]]}])["Tags"] == []


def test_other_accounts_resources_cannot_be_tagged_changed_or_deleted(accounts, alices):
    _, alice_ec2, _, bob_ec2 = accounts
    pair, group = alices
    before = _state(alice_ec2)
    attempts = [
        (lambda: bob_ec2.create_tags(Resources=[group["GroupId"]], Tags=[{"Key": "k", "Value": "v"}]),
         "InvalidGroup.NotFound"),
        (lambda: bob_ec2.create_tags(Resources=[pair["KeyPairId"]], Tags=[{"Key": "k", "Value": "v"}]),
         "InvalidKeyPair.NotFound"),
        (lambda: bob_ec2.delete_tags(Resources=[group["GroupId"]]), "InvalidGroup.NotFound"),
        (lambda: bob_ec2.delete_tags(Resources=[pair["KeyPairId"]]), "InvalidKeyPair.NotFound"),
        (lambda: bob_ec2.delete_security_group(GroupId=group["GroupId"]), "InvalidGroup.NotFound"),
        (lambda: bob_ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]), "InvalidGroup.NotFound"),
        (lambda: bob_ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]), "InvalidGroup.NotFound"),
        # A foreign group id without its owner (UserId) is as unknown as a missing one.
        (lambda: bob_ec2.authorize_security_group_ingress(GroupName="default", IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
             "UserIdGroupPairs": [{"GroupId": group["GroupId"]}]}]), "InvalidGroup.NotFound"),
    ]
    for attempt, code in attempts:
        with pytest.raises(ClientError) as excinfo:
            attempt()
        assert _code(excinfo) == (400, code)
    # EC2 answers success for a key pair name it does not know; Alice's must survive it.
    bob_ec2.delete_key_pair(KeyName="shared-name")
    assert bob_ec2.delete_key_pair(KeyPairId=pair["KeyPairId"]).get("KeyPairId") is None
    assert _state(alice_ec2) == before


def test_rules_may_name_another_accounts_group_with_its_owner(accounts, alices):
    alice, alice_ec2, _, bob_ec2 = accounts
    _, group = alices
    bob_group = bob_ec2.create_security_group(GroupName=_name("from-alice"),
                                              Description="d")["GroupId"]
    bob_ec2.authorize_security_group_ingress(GroupId=bob_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "UserIdGroupPairs": [{"UserId": alice.account_id, "GroupName": "shared-name"}]}])
    [described] = bob_ec2.describe_security_groups(GroupIds=[bob_group])["SecurityGroups"]
    assert described["IpPermissions"][0]["UserIdGroupPairs"] == [
        {"UserId": alice.account_id, "GroupId": group["GroupId"], "GroupName": "shared-name"}]
    # Alice cannot delete a group Bob's rule still names.
    with pytest.raises(ClientError) as excinfo:
        alice_ec2.delete_security_group(GroupId=group["GroupId"])
    assert _code(excinfo) == (400, "InvalidGroup.InUse")
    bob_ec2.delete_security_group(GroupId=bob_group)
