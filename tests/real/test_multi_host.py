"""A zone with node controllers on several hosts (issue 17, "PostgreSQL and many hosts").

Each host is a network namespace with its own address on the front end's bridge:

    front end (fe): CLC · Walrus · SC · CC, br0 10.77.0.1/24 ─┬─ veth ─ host 1 (NC) 10.77.0.11
                                                              ├─ veth ─ host 2 (NC) 10.77.0.12
                                                              └─ veth ─ host 3 (NC) 10.77.0.13, later

Every service keeps its state in the session's PostgreSQL (reached through its socket
directory, which no network namespace hides); each NC host has databases of its own. An NC is
started as an operator starts one on a node (`eucasim nc`, with the node's eucalyptus.conf keys
in its environment: its own PUBLIC_HOST and BIND_ADDRESS, the front end's URLs) and joins with
`eucasim node register`. The test's thread works from the front end (NetLab.step_into), as an
operator's shell there; nothing is added to the machine's own namespace, so the addresses are
the same in every worker and the namespace names carry this process's id.

Each NC host has room for two m1.small instances: four fill the first two hosts, so the one
launched right after the third host registers can only go there; the CC's polling period is
long enough (POLLING) that only the registration and the pushes can have told the CLC of it.
The zone is made once for the module and the tests run in order over it, as a session would:
the third host joins in the third test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from services import credentials, launcher
from services.cli import app
from services.config import load_config
from services.messages.admin import ServiceList
from tests.real.netlab import NetLab
from tests.support.cloud import SECRET, Cloud
from tests.support.postgres import PostgresServer
from tests.support.waiting import wait_for

FRONT = "10.77.0.1"
NC_PORT = 8775
POLLING = 30  # seconds: longer than the test waits for anything that a push must bring
HOST_CORES = 2  # two m1.small (1 core each) per host
FAST = {"Delay": 1, "MaxAttempts": 60}
REPO = Path(__file__).resolve().parents[2]


def host_address(n: int) -> str:
    return f"10.77.0.{10 + n}"


def host_url(n: int) -> str:
    return f"http://{host_address(n)}:{NC_PORT}"


class HostLab(NetLab):
    """The front end's namespace with a bridge, and one namespace per NC host on it."""

    def build_front(self) -> HostLab:
        self.add_namespace("fe")
        self.run("fe", "ip", "link", "add", "br0", "type", "bridge")
        self.run("fe", "ip", "addr", "add", f"{FRONT}/24", "dev", "br0")
        self.run("fe", "ip", "link", "set", "br0", "up")
        return self

    def add_host(self, n: int) -> None:
        role = f"host{n}"
        self.add_namespace(role)
        # The veth is made inside the two namespaces (its temporary names carry the tag too).
        self._pair(f"h{n}", self.ns("fe"), f"h{n}", self.ns(role), "eth0")
        self.run("fe", "ip", "link", "set", f"h{n}", "master", "br0", "up")
        self.run(role, "ip", "addr", "add", f"{host_address(n)}/24", "dev", "eth0")


@dataclass
class NodeHosts:
    """The NC processes, one per host: each `eucasim nc` as an operator starts it on a node,
    configured as deploy/node.conf.example configures one (its own PUBLIC_HOST and
    BIND_ADDRESS, the front end's URLs, the cloud's secret) in its host's namespace."""
    net: HostLab
    root: Path
    pg: PostgresServer
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, n: int) -> None:
        home = self.root / f"host{n}"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NC_", "MAX_", "EUCASIM_"))}
        env.update({
            "EUCASIM_HOME": str(home), "CLOUD_SECRET": SECRET, "PYTHONPATH": str(REPO),
            "PUBLIC_HOST": host_address(n), "BIND_ADDRESS": host_address(n), "NC_PORT": str(NC_PORT),
            "CLC_URL": f"http://{FRONT}:8773", "WALRUS_URL": f"http://{FRONT}:8777",
            "SC_URL": f"http://{FRONT}:8776", "CC_URL": f"http://{FRONT}:8774",
            "HYPERVISOR_URI": "test:///default", "NC_POLLING_FREQUENCY": str(POLLING),
            "MAX_CORES": str(HOST_CORES), "MAX_MEM": "4096", "MAX_DISK": "100",
            "DATABASE_URL": database_url(self.pg, f"{self.net.tag}_host{n}")})
        with open(home / "nc.log", "ab") as log:
            self.processes[n] = subprocess.Popen(
                [*self.net.enter(f"host{n}"), sys.executable, "-m", "services.cli", "nc"],
                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, n: int) -> None:
        """Until host n's NC answers, asked from the front end across the bridge: on its
        host's address, not the machine's loopback."""
        process = self.processes[n]
        wait_for(lambda: process.poll() is not None or _answers(f"{host_url(n)}/internal/health"),
                 timeout=60, what=f"the NC on host {n}")
        assert process.poll() is None, (self.root / f"host{n}" / "nc.log").read_text(errors="replace")

    def terminate(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()

    def stop(self) -> None:
        self.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Zone:
    hosts: NodeHosts
    cloud: Cloud
    env: dict[str, str]
    image: str = ""

    @property
    def ec2(self) -> Any:
        return self.cloud.ec2()

    def join(self, n: int) -> None:
        """Host n on the bridge with its NC answering, and registered with the CC."""
        self.hosts.net.add_host(n)
        self.hosts.spawn(n)
        self.hosts.wait(n)
        self.register(n)

    def eucasim(self, *args: str) -> Any:
        """The `eucasim` command as the operator on the front end runs it."""
        return CliRunner().invoke(app, [*args, "--home", str(self.cloud.home)], env=self.env)

    def register(self, n: int) -> None:
        result = self.eucasim("node", "register", host_url(n))
        assert result.exit_code == 0, result.output
        assert f"registered {host_url(n)}" in result.output

    def launch(self, count: int) -> list[str]:
        ran = self.ec2.run_instances(ImageId=self.image, MinCount=count, MaxCount=count,
                                     InstanceType="m1.small")
        return [i["InstanceId"] for i in ran["Instances"]]

    def running_on(self, ids: list[str]) -> dict[str, str]:
        """{instance id: the host address of its node}, once every one is running."""
        self.ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
        nodes = {n.name: n.url for n in self.cloud.nodes().nodes}
        placed = self.cloud.nodes_of(ids)
        return {i: httpx.URL(nodes[placed[i]]).host for i in ids}

def database_url(pg: PostgresServer, prefix: str) -> str:
    """DATABASE_URL for one host's services, through PostgreSQL's socket directory (a file,
    which every network namespace sees; its TCP port is on the machine's own 127.0.0.1)."""
    return f"postgresql://eucasim@/{prefix}_{{service}}?host={pg.socket_dir}&port={pg.port}"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _settings(home: Path, database_url: str) -> dict[str, str]:
    """The front end's eucalyptus.conf keys: fixed ports (the namespace is new), no NODES (the
    hosts join by registering), a polling period longer than the test's waits."""
    return {
        "EUCASIM_HOME": str(home), "CLOUD_SECRET": SECRET, "PUBLIC_HOST": FRONT,
        "BIND_ADDRESS": FRONT, "NODES": "", "NC_PORT": str(NC_PORT),
        "NC_POLLING_FREQUENCY": str(POLLING), "SCHEDPOLICY": "ROUNDROBIN",
        "DATABASE_URL": database_url}


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> Iterator[Zone]:
    root = tmp_path_factory.mktemp("multihost")
    net = HostLab.for_this_process("mh", root)
    hosts = NodeHosts(net, root, postgres)
    services: list[launcher.RunningService] = []
    try:
        net.build_front()
        for n in (1, 2):
            net.add_host(n)
            hosts.spawn(n)  # they start while the front end does
        net.step_into("fe")
        home = root / "fe"
        env = _settings(home, database_url(postgres, net.tag))
        config = launcher.ensure_home(load_config(**env))
        specs = [launcher.ServiceSpec("clc", "clc.app:create_app", 8773, env=dict(env), public=True),
                 launcher.ServiceSpec("walrus", "walrus.app:create_app", 8777, env=dict(env), public=True),
                 launcher.ServiceSpec("sc", "sc.app:create_app", 8776, env=dict(env)),
                 launcher.ServiceSpec("cc", "cc.app:create_app", 8774, env=dict(env))]
        launcher.start(config, specs, timeout=90, started=services)
        cloud = Cloud(home=home, config=config, services=services, admin=credentials.read(home).key)
        made = Zone(hosts, cloud, env)
        for n in (1, 2):
            hosts.wait(n)
            made.register(n)
        made.image = cloud.register_image()
        yield made
    except Exception:  # only the setup's: pytest throws nothing into the generator
        _show_logs(root)  # printed with the error
        raise
    finally:
        try:
            net.step_out()
            hosts.terminate()  # they stop while the front end does
            launcher.stop(services)
            hosts.stop()
        finally:
            net.close()  # every namespace, and with them the veths and anything left inside


def _show_logs(root: Path) -> None:
    for log in sorted([*root.glob("fe/logs/*.log"), *root.glob("host*/nc.log")]):
        lines = log.read_text(errors="replace").splitlines()
        print(f"--- {log.relative_to(root)} (last 40 lines)", *lines[-40:], sep="\n")


def test_every_service_keeps_its_state_in_postgresql(zone: Zone) -> None:
    tag, pg = zone.hosts.net.tag, zone.hosts.pg
    # Through the socket directory: the test's thread is in the front end, where PostgreSQL's
    # TCP port (the machine's 127.0.0.1) is not.
    with psycopg.connect(host=str(pg.socket_dir), port=pg.port, user="eucasim",
                         dbname="postgres") as connection:
        databases = {str(row[0]) for row in connection.execute("SELECT datname FROM pg_database")}
    assert {f"{tag}_{s}" for s in ("clc", "walrus", "sc", "cc")} <= databases
    assert {f"{tag}_host1_nc", f"{tag}_host2_nc"} <= databases
    assert not list(zone.cloud.home.glob("*.db")), "a front-end service fell back to SQLite"


def test_instances_run_on_both_hosts(zone: Zone) -> None:
    nodes = zone.cloud.nodes().nodes
    assert sorted(n.url for n in nodes) == [host_url(1), host_url(2)]
    assert {n.state for n in nodes} == {"up"}
    # Each NC names itself after its host's address: the CC's view comes from the hosts.
    assert sorted(n.name for n in nodes) == [f"{host_address(1)}:{NC_PORT}", f"{host_address(2)}:{NC_PORT}"]
    ids = zone.launch(2 * HOST_CORES)
    hosts = zone.running_on(ids)
    assert sorted(hosts.values()) == sorted([host_address(1)] * HOST_CORES + [host_address(2)] * HOST_CORES)
    described = zone.ec2.describe_instances(InstanceIds=ids)["Reservations"]
    assert {i["State"]["Name"] for r in described for i in r["Instances"]} == {"running"}
    # The zone is full now.
    with pytest.raises(ClientError) as refused:
        zone.launch(1)
    assert refused.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"


def test_a_host_that_joins_later_is_used_at_once(zone: Zone) -> None:
    zone.join(3)
    # At once, with no wait for a poll round (POLLING); the other hosts are full.
    [instance] = zone.launch(1)
    assert zone.running_on([instance]) == {instance: host_address(3)}


def test_describe_services_lists_every_host(zone: Zone) -> None:
    result = zone.eucasim("describe-services", "--json")
    assert result.exit_code == 0, result.output
    services = ServiceList.model_validate(json.loads(result.stdout)).services
    nodes = [s for s in services if s.type == "node"]
    assert sorted(s.host for s in nodes) == [host_address(n) for n in (1, 2, 3)]
    assert {s.state for s in nodes} == {"ENABLED"}
    assert {s.host for s in services if s.type != "node"} == {FRONT}
    table = zone.eucasim("describe-services")
    assert all(host_address(n) in table.output for n in (1, 2, 3))
