"""What each console page shows, gathered for one viewer: rows read through the behaviour
modules the EC2 handlers use (clc/instances.py, clc/volumes.py, clc/snapshots.py,
clc/accounts.py) and the live answers of the other services (peek.py). An admin sees every
account; anyone else their own account only, and of the shared parts (nodes, the network plan,
traces) only what concerns their account."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from clc import accounts, instances, snapshots, volumes
from clc.console.peek import Health, Peek
from clc.console.session import Viewer
from services.db import Database
from services.messages.cluster import NodeInfo
from services.messages.network import NetworkPlanView
from services.messages.node import Resources
from services.tracing import TraceStep

# The lanes of a trace, in the order a request crosses them.
LANES = ("clc", "cc", "nc", "sc", "walrus")


def account_names(db: Database, viewer: Viewer) -> dict[str, str]:
    """account id -> name, of every account the viewer may see."""
    if not viewer.is_admin:
        return {viewer.account_id: viewer.account_name}
    with db.session() as session:
        return {a.id: a.name for a, _users in accounts.accounts_with_users(session)}


# -- instances ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstanceRow:
    id: str
    account: str
    state: str
    type: str
    zone: str
    node: str
    private_ip: str
    public_ip: str
    volumes: list[tuple[str, str, str]]   # (device, volume id, attachment state)
    launched: str
    reason: str


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def instance_rows(db: Database, viewer: Viewer) -> list[InstanceRow]:
    rows: list[InstanceRow] = []
    with db.session() as session:
        for account_id, name in account_names(db, viewer).items():
            found = instances.owned(session, account_id, plain=True)
            attached = volumes.attached_to(session, [i.id for i in found])
            rows += [InstanceRow(
                id=i.id, account=name, state=i.state, type=i.instance_type, zone=i.zone,
                node=i.node or "", private_ip=i.private_ip or "", public_ip=i.public_ip or "",
                volumes=[(v.device or "", v.id, v.attach_state or "") for v in attached.get(i.id, [])],
                launched=_when(i.launched_at), reason=i.state_reason_message or "")
                for i in found]
    return sorted(rows, key=lambda r: (r.launched, r.id), reverse=True)


# -- volumes and snapshots ---------------------------------------------------------------------

@dataclass(frozen=True)
class VolumeRow:
    id: str
    account: str
    size_gib: int
    type: str
    zone: str
    state: str
    instance: str
    device: str
    attach_state: str
    snapshot: str
    created: str


@dataclass(frozen=True)
class SnapshotRow:
    id: str
    account: str
    volume: str
    size_gib: int
    state: str
    progress: int
    consistency: str
    description: str
    started: str
    reason: str


def volume_rows(db: Database, viewer: Viewer) -> tuple[list[VolumeRow], list[SnapshotRow]]:
    vols: list[VolumeRow] = []
    snaps: dict[str, SnapshotRow] = {}
    names = account_names(db, viewer)
    with db.session() as session:
        for account_id, name in names.items():
            vols += [VolumeRow(id=v.id, account=name, size_gib=v.size_gib, type=v.volume_type,
                               zone=v.zone, state=v.state, instance=v.instance_id or "",
                               device=v.device or "", attach_state=v.attach_state or "",
                               snapshot=v.snapshot_id or "", created=_when(v.created_at))
                     for v in volumes.owned(session, account_id)]
            # Shared and public snapshots show under their owner, once.
            for s in snapshots.visible(session, account_id):
                snaps.setdefault(s.id, SnapshotRow(
                    id=s.id, account=names.get(s.account_id, s.account_id), volume=s.volume_id,
                    size_gib=s.volume_size_gib, state=s.state, progress=s.progress,
                    consistency=s.consistency, description=s.description,
                    started=_when(s.started_at), reason=s.reason_message or ""))
    return (sorted(vols, key=lambda v: (v.created, v.id), reverse=True),
            sorted(snaps.values(), key=lambda s: (s.started, s.id), reverse=True))


# -- nodes and topology ------------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    """One resource of a node: booked of max, and the host's real amount when the node said."""
    booked: int
    max: int
    host: int | None

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.booked / self.max)) if self.max else 0

    @property
    def overcommit(self) -> float | None:
        """max / host when the node offers more than the host has (MAX_CORES and friends)."""
        if self.host and self.max > self.host:
            return round(self.max / self.host, 2)
        return None


@dataclass(frozen=True)
class NodeRow:
    zone: str
    name: str
    url: str
    state: str
    cores: Figure | None
    memory_mb: Figure | None
    disk_gb: Figure | None
    hypervisor: str
    instances: int                              # every account's, as the CC counts them
    mine: list[InstanceRow] = field(default_factory=list)   # those the viewer may see
    error: str = ""


def _figures(info: NodeInfo, host: Resources | None) -> dict[str, Figure | None]:
    if info.max is None or info.free is None:
        return {"cores": None, "memory_mb": None, "disk_gb": None}
    return {name: Figure(booked=getattr(info.max, name) - getattr(info.free, name),
                         max=getattr(info.max, name),
                         host=getattr(host, name) if host is not None else None)
            for name in ("cores", "memory_mb", "disk_gb")}


@dataclass(frozen=True)
class ZoneNodes:
    zone: str
    policy: str
    nodes: list[NodeRow]
    error: str = ""


def zone_nodes(peek: Peek, db: Database, viewer: Viewer, *, host_figures: bool = True) -> list[ZoneNodes]:
    by_node: dict[str, list[InstanceRow]] = {}
    for row in instance_rows(db, viewer):
        if row.node and row.state != "terminated":
            by_node.setdefault(row.node, []).append(row)
    zones: list[ZoneNodes] = []
    for zone in peek.config.zones:
        listing = peek.nodes(zone)
        if isinstance(listing, str):
            zones.append(ZoneNodes(zone=zone, policy="", nodes=[], error=listing))
            continue
        rows = []
        for info in listing.nodes:
            own = peek.node_resources(info.url) if host_figures and info.state == "up" else None
            rows.append(NodeRow(zone=zone, name=info.name, url=info.url, state=info.state,
                                hypervisor=own.hypervisor if own else "", instances=info.instances,
                                mine=sorted(by_node.get(info.name, []), key=lambda r: r.id),
                                error=info.last_error or "",
                                **_figures(info, own.host if own else None)))
        zones.append(ZoneNodes(zone=listing.zone, policy=listing.policy, nodes=rows))
    return zones


@dataclass(frozen=True)
class Topology:
    clc: Health
    services: list[Health]
    zones: list[ZoneNodes]


def topology(peek: Peek, db: Database, viewer: Viewer) -> Topology:
    # The CLC draws this page, so it is up.
    clc = Health("clc", peek.config.service_url("clc"), "up")
    return Topology(clc=clc, services=[peek.health(s) for s in ("walrus", "sc", "cc", "nc")],
                    zones=zone_nodes(peek, db, viewer, host_figures=False))


# -- the network plan of a zone ----------------------------------------------------------------

def network_plan(peek: Peek, viewer: Viewer, zone: str) -> NetworkPlanView | str:
    """The zone's plan as its CC holds it; a user sees only their account's networks, leases
    and the rule lines that name them."""
    plan = peek.network_plan(zone)
    if isinstance(plan, str) or viewer.is_admin:
        return plan
    networks = [n for n in plan.networks if n.account_id == viewer.account_id]
    vlans = {n.vlan for n in networks}
    own = {i for n in networks for i in n.instances}
    leases = [lease for lease in plan.leases if lease.vlan in vlans and lease.instance_id in own]
    keys = {n.group_id for n in networks} | {n.cidr for n in networks}
    keys |= {lease.private_ip for lease in leases} | {lease.public_ip for lease in leases if lease.public_ip}
    rules = "\n".join(line for line in plan.iptables.splitlines()
                      if line.startswith(("*", "COMMIT")) or any(k in line for k in keys))
    bridges = {n.bridge for n in networks}
    return plan.model_copy(update={
        "networks": networks, "leases": leases, "iptables": rules + "\n",
        "dnsmasq": {}, "dhcp_hosts": {b: t for b, t in plan.dhcp_hosts.items() if b in bridges},
        "node_networks": {}, "diff": []})


# -- a request's trace -------------------------------------------------------------------------

@dataclass(frozen=True)
class SequenceStep:
    step: TraceStep
    lane: int                   # index into LANES
    at: str                     # HH:MM:SS.mmm UTC
    since_ms: float             # since the request's first step
    detail: list[tuple[str, str, bool]]   # (name, value, long: shown as a block)


@dataclass(frozen=True)
class TraceView:
    request_id: str
    lanes: tuple[str, ...]
    steps: list[SequenceStep]
    unreachable: list[str]
    action: str = ""
    hidden: bool = False        # another account's request


def _text(value: Any) -> str:
    """A step's detail as a person reads it: lines (rule changes) one a line, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    try:
        return json.dumps(value, indent=1 if isinstance(value, (dict, list)) and len(value) > 3 else None,
                          default=str)
    except (TypeError, ValueError):
        return repr(value)


def _detail(detail: dict[str, Any]) -> list[tuple[str, str, bool]]:
    rows = []
    for name, value in detail.items():
        text = _text(value)
        rows.append((name, text, "\n" in text or len(text) > 120))
    return rows


def trace(peek: Peek, viewer: Viewer, request_id: str) -> TraceView:
    steps, unreachable = peek.trace(request_id)
    received = [s for s in steps if s.service == "clc" and s.kind == "received"]
    action = received[0].what if received else ""
    # A request belongs to the account whose key signed it (the CLC's `received` step says).
    owner = received[0].detail.get("account") if received else None
    if not viewer.is_admin and owner != viewer.account_id:
        return TraceView(request_id=request_id, lanes=LANES, steps=[], unreachable=[], hidden=True)
    first = steps[0].at if steps else 0.0
    lanes = LANES + tuple(sorted({s.service for s in steps} - set(LANES)))
    return TraceView(
        request_id=request_id, lanes=lanes, unreachable=unreachable, action=action,
        steps=[SequenceStep(step=s, lane=lanes.index(s.service),
                            at=datetime.fromtimestamp(s.at, timezone.utc).strftime("%H:%M:%S.%f")[:-3],
                            since_ms=round((s.at - first) * 1000, 1), detail=_detail(s.detail))
               for s in steps])
