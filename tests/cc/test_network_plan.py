"""The network plan as a pure function: what the zone's network is, from what the CLC
allocated and the groups' rules."""

from __future__ import annotations

import pytest

from cc.network.drivers import RecordingDriver
from cc.network.plan import build, diff
from cc.network.service import ZoneNetwork
from services.messages.network import (GroupRef, IngressRule, InstanceAddresses, NetworkIntent,
                                       NetworkSettings, SecurityGroupIntent)
from services.tracing import TraceRecorder
from services.vnet import public_pool

A = "000000000001"


def inst(instance_id: str, group: str, vlan: int, ip: str, public: str | None = None,
         node: str = "node-1") -> InstanceAddresses:
    return InstanceAddresses(instance_id=instance_id, account_id=A, group_id=group, vlan=vlan,
                             mac="d0:0d:00:00:00:01", private_ip=ip, public_ip=public, node=node)


def group(group_id: str, *rules: IngressRule) -> SecurityGroupIntent:
    return SecurityGroupIntent(account_id=A, group_id=group_id, name=group_id, rules=list(rules))


def plan_of(instances: list[InstanceAddresses], groups: list[SecurityGroupIntent], **settings: object):
    return build(NetworkIntent(settings=NetworkSettings(**settings), groups=groups, instances=instances))


def test_a_group_with_instances_gets_its_network_with_eucalyptus_reserved_addresses() -> None:
    plan = plan_of([inst("i-1", "sg-1", 2, "172.31.0.66")], [group("sg-1")])
    [net] = plan.networks
    assert (net.cidr, net.gateway, net.broadcast, net.bridge, net.device) == (
        "172.31.0.64/27", "172.31.0.65", "172.31.0.95", "eucabr2", "vx2")
    assert net.reserved == ["172.31.0.64", "172.31.0.65", "172.31.0.95"]
    assert plan.node_networks == {"node-1": [2]}


def test_a_group_without_instances_has_no_network_and_its_rules_name_nothing() -> None:
    rule = IngressRule(protocol="tcp", from_port=80, to_port=80, source=GroupRef(account_id=A, group_id="sg-2"))
    plan = plan_of([inst("i-1", "sg-1", 2, "172.31.0.66")], [group("sg-1", rule), group("sg-2")])
    assert [n.group_id for n in plan.networks] == ["sg-1"]
    assert not any(line.startswith("-A EU-sg-1") and "--dport 80" in line for line in plan.iptables.splitlines())
    assert "EU-sg-2" not in plan.iptables


def test_rules_render_ports_ranges_icmp_and_all_traffic() -> None:
    rules = [IngressRule(protocol="tcp", from_port=22, to_port=22, cidr="10.0.0.0/8"),
             IngressRule(protocol="udp", from_port=1000, to_port=2000, cidr="0.0.0.0/0"),
             IngressRule(protocol="icmp", from_port=8, to_port=-1, cidr="192.168.1.7/32"),
             IngressRule(protocol="-1", cidr="203.0.113.0/24")]
    plan = plan_of([inst("i-1", "sg-1", 2, "172.31.0.66")], [group("sg-1", *rules)])
    assert "-A EU-sg-1 -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT" in plan.iptables
    assert "-A EU-sg-1 -s 0.0.0.0/0 -p udp -m udp --dport 1000:2000 -j ACCEPT" in plan.iptables
    assert "-A EU-sg-1 -s 192.168.1.7/32 -p icmp --icmp-type 8 -j ACCEPT" in plan.iptables
    assert "-A EU-sg-1 -s 203.0.113.0/24 -j ACCEPT" in plan.iptables


def test_public_addresses_are_dnat_and_snat_and_the_rest_masquerades() -> None:
    plan = plan_of([inst("i-1", "sg-1", 2, "172.31.0.66", public="10.111.200.7"),
                    inst("i-2", "sg-1", 2, "172.31.0.67")], [group("sg-1")])
    lines = plan.iptables.splitlines()
    assert "-A EUCA-PREROUTING -d 10.111.200.7/32 -j DNAT --to-destination 172.31.0.66" in lines
    assert "-A EUCA-OUTPUT -d 10.111.200.7/32 -j DNAT --to-destination 172.31.0.66" in lines
    snat = "-A EUCA-POSTROUTING -s 172.31.0.66/32 ! -d 172.31.0.0/16 -j SNAT --to-source 10.111.200.7"
    masquerade = "-A EUCA-POSTROUTING -s 172.31.0.0/16 ! -d 172.31.0.0/16 -j MASQUERADE"
    assert lines.index(snat) < lines.index(masquerade)
    assert any("169.254.169.254/32" in line and "--to-destination 127.0.0.1:8773" in line for line in lines)


def test_dnsmasq_serves_each_network_with_its_router_and_a_host_line_per_instance() -> None:
    plan = plan_of([inst("i-1", "sg-1", 2, "172.31.0.66")], [group("sg-1")], dns="9.9.9.9")
    conf = plan.dnsmasq["eucabr2"]
    assert "interface=eucabr2" in conf and "port=0" in conf
    assert "dhcp-range=set:net2,172.31.0.66,static,255.255.255.224,1200" in conf
    assert "dhcp-option=tag:net2,option:router,172.31.0.65" in conf
    assert "dhcp-option=tag:net2,option:dns-server,9.9.9.9" in conf
    assert plan.dhcp_hosts["eucabr2"] == "d0:0d:00:00:00:01,172.31.0.66,i-1\n"


def test_managed_novlan_puts_every_network_on_one_bridge_without_tags() -> None:
    plan = plan_of([inst("i-1", "sg-1", 2, "172.31.0.66"), inst("i-2", "sg-2", 3, "172.31.0.98")],
                   [group("sg-1"), group("sg-2")], mode="MANAGED-NOVLAN", bridge="br0")
    assert {(n.bridge, n.device) for n in plan.networks} == {("br0", None)}
    assert list(plan.dnsmasq) == ["br0"]
    assert "net2" in plan.dnsmasq["br0"] and "net3" in plan.dnsmasq["br0"]


def test_system_mode_has_no_plan() -> None:
    plan = plan_of([inst("i-1", "sg-1", 2, "172.31.0.66")], [group("sg-1")], mode="SYSTEM")
    assert (plan.networks, plan.iptables, plan.dnsmasq) == ([], "", {})


def test_the_diff_names_the_rules_an_authorize_added() -> None:
    before = plan_of([inst("i-1", "sg-1", 2, "172.31.0.66")], [group("sg-1")])
    after = plan_of([inst("i-1", "sg-1", 2, "172.31.0.66")],
                    [group("sg-1", IngressRule(protocol="tcp", from_port=22, to_port=22, cidr="0.0.0.0/0"))])
    assert diff(before.iptables, after.iptables) == ["+ -A EU-sg-1 -s 0.0.0.0/0 -p tcp -m tcp --dport 22 -j ACCEPT"]
    assert diff(after.iptables, before.iptables) == ["- -A EU-sg-1 -s 0.0.0.0/0 -p tcp -m tcp --dport 22 -j ACCEPT"]


@pytest.mark.parametrize(("spec", "expected"), [
    ("10.0.0.1-10.0.0.3", ["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
    ("10.0.0.9, 10.0.0.1", ["10.0.0.9", "10.0.0.1"]),
    ("192.0.2.8/30", ["192.0.2.9", "192.0.2.10"]),
    ("10.0.0.1 10.0.0.1-10.0.0.2", ["10.0.0.1", "10.0.0.2"]),
])
def test_public_pool_reads_ranges_single_addresses_and_cidrs(spec: str, expected: list[str]) -> None:
    assert public_pool(spec) == expected


def test_public_pool_refuses_a_backwards_range() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        public_pool("10.0.0.5-10.0.0.1")


def test_an_intent_for_several_requests_shows_its_rule_diff_in_each_ones_trace() -> None:
    """The CLC sends one intent for a burst of changes: every request in it can follow what
    the CC changed for it (`eucasim trace`)."""
    recorder = TraceRecorder("cc")
    network = ZoneNetwork(RecordingDriver(), recorder)
    rule = IngressRule(protocol="tcp", from_port=22, to_port=22, cidr="0.0.0.0/0")
    intent = NetworkIntent(settings=NetworkSettings(), groups=[group("sg-1", rule)],
                           instances=[inst("i-1", "sg-1", 2, "172.31.0.66")],
                           for_requests=["req-authorize", "req-launch"])
    network.update(intent, {}, request_id="req-launch")
    for request_id in ("req-authorize", "req-launch"):
        [step] = recorder.steps(request_id)
        assert "+ -A EU-sg-1 -s 0.0.0.0/0 -p tcp -m tcp --dport 22 -j ACCEPT" in step.detail["rules"]
