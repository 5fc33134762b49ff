"""The NC's half of MANAGED networking (nc/node_network.py) in a namespace of its own: the
instances of one launch prepare their network in parallel threads, and every one of them must
find or make the same bridge and VXLAN end (a race once failed all but the first with EEXIST,
and their instances never booted)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator

import pytest

from tests.real.netlab import NetLab

PREPARE_TOGETHER = textwrap.dedent("""\
    import threading
    from nc.node_network import NodeNetwork
    from services.messages.node import InstanceNetwork
    node = NodeNetwork("10.9.0.2", "wire")
    failed = []
    start = threading.Barrier(6)
    def prepare():
        start.wait()
        try:
            node.prepare(InstanceNetwork(mac="d0:0d:00:00:00:01", bridge="eucabr2", vlan=2,
                                         tunnel_remote="10.9.0.1"))
        except Exception as error:
            failed.append(repr(error))
    threads = [threading.Thread(target=prepare) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(failed)
    """)


@pytest.fixture
def node(tmp_path) -> Iterator[NetLab]:  # type: ignore[no-untyped-def]
    lab = NetLab.for_this_process("nn", tmp_path)
    try:
        lab.add_namespace("node")
        lab.run("node", "ip", "link", "add", "wire", "type", "veth", "peer", "name", "wire2")
        lab.run("node", "ip", "addr", "add", "10.9.0.2/24", "dev", "wire")
        lab.run("node", "ip", "link", "set", "wire", "up")
        yield lab
    finally:
        lab.close()


@pytest.mark.parametrize("round_", range(3))
def test_instances_of_one_network_prepared_together_all_succeed(node: NetLab, round_: int) -> None:
    done = node.run("node", sys.executable, "-c", PREPARE_TOGETHER)
    assert done.stdout.strip() == "[]"
    links = node.run("node", "ip", "-o", "link", "show", "master", "eucabr2").stdout
    assert [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()] == ["vx2"]
    fdb = node.run("node", "bridge", "fdb", "show", "dev", "vx2").stdout
    assert fdb.count("dst 10.9.0.1") == 1


RELEASE = textwrap.dedent("""\
    from nc.node_network import NodeNetwork
    from services.messages.node import InstanceNetwork
    import subprocess
    node = NodeNetwork("10.9.0.2", "wire")
    net = InstanceNetwork(mac="d0:0d:00:00:00:01", bridge="eucabr3", vlan=3, tunnel_remote="10.9.0.1")
    def links():
        out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        return sorted(n for n in ("eucabr3", "vx3") if f" {n}:" in out or f" {n}@" in out)
    seen = {}
    node.prepare(net)
    seen["prepared, not started"] = (node.release(net), links())
    subprocess.run(["ip", "link", "add", "tap3", "type", "veth", "peer", "name", "tap3p"], check=True)
    subprocess.run(["ip", "link", "set", "tap3", "master", "eucabr3"], check=True)
    node.started(net)
    seen["a guest's tap in the bridge"] = (node.release(net), links())
    subprocess.run(["ip", "link", "del", "tap3"], check=True)
    seen["last guest gone"] = (node.release(net) is not None, links())
    print(repr(seen))
    """)


def test_a_networks_bridge_and_tunnel_go_with_its_last_guest_on_the_node(node: NetLab) -> None:
    done = node.run("node", sys.executable, "-c", RELEASE)
    seen = eval(done.stdout.strip())  # noqa: S307 - our own script's repr of a dict
    assert seen == {"prepared, not started": (None, ["eucabr3", "vx3"]),
                    "a guest's tap in the bridge": (None, ["eucabr3", "vx3"]),
                    "last guest gone": (True, [])}
