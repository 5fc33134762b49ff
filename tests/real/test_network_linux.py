"""The linux network driver with real packets: a plan applied in a front-end namespace, the
node's bridges and VXLAN built as an NC builds them, and namespaces standing in for guests,
each getting its address from the CC's dnsmasq by DHCP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cc.network.plan import build
from services.messages.network import (GroupRef, IngressRule, InstanceAddresses, NetworkIntent,
                                       NetworkPlanView, NetworkSettings, SecurityGroupIntent)
from tests.real.netlab import CLC_ADDRESS, CLC_PORT, FE_WIRE, INET_ADDRESS, NODE_WIRE, NetLab

SETTINGS = NetworkSettings(mode="MANAGED", transport="vxlan", subnet="172.31.0.0",
                           netmask="255.255.0.0", addrs_per_net=32, public_interface="pub0",
                           private_interface="wire", metadata_host=CLC_ADDRESS,
                           metadata_port=CLC_PORT, lease_seconds=300)
ACCOUNT = "000000000001"
WEB, DB = "sg-0000aaaa", "sg-0000bbbb"
PUBLIC = "192.0.2.10"
# (instance, group, vlan, private address)
INSTANCES = [("i-0000000a", WEB, 2, "172.31.0.66"), ("i-0000000b", WEB, 2, "172.31.0.67"),
             ("i-0000000c", DB, 3, "172.31.0.98")]


def mac_of(instance_id: str) -> str:
    digits = instance_id.split("-")[1]
    return "d0:0d:" + ":".join(digits[i:i + 2] for i in range(0, 8, 2))


def intent(web_rules: list[IngressRule], with_db: bool = True, public: str | None = PUBLIC) -> NetworkIntent:
    groups = [SecurityGroupIntent(account_id=ACCOUNT, group_id=WEB, name="web", rules=web_rules)]
    if with_db:
        groups.append(SecurityGroupIntent(account_id=ACCOUNT, group_id=DB, name="db"))
    instances = [InstanceAddresses(instance_id=i, account_id=ACCOUNT, group_id=g, vlan=v,
                                   mac=mac_of(i), private_ip=ip, node="node-1",
                                   public_ip=public if i == "i-0000000a" else None)
                 for i, g, v, ip in INSTANCES if with_db or g != DB]
    return NetworkIntent(settings=SETTINGS, groups=groups, instances=instances)


class Cc:
    """The CC's linux driver, run inside the front end as the CC would run there."""

    def __init__(self, lab: NetLab, state: Path) -> None:
        self.lab = lab
        self.state = state
        self.settings = state.parent / "settings.json"
        self.settings.write_text(SETTINGS.model_dump_json())

    def apply(self, plan: NetworkPlanView) -> list[str]:
        path = self.state.parent / "plan.json"
        path.write_text(plan.model_dump_json())
        done = self.lab.run("fe", sys.executable, "-m", "cc.network.apply", "--state", str(self.state),
                            "--underlay", FE_WIRE, "--peer", f"node-1={NODE_WIRE}",
                            "--settings", str(self.settings), str(path))
        return done.stdout.splitlines()

    def teardown(self) -> None:
        self.lab.run("fe", sys.executable, "-m", "cc.network.apply", "--state", str(self.state),
                     "--underlay", FE_WIRE, "--settings", str(self.settings), "--teardown",
                     check=False)

    def rules(self) -> list[str]:
        saved = self.lab.run("fe", "iptables-save").stdout.splitlines()
        return [line for line in saved if "EU" in line]


def build_node_side(lab: NetLab, vlans: list[int]) -> None:
    """What the NC does before it starts a guest on network `vlan` (nc/node_network.py): the
    same bridge and VXLAN device as the CC, ending at the front end."""
    code = ("from nc.node_network import NodeNetwork\n"
            "from services.messages.node import InstanceNetwork\n"
            f"node = NodeNetwork('{NODE_WIRE}', 'wire')\n"
            + "".join(f"print(node.prepare(InstanceNetwork(mac='d0:0d:00:00:00:01', bridge='eucabr{v}', "
                      f"vlan={v}, tunnel_remote='{FE_WIRE}')))\n" for v in vlans))
    built = lab.run("node", sys.executable, "-c", code).stdout.splitlines()
    assert built == [f"vx{v} (VNI {v}) to {FE_WIRE} in eucabr{v}" for v in vlans]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NetLab, Cc]]:
    root = tmp_path_factory.mktemp("netlab")
    lab = NetLab.for_this_process("nl", root)
    try:
        lab.build()
        cc = Cc(lab, root / "cc-state")
        cc.apply(build(intent([])))
        build_node_side(lab, [2, 3])
        addresses = {name: lab.plug_instance(name, mac_of(i), f"eucabr{v}")
                     for (i, _g, v, _ip), name in zip(INSTANCES, ("ia", "ib", "ic"), strict=True)}
        assert addresses == {"ia": "172.31.0.66", "ib": "172.31.0.67", "ic": "172.31.0.98"}
        for name, ip in addresses.items():
            lab.serve_tcp(name, ip, 80, f"web {name}")
            lab.serve_tcp(name, ip, 22, f"ssh {name}")
        lab.serve_tcp("fe", CLC_ADDRESS, CLC_PORT, "metadata")
        lab.serve_tcp("inet", INET_ADDRESS, 8080, "internet")
        yield lab, cc
    finally:
        try:
            Cc(lab, root / "cc-state").teardown()
        finally:
            lab.close()


def test_dhcp_leases_name_each_instance(lab: tuple[NetLab, Cc]) -> None:
    _net, cc = lab
    leases = (cc.state / "dnsmasq-eucabr2.leases").read_text()
    assert "172.31.0.66 i-0000000a" in leases and "172.31.0.67 i-0000000b" in leases
    assert "172.31.0.98 i-0000000c" in (cc.state / "dnsmasq-eucabr3.leases").read_text()


def test_one_group_talks_within_itself_and_another_group_is_shut_out(lab: tuple[NetLab, Cc]) -> None:
    net, cc = lab
    cc.apply(build(intent([])))
    assert net.connect("ib", "172.31.0.66", 80) == "web ia 172.31.0.67"
    assert net.connect("ic", "172.31.0.66", 80) is None
    assert not net.ping("ic", "172.31.0.66")


def test_a_rule_naming_the_source_group_opens_only_its_port(lab: tuple[NetLab, Cc]) -> None:
    net, cc = lab
    rule = IngressRule(protocol="tcp", from_port=80, to_port=80, source=GroupRef(account_id=ACCOUNT, group_id=DB))
    done = cc.apply(build(intent([rule])))
    assert done == [] or all(not line.startswith("removed") for line in done)
    assert net.connect("ic", "172.31.0.66", 80) == "web ia 172.31.0.98"
    assert net.connect("ic", "172.31.0.66", 22) is None
    cc.apply(build(intent([])))  # revoked
    assert net.connect("ic", "172.31.0.66", 80) is None


def test_elastic_ip_reaches_the_instance_from_the_internet_and_it_leaves_with_it(lab: tuple[NetLab, Cc]) -> None:
    net, cc = lab
    cc.apply(build(intent([IngressRule(protocol="tcp", from_port=22, to_port=22, cidr="0.0.0.0/0")])))
    assert net.connect("inet", PUBLIC, 22) == f"ssh ia {INET_ADDRESS}"
    assert net.connect("inet", PUBLIC, 80) is None            # no rule for 80
    assert net.connect("ia", INET_ADDRESS, 8080) == f"internet {PUBLIC}"   # SNAT
    assert net.connect("ib", INET_ADDRESS, 8080) == "internet 192.0.2.1"   # MASQUERADE
    cc.apply(build(intent([IngressRule(protocol="tcp", from_port=22, to_port=22, cidr="0.0.0.0/0")],
                          public=None)))                     # disassociated
    assert net.connect("inet", PUBLIC, 22) is None
    assert f"{PUBLIC}/32" not in net.run("fe", "ip", "-4", "addr", "show", "dev", "pub0").stdout


def test_metadata_address_reaches_the_clc_with_the_instance_source(lab: tuple[NetLab, Cc]) -> None:
    net, cc = lab
    cc.apply(build(intent([])))
    assert net.connect("ia", "169.254.169.254", 80) == "metadata 172.31.0.66"
    assert net.connect("ic", "169.254.169.254", 80) == "metadata 172.31.0.98"


def test_reapplying_changes_nothing_and_rules_are_exactly_the_plans(lab: tuple[NetLab, Cc]) -> None:
    net, cc = lab
    plan = build(intent([IngressRule(protocol="icmp", from_port=-1, to_port=-1, cidr="172.31.0.96/27")]))
    cc.apply(plan)
    before = cc.rules()
    assert cc.apply(plan) == []
    assert cc.rules() == before
    ours = [line for line in before if line.startswith("-A EU")]
    planned = [line for line in plan.iptables.splitlines() if line.startswith("-A ")]
    assert sorted(ours) == sorted(planned)
    assert net.ping("ic", "172.31.0.66")


def test_a_deleted_group_leaves_no_rule_device_or_dnsmasq(lab: tuple[NetLab, Cc]) -> None:
    net, cc = lab
    done = cc.apply(build(intent([], with_db=False)))
    assert "removed chain EU-sg-0000bbbb" in done and "removed vx3" in done
    assert not any("sg-0000bbbb" in line or "172.31.0.96/27" in line for line in cc.rules())
    assert "eucabr3" not in net.run("fe", "ip", "-o", "link").stdout
    cc.apply(build(intent([])))  # the group back, for the tests that follow in any order


def test_an_address_a_gone_instance_held_is_leased_to_the_instance_that_has_it_now(
        lab: tuple[NetLab, Cc]) -> None:
    """As when an instance is terminated and the next launch gets its address: dnsmasq kept
    the gone instance's lease and refused the address to the new MAC until it expired."""
    net, cc = lab
    old, new = "i-0000000b", "i-0000000d"
    assert mac_of(old) in (cc.state / "dnsmasq-eucabr2.leases").read_text()
    moved = intent([])
    moved.instances = [a.model_copy(update={"instance_id": new, "mac": mac_of(new)}) if a.instance_id == old
                       else a for a in moved.instances]
    done = cc.apply(build(moved))
    assert any(line.startswith("dropped lease(s) of ") and line.endswith(" on eucabr2") for line in done)
    assert net.plug_instance("id", mac_of(new), "eucabr2") == "172.31.0.67"
    leases = (cc.state / "dnsmasq-eucabr2.leases").read_text()
    assert mac_of(new) in leases and mac_of(old) not in leases
    cc.apply(build(intent([])))  # i-0000000b back, for the tests that follow in any order
