"""Security group ingress rules: reading the IpPermissions of a request (and the legacy flat
parameters boto 2 and euca2ools send) into single rules, validating them as EC2 does, and
laying stored rules out again as EC2's IpPermissions and SecurityGroupRules.

One stored rule is one protocol and port range from one source: a CIDR or a security group.
A request's IpPermission with three CIDRs and a group is four rules; Describe folds rules with
the same protocol and ports back into one IpPermission."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from services.errors import EC2Error

_PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
              "-1": "-1", "all": "-1"}
ALL_PORTS = (0, 65535)

# (GroupId, GroupName, UserId) of a source group -> (group id, owning account id)
GroupResolver = Callable[[str | None, str | None, str | None], tuple[str, str]]


@dataclass(frozen=True)
class RuleSpec:
    protocol: str  # tcp | udp | icmp | -1
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    source_group_id: str | None = None
    source_account_id: str | None = None
    description: str | None = None

    def identity(self) -> tuple[Any, ...]:
        # The description is a note on a rule, not part of what the rule allows.
        return (self.protocol, self.from_port, self.to_port, self.cidr, self.source_group_id)

    def text(self) -> str:
        """How EC2 names a rule in InvalidPermission.Duplicate."""
        peer = self.cidr or self.source_group_id
        if self.protocol == "-1":
            return f"peer: {peer}, ALL, ALLOW"
        if self.protocol == "icmp":
            return f"peer: {peer}, ICMP, type: {self.from_port}, code: {self.to_port}, ALLOW"
        return (f"peer: {peer}, {self.protocol.upper()}, from port: {self.from_port}, "
                f"to port: {self.to_port}, ALLOW")


class StoredRule(Protocol):
    id: int
    group_id: str
    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str | None
    source_group_id: str | None
    source_account_id: str | None
    description: str | None


def identity_of(row: StoredRule) -> tuple[Any, ...]:
    return (row.protocol, row.from_port, row.to_port, row.cidr, row.source_group_id)


def rule_id(row: StoredRule) -> str:
    """A stable `sgr-` id derived from the rule's row, so no column is needed for it."""
    return "sgr-" + hashlib.sha256(f"{row.group_id}/{row.id}".encode()).hexdigest()[:17]


# ---------------------------------------------------------------------- request side

def normalize_protocol(value: Any) -> str:
    protocol = _PROTOCOLS.get(str(value).lower()) if value is not None else None
    if protocol is None:
        raise EC2Error("InvalidParameterValue",
                       f"Invalid value '{value}' for IP protocol. Unknown protocol.")
    return protocol


def check_ports(protocol: str, from_port: int | None,
                to_port: int | None) -> tuple[int | None, int | None]:
    if protocol == "-1":
        return None, None  # every protocol and port: ports mean nothing here
    if protocol == "icmp":
        if from_port is None or to_port is None:
            raise EC2Error("InvalidParameterValue",
                           "Invalid value 'Must specify both from and to ports with ICMP.' "
                           "for portRange.")
        if not -1 <= from_port <= 255:
            raise EC2Error("InvalidParameterValue", f"ICMP type ({from_port}) out of range")
        if not -1 <= to_port <= 255:
            raise EC2Error("InvalidParameterValue", f"ICMP code ({to_port}) out of range")
        if from_port == -1 and to_port != -1:
            raise EC2Error("InvalidParameterValue",
                           f"ICMP code ({to_port}) must be -1 when the ICMP type is -1 (all types)")
        return from_port, to_port
    if from_port is None or to_port is None:
        raise EC2Error("InvalidParameterValue",
                       "Invalid value 'Must specify both from and to ports with TCP/UDP.' "
                       "for portRange.")
    for port in (from_port, to_port):
        if not 0 <= port <= 65535:
            raise EC2Error("InvalidPermission.Malformed", f"TCP/UDP port ({port}) out of range")
    if from_port > to_port:
        raise EC2Error("InvalidParameterValue",
                       f"Invalid TCP/UDP port range: the from port ({from_port}) is greater "
                       f"than the to port ({to_port}).")
    return from_port, to_port


def check_cidr(value: Any, version: int) -> str:
    param = "cidrIp" if version == 4 else "cidrIpv6"
    text = "" if value is None else str(value).strip()
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        interface = None
    if interface is None or interface.version != version or "/" not in text:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({text}) for parameter {param} is invalid. "
                       "This is not a valid CIDR block.")
    network = interface.network
    if interface.ip != network.network_address:
        # Host bits set (10.0.0.1/8): EC2 refuses rather than guessing which was meant.
        raise EC2Error("InvalidPermission.Malformed", f"CIDR block {text} is malformed")
    return str(network)


def legacy_permissions(IpProtocol: str | None = None, FromPort: int | None = None,
                       ToPort: int | None = None, CidrIp: str | None = None,
                       SourceSecurityGroupName: str | None = None,
                       SourceSecurityGroupOwnerId: str | None = None) -> list[dict[str, Any]]:
    """The flat parameters of EC2-Classic clients as IpPermissions. A source group with no
    protocol opens every TCP and UDP port and all ICMP to it, as EC2-Classic did."""
    if all(v is None for v in (IpProtocol, FromPort, ToPort, CidrIp, SourceSecurityGroupName,
                               SourceSecurityGroupOwnerId)):
        return []
    if CidrIp is not None and SourceSecurityGroupName is not None:
        raise EC2Error("InvalidParameterCombination",
                       "The parameter 'cidrIp' may not be used in combination with "
                       "'sourceSecurityGroupName'.")
    source: dict[str, Any] = {}
    if CidrIp is not None:
        source["IpRanges"] = [{"CidrIp": CidrIp}]
    elif SourceSecurityGroupName is not None:
        pair: dict[str, Any] = {"GroupName": SourceSecurityGroupName}
        if SourceSecurityGroupOwnerId:
            pair["UserId"] = SourceSecurityGroupOwnerId
        source["UserIdGroupPairs"] = [pair]
    if IpProtocol is None:
        if "UserIdGroupPairs" not in source:
            raise EC2Error("MissingParameter", "The request must contain the parameter ipProtocol")
        return [{"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, **source},
                {"IpProtocol": "udp", "FromPort": 0, "ToPort": 65535, **source},
                {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, **source}]
    return [{"IpProtocol": IpProtocol, "FromPort": FromPort, "ToPort": ToPort, **source}]


def expand(permissions: Sequence[dict[str, Any]], resolve_group: GroupResolver) -> list[RuleSpec]:
    """Validate IpPermissions and split them into single rules. Raises EC2Error on the first
    problem; nothing has been stored by then."""
    rules: list[RuleSpec] = []
    for permission in permissions:
        protocol = normalize_protocol(permission.get("IpProtocol"))
        from_port, to_port = check_ports(protocol, permission.get("FromPort"),
                                         permission.get("ToPort"))
        base = {"protocol": protocol, "from_port": from_port, "to_port": to_port}
        found = False
        for entry in permission.get("IpRanges") or []:
            rules.append(RuleSpec(**base, cidr=check_cidr(entry.get("CidrIp"), 4),
                                  description=entry.get("Description")))
            found = True
        for entry in permission.get("Ipv6Ranges") or []:
            rules.append(RuleSpec(**base, cidr=check_cidr(entry.get("CidrIpv6"), 6),
                                  description=entry.get("Description")))
            found = True
        for entry in permission.get("PrefixListIds") or []:
            # No prefix lists exist in this cloud, so any id names nothing.
            raise EC2Error("InvalidPrefixListId.NotFound",
                           f"The prefix list ID '{entry.get('PrefixListId')}' does not exist")
        for entry in permission.get("UserIdGroupPairs") or []:
            group_id, account_id = resolve_group(entry.get("GroupId"), entry.get("GroupName"),
                                                 entry.get("UserId"))
            rules.append(RuleSpec(**base, source_group_id=group_id, source_account_id=account_id,
                                  description=entry.get("Description")))
            found = True
        if not found:
            raise EC2Error("MissingParameter", "The request must contain a source for each "
                           "permission: IpRanges, Ipv6Ranges or UserIdGroupPairs")
    return rules


# ---------------------------------------------------------------------- response side

def ip_permissions(rows: Iterable[StoredRule], group_names: dict[str, str]) -> list[dict[str, Any]]:
    """Stored rules as EC2's IpPermissions: one per protocol and port range, in the order the
    first rule of each was added, every list member present (empty when unused)."""
    folded: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row.protocol, row.from_port, row.to_port)
        permission = folded.get(key)
        if permission is None:
            permission = {"IpProtocol": row.protocol, "FromPort": row.from_port,
                          "ToPort": row.to_port, "IpRanges": [], "Ipv6Ranges": [],
                          "UserIdGroupPairs": [], "PrefixListIds": []}
            folded[key] = permission
        if row.source_group_id:
            pair = {"UserId": row.source_account_id, "GroupId": row.source_group_id,
                    "GroupName": group_names.get(row.source_group_id),
                    "Description": row.description}
            permission["UserIdGroupPairs"].append(pair)
        elif row.cidr and ":" in row.cidr:
            permission["Ipv6Ranges"].append({"CidrIpv6": row.cidr, "Description": row.description})
        elif row.cidr:
            permission["IpRanges"].append({"CidrIp": row.cidr, "Description": row.description})
    return list(folded.values())


def security_group_rule(row: StoredRule, owner_id: str) -> dict[str, Any]:
    """One rule as the SecurityGroupRule shape (Authorize/Revoke answers)."""
    rule: dict[str, Any] = {
        "SecurityGroupRuleId": rule_id(row), "GroupId": row.group_id, "GroupOwnerId": owner_id,
        "IsEgress": False, "IpProtocol": row.protocol,
        "FromPort": -1 if row.from_port is None else row.from_port,
        "ToPort": -1 if row.to_port is None else row.to_port,
        "Description": row.description, "Tags": []}
    if row.source_group_id:
        rule["ReferencedGroupInfo"] = {"GroupId": row.source_group_id,
                                       "UserId": row.source_account_id}
    elif row.cidr and ":" in row.cidr:
        rule["CidrIpv6"] = row.cidr
    else:
        rule["CidrIpv4"] = row.cidr
    return rule


def revoked_rule(row: StoredRule) -> dict[str, Any]:
    """One rule as the RevokedSecurityGroupRule shape (a flatter cousin of SecurityGroupRule)."""
    rule: dict[str, Any] = {
        "SecurityGroupRuleId": rule_id(row), "GroupId": row.group_id, "IsEgress": False,
        "IpProtocol": row.protocol,
        "FromPort": -1 if row.from_port is None else row.from_port,
        "ToPort": -1 if row.to_port is None else row.to_port, "Description": row.description}
    if row.source_group_id:
        rule["ReferencedGroupId"] = row.source_group_id
    elif row.cidr and ":" in row.cidr:
        rule["CidrIpv6"] = row.cidr
    else:
        rule["CidrIpv4"] = row.cidr
    return rule
