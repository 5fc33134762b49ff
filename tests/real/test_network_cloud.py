"""Issue 10's own test: the cloud's MANAGED networking with real packets, driven only through
the EC2 API (boto3).

The CLC, Walrus, SC and CC run in a front-end namespace with VNET_DRIVER=linux, the NC in a node
namespace on libvirt's test driver; it builds each guest's bridge and VXLAN end as it would for
a real guest. Where a guest's tap would go, a namespace stands in for the instance: a veth in
the node's bridge with the instance's MAC, asking the CC's dnsmasq for its address by DHCP.
The test's own thread works from the front end (NetLab.step_into), as an operator's shell there.

The lab is built once for the module; the tests run in order over the same three instances
(web: ia, ib; db: ic) and each leaves the rules as it found them, except the last, which deletes
the db group."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services import credentials, launcher
from services.config import load_config
from services.cli_trace import gather
from services.messages.network import CC_NETWORK_ROUTE, NetworkPlanView
from tests.real.netlab import CLC_ADDRESS, CLC_PORT, FE_PUBLIC, FE_WIRE, INET_ADDRESS, NODE_WIRE, NetLab
from tests.support.cloud import SECRET, Cloud
from tests.support.waiting import wait_for

NC_PORT = 8775
PUBLIC_POOL = "192.0.2.10-192.0.2.30"
FAST = {"Delay": 1, "MaxAttempts": 60}
METADATA = "http://169.254.169.254/latest/meta-data/instance-id"


def _settings(home: Path) -> dict[str, str]:
    """The cloud's eucalyptus.conf keys: every port is fixed, since the namespaces are new."""
    return {
        "EUCASIM_HOME": str(home), "CLOUD_SECRET": SECRET, "PUBLIC_HOST": FE_WIRE,
        # 0.0.0.0: the CLC answers the metadata DNAT on CLC_ADDRESS (fe's lo) and users on the wire.
        "BIND_ADDRESS": "0.0.0.0", "HYPERVISOR_URI": "test:///default",
        "NODES": f"http://{NODE_WIRE}:{NC_PORT}", "NC_URL": f"http://{NODE_WIRE}:{NC_PORT}",
        "NC_PORT": str(NC_PORT),
        "NC_POLLING_FREQUENCY": "0.5", "MAX_CORES": "8", "MAX_MEM": "16384", "MAX_DISK": "500",
        "VNET_MODE": "MANAGED", "VNET_DRIVER": "linux", "VNET_TRANSPORT": "vxlan",
        "VNET_LOCALIP": FE_WIRE, "VNET_PRIVINTERFACE": "wire", "VNET_PUBINTERFACE": "pub0",
        "VNET_PUBLICIPS": PUBLIC_POOL, "VNET_METADATA": f"{CLC_ADDRESS}:{CLC_PORT}"}


def _cc_spec(env: dict[str, str]) -> launcher.ServiceSpec:
    return launcher.ServiceSpec("cc", "cc.app:create_app", 8774, env=dict(env))


@dataclass
class World:
    net: NetLab
    cloud: Cloud
    env: dict[str, str]
    groups: dict[str, str] = field(default_factory=dict)      # name -> sg-…
    ids: dict[str, str] = field(default_factory=dict)         # stand-in (ia, ib, ic) -> i-…
    private: dict[str, str] = field(default_factory=dict)     # stand-in -> its DHCP address

    @property
    def ec2(self) -> Any:
        return self.cloud.ec2()

    def plan(self) -> NetworkPlanView:
        client = self.cloud.internal("cc")
        try:
            return client.call("GET", CC_NETWORK_ROUTE, None, NetworkPlanView)  # type: ignore[return-value]
        finally:
            client.close()

    def public_ip(self, name: str) -> str | None:
        found = self.ec2.describe_instances(InstanceIds=[self.ids[name]])
        return found["Reservations"][0]["Instances"][0].get("PublicIpAddress")

    def restart_cc(self, while_away: Callable[[], object] | None = None) -> None:
        services = self.cloud.services
        old = next(s for s in services if s.spec.name == "cc")
        launcher.stop([old])
        services.remove(old)
        self.check_live_traffic()  # the CC's rules stay while it is away
        if while_away is not None:
            while_away()
        services.extend(launcher.start(self.cloud.config, [_cc_spec(self.env)], timeout=90))

    def check_live_traffic(self) -> None:
        assert self.net.connect("ib", self.private["ia"], 80) == f"web ia {self.private['ib']}"

    def our_rules(self) -> list[str]:
        """What iptables-save shows of eucasim's own in the front end: the chains, the one
        jump into each from its built-in chain, and their rules."""
        saved = self.net.run("fe", "iptables-save").stdout.splitlines()
        return [line for line in saved if " EU" in line or line.startswith((":EU", "-A EU"))]


def planned_rules(plan: NetworkPlanView) -> list[str]:
    """What our_rules() must be for `plan`: its chains, the four hooks and its rules."""
    hooks = ["-A FORWARD -j EUCA-FORWARD", "-A PREROUTING -j EUCA-PREROUTING",
             "-A OUTPUT -j EUCA-OUTPUT", "-A POSTROUTING -j EUCA-POSTROUTING"]
    lines = plan.iptables.splitlines()
    return ([line.split()[0] for line in lines if line.startswith(":")]
            + hooks + [line for line in lines if line.startswith("-A ")])


def assert_rules_are_the_plans(world: World) -> NetworkPlanView:
    plan = world.plan()
    # iptables-save writes a chain's declaration as ":NAME POLICY [counters]": the name is enough.
    ours = [line.split()[0] if line.startswith(":") else line for line in world.our_rules()]
    assert sorted(ours) == sorted(planned_rules(plan))
    # ...and the public addresses on VNET_PUBINTERFACE are the plan's, no more.
    shown = world.net.run("fe", "ip", "-4", "-o", "addr", "show", "dev", "pub0").stdout.split()
    on_pub0 = {shown[i + 1] for i, word in enumerate(shown) if word == "inet"}
    assert on_pub0 == {f"{FE_PUBLIC}/24"} | {f"{lease.public_ip}/32" for lease in plan.leases if lease.public_ip}
    return plan


def _instances(world: World, group: str, count: int, image: str) -> list[str]:
    ran = world.ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count,
                                  InstanceType="m1.small", SecurityGroups=[group])
    return [i["InstanceId"] for i in ran["Instances"]]


def _plug(world: World, name: str, instance_id: str) -> str:
    """Plug the stand-in for `instance_id` where the NC put its guest: its network's bridge on
    the node, once the NC has built it (before the domain starts)."""
    lease = wait_for(lambda: next((lease for lease in world.plan().leases
                                   if lease.instance_id == instance_id and lease.node), None),
                     timeout=30, what=f"{instance_id} placed in the CC's plan")
    bridge = f"eucabr{lease.vlan}"
    wait_for(lambda: world.net.run("node", "ip", "link", "show", bridge, check=False).returncode == 0,
             timeout=30, what=f"{bridge} on the node")
    return world.net.plug_instance(name, lease.mac, bridge)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("netcloud")
    net = NetLab.for_this_process("ncl", root)
    services: list[launcher.RunningService] = []
    try:
        net.build()
        net.step_into("fe")
        home = root / "home"
        env = _settings(home)
        config = launcher.ensure_home(load_config(**env))
        specs = [launcher.ServiceSpec("clc", "clc.app:create_app", 8773, env=dict(env), public=True),
                 launcher.ServiceSpec("walrus", "walrus.app:create_app", 8777, env=dict(env), public=True),
                 launcher.ServiceSpec("sc", "sc.app:create_app", 8776, env=dict(env)),
                 launcher.ServiceSpec("nc", "nc.app:create_app", NC_PORT, prefix=net.enter("node"),
                                      env={**env, "PUBLIC_HOST": NODE_WIRE, "VNET_LOCALIP": NODE_WIRE}),
                 _cc_spec(env)]
        services = launcher.start(config, specs, timeout=90)
        cloud = Cloud(home=home, config=config, services=services, admin=credentials.read(home).key)
        wait_for(lambda: any(n.state == "up" for n in cloud.nodes().nodes), timeout=30, what="the node up")
        world = World(net, cloud, env)
        ec2 = world.ec2
        for name in ("web", "db"):
            world.groups[name] = ec2.create_security_group(GroupName=name, Description=name)["GroupId"]
        image = cloud.register_image()
        launched = dict(zip(("ia", "ib"), _instances(world, "web", 2, image), strict=True))
        launched["ic"] = _instances(world, "db", 1, image)[0]
        world.ids = launched
        ec2.get_waiter("instance_running").wait(InstanceIds=list(launched.values()), WaiterConfig=FAST)
        described = {i["InstanceId"]: i for r in ec2.describe_instances(
            InstanceIds=list(launched.values()))["Reservations"] for i in r["Instances"]}
        for name, instance_id in launched.items():
            world.private[name] = _plug(world, name, instance_id)
            # DHCP gave each stand-in exactly the address the CLC allocated and EC2 shows.
            assert world.private[name] == described[instance_id]["PrivateIpAddress"]
            net.serve_tcp(name, world.private[name], 80, f"web {name}")
            net.serve_tcp(name, world.private[name], 22, f"ssh {name}")
        net.serve_tcp("inet", INET_ADDRESS, 8080, "internet")
        yield world
    except Exception:  # only the setup's: pytest throws nothing into the generator
        _show_logs(root / "home" / "logs")  # printed with the error
        raise
    finally:
        try:
            net.step_out()
            launcher.stop(services)
        finally:
            net.close()  # takes the CC's dnsmasq, rules, bridges and every stand-in with it


def _show_logs(logs: Path) -> None:
    for log in sorted(logs.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        print(f"--- {log.name} (last 60 lines)", *lines[-60:], sep="\n")


def _eventually(check: Any, what: str) -> None:
    """The CLC sends the intent after its commit and the CC applies it: a change is in force a
    moment after the call that made it returns."""
    wait_for(check, timeout=20, what=what, every=0.2)


def test_one_group_talks_within_itself_and_another_group_only_on_what_a_rule_opens(world: World) -> None:
    net, ia = world.net, world.private["ia"]
    world.check_live_traffic()
    assert net.connect("ic", ia, 80) is None
    assert not net.ping("ic", ia)
    permission = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                  "UserIdGroupPairs": [{"GroupId": world.groups["db"]}]}
    asked = world.ec2.authorize_security_group_ingress(GroupId=world.groups["web"], IpPermissions=[permission])
    _eventually(lambda: net.connect("ic", ia, 80) == f"web ia {world.private['ic']}",
                "ic reaching ia:80 once web admits db")
    # The request's trace shows the rule the CC added for it (what `eucasim trace` prints).
    db_cidr = next(n.cidr for n in world.plan().networks if n.group_id == world.groups["db"])
    steps, _ = gather(world.cloud.config, asked["ResponseMetadata"]["RequestId"])
    added = [rule for step in steps if step.service == "cc" for rule in step.detail.get("rules", [])]
    assert added == [f"+ -A EU-{world.groups['web']} -s {db_cidr} -p tcp -m tcp --dport 80 -j ACCEPT"]
    assert net.connect("ic", ia, 22) is None
    assert not net.ping("ic", ia)
    world.ec2.revoke_security_group_ingress(GroupId=world.groups["web"], IpPermissions=[permission])
    _eventually(lambda: net.connect("ic", ia, 80) is None, "ic cut from ia:80 once revoked")
    world.check_live_traffic()


def test_a_cidr_rule_and_an_elastic_ip_reach_the_instance_from_the_internet(world: World) -> None:
    net, ec2 = world.net, world.ec2
    ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    dynamic = world.public_ip("ia")
    assert dynamic is not None  # dynamic public addressing: every instance has one at launch
    assert net.connect("inet", dynamic, 22) is None
    ec2.authorize_security_group_ingress(GroupId=world.groups["web"], IpPermissions=[ssh])
    try:
        _eventually(lambda: net.connect("inet", dynamic, 22) == f"ssh ia {INET_ADDRESS}",
                    "the internet reaching ia:22 at its dynamic address")
        assert net.connect("inet", dynamic, 80) is None  # no rule for 80
        allocated = ec2.allocate_address(Domain="standard")
        elastic = allocated["PublicIp"]
        ec2.associate_address(InstanceId=world.ids["ia"], PublicIp=elastic)
        _eventually(lambda: net.connect("inet", elastic, 22) == f"ssh ia {INET_ADDRESS}",
                    "the internet reaching ia:22 at its elastic IP (DNAT)")
        assert world.public_ip("ia") == elastic
        assert net.connect("inet", dynamic, 22) is None  # the dynamic address went back to the pool
        assert net.connect("ia", INET_ADDRESS, 8080) == f"internet {elastic}"  # SNAT
        ib_public = world.public_ip("ib")
        assert net.connect("ib", INET_ADDRESS, 8080) == f"internet {ib_public}"
        # Moved to ib and back: the DNAT follows the association.
        ec2.associate_address(InstanceId=world.ids["ib"], PublicIp=elastic, AllowReassociation=True)
        _eventually(lambda: net.connect("inet", elastic, 22) == f"ssh ib {INET_ADDRESS}",
                    "the elastic IP reaching ib once reassociated")
        _eventually(lambda: net.connect("ib", INET_ADDRESS, 8080) == f"internet {elastic}", "ib leaving with it")
        ec2.associate_address(InstanceId=world.ids["ia"], PublicIp=elastic, AllowReassociation=True)
        _eventually(lambda: net.connect("inet", elastic, 22) == f"ssh ia {INET_ADDRESS}",
                    "the elastic IP reaching ia again")
        ec2.disassociate_address(PublicIp=elastic)
        _eventually(lambda: net.connect("inet", elastic, 22) is None,
                    "the elastic IP no longer reaching ia once disassociated")
        renewed = wait_for(lambda: world.public_ip("ia"), what="ia's new dynamic address")
        assert renewed != elastic
        _eventually(lambda: net.connect("ia", INET_ADDRESS, 8080) == f"internet {renewed}",
                    "ia leaving with its new dynamic address")
        ec2.release_address(PublicIp=elastic)
    finally:
        ec2.revoke_security_group_ingress(GroupId=world.groups["web"], IpPermissions=[ssh])
    _eventually(lambda: net.connect("inet", world.public_ip("ia") or "", 22) is None,
                "ia:22 shut to the internet again")


def test_an_instance_reads_its_own_metadata_by_its_source_address_and_no_other(world: World) -> None:
    net = world.net
    for name in ("ia", "ic"):
        assert net.http_get(name, METADATA) == (200, world.ids[name])
    # The simulated mode's header that names an instance means nothing to a real caller...
    assert net.http_get("ib", METADATA, {"X-Eucasim-Instance-Id": world.ids["ia"]}) == (200, world.ids["ib"])
    # ...and ia's IMDSv2 token is good for ia only.
    token = net.run("ia", "python3", "-c", (
        "import urllib.request; r = urllib.request.Request('http://169.254.169.254/latest/api/token', "
        "method='PUT', headers={'X-aws-ec2-metadata-token-ttl-seconds': '60'}); "
        "print(urllib.request.urlopen(r, timeout=3).read().decode())")).stdout.strip()
    assert net.http_get("ia", METADATA, {"X-aws-ec2-metadata-token": token}) == (200, world.ids["ia"])
    refused = net.http_get("ib", METADATA, {"X-aws-ec2-metadata-token": token})
    assert refused is not None and refused[0] == 401


def test_after_a_cc_restart_the_rules_are_exactly_the_plans(world: World) -> None:
    net, ec2, ia = world.net, world.ec2, world.private["ia"]
    before = assert_rules_are_the_plans(world)
    permission = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                  "UserIdGroupPairs": [{"GroupId": world.groups["db"]}]}
    ec2.authorize_security_group_ingress(GroupId=world.groups["web"], IpPermissions=[permission])
    _eventually(lambda: net.connect("ic", ia, 80) is not None, "ic reaching ia:80 before the restart")
    # Revoked while the CC is down: the rule it applied is stale when it comes back.
    world.restart_cc(while_away=lambda: ec2.revoke_security_group_ingress(
        GroupId=world.groups["web"], IpPermissions=[permission]))
    # The restarted CC knows no plan until the CLC's next round sends the intent.
    plan = wait_for(lambda: (p := world.plan()).leases and p, timeout=30, what="the CLC's intent at the new CC")
    assert plan.iptables == before.iptables and plan.leases == before.leases
    after = assert_rules_are_the_plans(world)
    assert net.connect("ic", ia, 80) is None
    world.check_live_traffic()
    assert world.net.http_get("ib", METADATA) == (200, world.ids["ib"])
    # What the operator reads is the same plan (COLUMNS: rich wraps nothing).
    shown = subprocess.run([str(Path(sys.executable).parent / "eucasim"), "network", "show"],
                           env={**world.env, "CC_PORT": "8774", "COLUMNS": "400"},
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    printed = set(shown.stdout.splitlines())
    assert [line for line in after.iptables.splitlines() if line.startswith("-A ") and line not in printed] == []


def test_a_terminated_instances_address_goes_by_dhcp_to_the_next_instance(world: World) -> None:
    """The CLC gives the lowest free address, so the next instance of web gets ib's: it must
    get it from dnsmasq too, whatever lease ib's MAC left there."""
    net, ec2 = world.net, world.ec2
    old = world.ids["ib"]
    ec2.terminate_instances(InstanceIds=[old])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[old], WaiterConfig=FAST)
    net.unplug("ib")
    image = ec2.describe_instances(InstanceIds=[old])["Reservations"][0]["Instances"][0]["ImageId"]
    new = _instances(world, "web", 1, image)[0]
    ec2.get_waiter("instance_running").wait(InstanceIds=[new], WaiterConfig=FAST)
    address = ec2.describe_instances(InstanceIds=[new])["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
    assert address == world.private["ib"]
    world.ids["ib"] = new
    assert _plug(world, "ib", new) == address
    net.serve_tcp("ib", address, 80, "web ib")
    net.serve_tcp("ib", address, 22, "ssh ib")
    world.check_live_traffic()
    assert net.http_get("ib", METADATA) == (200, new)


def test_a_deleted_group_leaves_no_rule_bridge_or_dnsmasq(world: World) -> None:
    net, ec2 = world.net, world.ec2
    db_network = next(n for n in world.plan().networks if n.group_id == world.groups["db"])
    ec2.terminate_instances(InstanceIds=[world.ids["ic"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[world.ids["ic"]], WaiterConfig=FAST)
    ec2.delete_security_group(GroupId=world.groups["db"])
    wait_for(lambda: all(n.group_id != world.groups["db"] for n in world.plan().networks),
             timeout=30, what="the db network gone from the plan")
    plan = assert_rules_are_the_plans(world)
    assert not any(world.groups["db"] in line or db_network.cidr in line for line in world.our_rules())
    assert db_network.bridge not in plan.dnsmasq
    links = net.run("fe", "ip", "-o", "link").stdout
    assert f"{db_network.bridge}:" not in links and f"{db_network.device}@" not in links
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [p for p in processes.splitlines() if "dnsmasq" in p and f"dnsmasq-{db_network.bridge}." in p
                and str(world.cloud.home) in p]
    assert net.connect("ic", world.private["ia"], 80) is None
    world.check_live_traffic()
