"""Security groups, EC2-Classic style (no VPCs): CreateSecurityGroup, DescribeSecurityGroups,
DeleteSecurityGroup, AuthorizeSecurityGroupIngress and RevokeSecurityGroupIngress.

Groups have ingress rules only; IpPermissionsEgress is always [] (Classic groups had no egress
rules, and a Classic instance could send anywhere). Rule parsing and layout live in
clc/sg_rules.py; this module finds groups, checks ownership and stores."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from clc import sg_rules, tagging
from clc.api.query import apply_filters, paged
from clc.api.registry import Context, action
from clc.security_groups import DEFAULT_GROUP, check_id, find_group, in_use, not_found
from clc.models.resources import SecurityGroup, SecurityGroupRule
from services.errors import EC2Error

RESOURCE_TYPE = "security-group"
MAX_TEXT = 255

tagging.register_resource("sg", RESOURCE_TYPE, tagging.account_row_exists(SecurityGroup), not_found)


def _source_resolver(ctx: Context) -> sg_rules.GroupResolver:
    def resolve(group_id: str | None, group_name: str | None,
                user_id: str | None) -> tuple[str, str]:
        # Another account's group is reachable only by naming that account (UserId), as in
        # EC2-Classic; without it, a foreign id is as unknown as a missing one.
        owner = user_id or ctx.account_id
        if not group_id and not group_name:
            raise EC2Error("MissingParameter", "A source security group needs a GroupId or a "
                           "GroupName")
        row = find_group(ctx.db, owner, group_id, group_name)
        return row.id, row.account_id
    return resolve


def _group_names(db: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = db.execute(select(SecurityGroup.id, SecurityGroup.name).where(SecurityGroup.id.in_(ids)))
    return {group_id: name for group_id, name in rows}


def _check_text(value: str, param: str) -> None:
    if len(value) > MAX_TEXT:
        raise EC2Error("InvalidParameterValue", f"Value ({value}) for parameter {param} is "
                       f"invalid. Length exceeds maximum of {MAX_TEXT}.")
    if not value.isascii():
        raise EC2Error("InvalidParameterValue", f"Value ({value}) for parameter {param} is "
                       "invalid. Character sets beyond ASCII are not supported.")


@action("CreateSecurityGroup")
def create_security_group(ctx: Context, GroupName: str, Description: str,
                          VpcId: str | None = None,
                          TagSpecifications: list[dict[str, Any]] | None = None) -> dict:
    if not GroupName:
        raise EC2Error("MissingParameter", "The request must contain the parameter groupName")
    if not Description:
        raise EC2Error("MissingParameter", "The request must contain the parameter groupDescription")
    if VpcId:
        raise EC2Error("InvalidVpcID.NotFound", f"The vpc ID '{VpcId}' does not exist")
    _check_text(GroupName, "groupName")
    _check_text(Description, "groupDescription")
    if GroupName.lower().startswith("sg-"):
        raise EC2Error("InvalidParameterValue", "Group names may not be in the format sg-*")
    if ctx.db.scalar(select(SecurityGroup.id).where(SecurityGroup.account_id == ctx.account_id,
                                                    SecurityGroup.name == GroupName)):
        raise EC2Error("InvalidGroup.Duplicate", f"The security group '{GroupName}' already exists")
    group = SecurityGroup(id=ctx.new_id("sg", 17), account_id=ctx.account_id, name=GroupName,
                          description=Description)
    ctx.db.add(group)
    try:
        ctx.db.flush()
    except IntegrityError:  # the same name created by a concurrent request a moment ago
        raise EC2Error("InvalidGroup.Duplicate",
                       f"The security group '{GroupName}' already exists") from None
    tags = tagging.apply_tag_specifications(ctx.db, ctx.account_id, TagSpecifications,
                                            RESOURCE_TYPE, group.id)
    ctx.trace("decided", f"created security group {group.id} ({GroupName})")
    result: dict[str, Any] = {"GroupId": group.id, "SecurityGroupArn": _arn(ctx, group.id)}
    if tags:
        result["Tags"] = tags
    return result


def _arn(ctx: Context, group_id: str) -> str:
    return f"arn:aws:ec2:{ctx.config.REGION}:{ctx.account_id}:security-group/{group_id}"


def _rule_values(attribute: str) -> Callable[[SecurityGroup], list[Any]]:
    return lambda g: [getattr(r, attribute) for r in g.rules if getattr(r, attribute) is not None]


@action("DescribeSecurityGroups")
def describe_security_groups(ctx: Context, GroupIds: list[str] | None = None,
                             GroupNames: list[str] | None = None,
                             Filters: list[dict[str, Any]] | None = None,
                             MaxResults: int | None = None, NextToken: str | None = None) -> dict:
    groups = list(ctx.db.scalars(
        select(SecurityGroup).where(SecurityGroup.account_id == ctx.account_id)
        .options(selectinload(SecurityGroup.rules)).order_by(SecurityGroup.name)))
    by_id = {g.id: g for g in groups}
    by_name = {g.name: g for g in groups}
    for group_id in GroupIds or []:
        check_id(group_id)
        if group_id not in by_id:
            raise not_found(group_id)
    for name in GroupNames or []:
        if name not in by_name:
            raise not_found(name)
    if GroupIds:
        groups = [g for g in groups if g.id in GroupIds]
    if GroupNames:
        groups = [g for g in groups if g.name in GroupNames]
    names = _group_names(ctx.db, {r.source_group_id for g in groups for r in g.rules
                                  if r.source_group_id})
    tags = tagging.tags_by_resource(ctx.db, ctx.account_id, RESOURCE_TYPE)
    groups = apply_filters(groups, Filters, {
        "group-id": lambda g: g.id, "group-name": lambda g: g.name,
        "description": lambda g: g.description, "owner-id": lambda g: g.account_id,
        "vpc-id": lambda g: None,  # Classic groups belong to no VPC, so this matches none
        "ip-permission.protocol": _rule_values("protocol"),
        "ip-permission.from-port": _rule_values("from_port"),
        "ip-permission.to-port": _rule_values("to_port"),
        "ip-permission.cidr": lambda g: [r.cidr for r in g.rules if r.cidr and ":" not in r.cidr],
        "ip-permission.ipv6-cidr": lambda g: [r.cidr for r in g.rules if r.cidr and ":" in r.cidr],
        "ip-permission.group-id": _rule_values("source_group_id"),
        "ip-permission.group-name": lambda g: [names.get(r.source_group_id) for r in g.rules
                                               if r.source_group_id],
        "ip-permission.user-id": _rule_values("source_account_id"),
    }, tags_of=lambda g: tags.get(g.id, {}))
    return paged("SecurityGroups", groups, MaxResults, NextToken, lambda page: [
        {"OwnerId": g.account_id, "GroupId": g.id, "GroupName": g.name,
         "Description": g.description, "SecurityGroupArn": _arn(ctx, g.id),
         "IpPermissions": sg_rules.ip_permissions(g.rules, names), "IpPermissionsEgress": [],
         "Tags": tagging.tag_list(tags.get(g.id, {}))}
        for g in page])


def _dependents(db: Session, group: SecurityGroup) -> list[SecurityGroup]:
    """Other groups (of any account) whose rules name `group` as their source."""
    return list(db.scalars(
        select(SecurityGroup).join(SecurityGroupRule, SecurityGroupRule.group_id == SecurityGroup.id)
        .where(SecurityGroupRule.source_group_id == group.id, SecurityGroup.id != group.id)
        .distinct().order_by(SecurityGroup.name)))


@action("DeleteSecurityGroup")
def delete_security_group(ctx: Context, GroupId: str | None = None,
                          GroupName: str | None = None) -> dict:
    group = find_group(ctx.db, ctx.account_id, GroupId, GroupName)
    if group.name == DEFAULT_GROUP:
        raise EC2Error("CannotDelete", f'the specified group: "{group.id}" name: "{group.name}" '
                       "cannot be deleted by a user")
    users = _dependents(ctx.db, group)
    if users:
        listed = ", ".join(f"{g.account_id}:{g.name}" for g in users)
        raise EC2Error("InvalidGroup.InUse",
                       f"Group {group.account_id}:{group.name} is used by groups: {listed}")
    message = in_use(ctx.db, group)
    if message:
        raise EC2Error("InvalidGroup.InUse", message)
    group_id = group.id
    tagging.delete_all_tags(ctx.db, ctx.account_id, group_id)
    ctx.db.delete(group)
    ctx.trace("decided", f"deleted security group {group_id} ({group.name})")
    return {"Return": True, "GroupId": group_id}


def _requested(IpPermissions: list[dict[str, Any]] | None,
               legacy: dict[str, Any]) -> list[dict[str, Any]]:
    flat = sg_rules.legacy_permissions(**legacy)
    if IpPermissions and flat:
        raise EC2Error("InvalidParameterCombination", "The parameter 'ipPermissions' may not be "
                       "used in combination with 'ipProtocol', 'cidrIp' or 'sourceSecurityGroupName'.")
    permissions = list(IpPermissions or []) or flat
    if not permissions:
        raise EC2Error("MissingParameter", "The request must contain the parameter ipPermissions")
    return permissions


@action("AuthorizeSecurityGroupIngress")
def authorize_security_group_ingress(
        ctx: Context, GroupId: str | None = None, GroupName: str | None = None,
        IpPermissions: list[dict[str, Any]] | None = None, IpProtocol: str | None = None,
        FromPort: int | None = None, ToPort: int | None = None, CidrIp: str | None = None,
        SourceSecurityGroupName: str | None = None,
        SourceSecurityGroupOwnerId: str | None = None) -> dict:
    group = find_group(ctx.db, ctx.account_id, GroupId, GroupName)
    permissions = _requested(IpPermissions, dict(
        IpProtocol=IpProtocol, FromPort=FromPort, ToPort=ToPort, CidrIp=CidrIp,
        SourceSecurityGroupName=SourceSecurityGroupName,
        SourceSecurityGroupOwnerId=SourceSecurityGroupOwnerId))
    specs = sg_rules.expand(permissions, _source_resolver(ctx))
    # All or nothing: every rule is checked against the group and the rest of the request
    # before the first one is stored.
    seen = {sg_rules.identity_of(r) for r in group.rules}
    for spec in specs:
        if spec.identity() in seen:
            raise EC2Error("InvalidPermission.Duplicate",
                           f'the specified rule "{spec.text()}" already exists')
        seen.add(spec.identity())
    added = []
    for spec in specs:
        row = SecurityGroupRule(protocol=spec.protocol, from_port=spec.from_port,
                                to_port=spec.to_port, cidr=spec.cidr,
                                source_group_id=spec.source_group_id,
                                source_account_id=spec.source_account_id,
                                description=spec.description)
        group.rules.append(row)
        added.append(row)
    ctx.db.flush()
    ctx.trace("decided", f"authorized {len(added)} rule(s) on {group.id}",
              rules=[s.text() for s in specs])
    ctx.network_changed()
    return {"Return": True,
            "SecurityGroupRules": [sg_rules.security_group_rule(r, group.account_id) for r in added]}


def _matching_rules(group: SecurityGroup, specs: Sequence[sg_rules.RuleSpec],
                    rule_ids: Sequence[str]) -> list[SecurityGroupRule]:
    by_identity = {sg_rules.identity_of(r): r for r in group.rules}
    by_rule_id = {sg_rules.rule_id(r): r for r in group.rules}
    chosen: dict[int, SecurityGroupRule] = {}
    for spec in specs:
        row = by_identity.get(spec.identity())
        if row is None:
            raise EC2Error("InvalidPermission.NotFound",
                           "The specified rule does not exist in this security group.")
        chosen[row.id] = row
    for wanted in rule_ids:
        row = by_rule_id.get(wanted)
        if row is None:
            raise EC2Error("InvalidSecurityGroupRuleId.NotFound",
                           f"The security group rule ID '{wanted}' does not exist")
        chosen[row.id] = row
    return list(chosen.values())


@action("RevokeSecurityGroupIngress")
def revoke_security_group_ingress(
        ctx: Context, GroupId: str | None = None, GroupName: str | None = None,
        IpPermissions: list[dict[str, Any]] | None = None, IpProtocol: str | None = None,
        FromPort: int | None = None, ToPort: int | None = None, CidrIp: str | None = None,
        SourceSecurityGroupName: str | None = None, SourceSecurityGroupOwnerId: str | None = None,
        SecurityGroupRuleIds: list[str] | None = None) -> dict:
    group = find_group(ctx.db, ctx.account_id, GroupId, GroupName)
    legacy = dict(IpProtocol=IpProtocol, FromPort=FromPort, ToPort=ToPort, CidrIp=CidrIp,
                  SourceSecurityGroupName=SourceSecurityGroupName,
                  SourceSecurityGroupOwnerId=SourceSecurityGroupOwnerId)
    specs: list[sg_rules.RuleSpec] = []
    if IpPermissions or any(v is not None for v in legacy.values()) or not SecurityGroupRuleIds:
        specs = sg_rules.expand(_requested(IpPermissions, legacy), _source_resolver(ctx))
    rows = _matching_rules(group, specs, SecurityGroupRuleIds or [])
    revoked = [sg_rules.revoked_rule(r) for r in rows]
    for row in rows:
        group.rules.remove(row)
    ctx.trace("decided", f"revoked {len(rows)} rule(s) on {group.id}")
    ctx.network_changed()
    return {"Return": True, "RevokedSecurityGroupRules": revoked}
