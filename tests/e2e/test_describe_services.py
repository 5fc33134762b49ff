"""`eucasim describe-services` and the CLC's admin route against the cloud as `make up` starts
it: every service ENABLED with its zone and host; properties applied without a restart
(`cluster.scheduling_policy` decides where the very next instance lands,
`cloud.network.public_ips` is the pool AllocateAddress takes from at once; the rest of the
properties are tested in tests/clc/test_properties.py); then, as an operator would find them, the
node controllers stopped (nodes BROKEN, the zone's CC NOTREADY for want of a node), the SC
stopped (BROKEN) and finally the CLC itself (the command still answers, showing it BROKEN)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.messages.admin import (ADMIN_SERVICES_ROUTE, NewValue, PropertyView, ServiceList,
                                     ServiceStatus)
from tests.support.cloud import Cloud, running_cloud
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("services"), nodes=2,
                       VNET_PUBLICIPS="10.79.0.1-10.79.0.8") as c:
        yield c


def listed(cloud: Cloud) -> dict[str, ServiceStatus]:
    client = cloud.internal("clc")
    try:
        return {s.name: s for s in client.call("GET", ADMIN_SERVICES_ROUTE, None, ServiceList).services}
    finally:
        client.close()


def cli(cloud: Cloud) -> tuple[int, dict[str, ServiceStatus]]:
    result = CliRunner().invoke(app, ["describe-services", "--json", "--home", str(cloud.home)],
                                env={"CLOUD_SECRET": cloud.config.CLOUD_SECRET,
                                     **{f"{s.upper()}_PORT": str(getattr(cloud.config, f"{s.upper()}_PORT"))
                                        for s in ("clc", "walrus", "sc", "cc", "nc")}})
    found = ServiceList.model_validate(json.loads(result.stdout)).services
    return result.exit_code, {s.name: s for s in found}


def stop(cloud: Cloud, name: str) -> None:
    service = next(s for s in cloud.services if s.spec.name == name)
    service.process.send_signal(signal.SIGTERM)
    service.process.wait(timeout=30)


def test_every_service_is_enabled_with_its_zone_and_host(cloud: Cloud) -> None:
    services = listed(cloud)
    zone = cloud.config.zones[0]
    assert sorted((s.type, s.zone) for s in services.values()) == sorted(
        [("eucalyptus", cloud.config.REGION), ("walrus", cloud.config.REGION),
         ("cluster", zone), ("storage", zone), ("node", zone), ("node", zone)])
    assert {s.state for s in services.values()} == {"ENABLED"}
    assert {s.host for s in services.values()} == {"127.0.0.1"}
    assert services[f"sc-{zone}"].url == cloud.config.service_url("sc")
    code, shown = cli(cloud)
    assert code == 0 and shown == services


def set_property(cloud: Cloud, name: str, value: str) -> None:
    client = cloud.internal("clc")
    try:
        client.call("PUT", f"/internal/admin/properties/{name}", NewValue(value=value), PropertyView)
    finally:
        client.close()


def test_public_ips_is_the_pool_allocate_address_takes_from(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    set_property(cloud, "cloud.network.public_ips", "10.80.0.7")
    address = ec2.allocate_address()
    assert address["PublicIp"] == "10.80.0.7"
    ec2.release_address(AllocationId=address["AllocationId"])
    set_property(cloud, "cloud.network.public_ips", "10.79.0.1-10.79.0.8")


def test_scheduling_policy_decides_where_the_next_instance_lands(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    image = cloud.register_image()

    def launch() -> str:
        [instance] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                       InstanceType="m1.small")["Instances"]
        instance_id = instance["InstanceId"]
        # The CLC answers before the CC places it: wait for the CC's word on its node.
        return wait_for(lambda: cloud.nodes_of([instance_id]).get(instance_id), 60,
                        f"{instance_id} placed on a node")

    set_property(cloud, "cluster.scheduling_policy", "GREEDY")
    greedy = [launch(), launch()]
    assert greedy[0] == greedy[1], greedy          # GREEDY fills the first node with room
    set_property(cloud, "cluster.scheduling_policy", "ROUNDROBIN")
    round_robin = [launch(), launch()]
    assert round_robin[0] != round_robin[1], round_robin


def test_stopped_node_controllers_are_broken_and_their_zone_not_ready(cloud: Cloud) -> None:
    zone = cloud.config.zones[0]
    stop(cloud, "nc")
    services = wait_for(lambda: (s := listed(cloud))[f"cc-{zone}"].state == "NOTREADY" and s,
                        60, "the CC NOTREADY once its nodes are down")
    assert services[f"cc-{zone}"].reason == "no node controller is up"
    nodes = [s for s in services.values() if s.type == "node"]
    assert len(nodes) == 2 and {n.state for n in nodes} == {"BROKEN"}
    assert all("not answering" in n.reason for n in nodes)
    assert services["walrus"].state == "ENABLED"


def test_a_stopped_storage_controller_is_broken(cloud: Cloud) -> None:
    zone = cloud.config.zones[0]
    stop(cloud, "sc")
    sc = listed(cloud)[f"sc-{zone}"]
    assert sc.state == "BROKEN" and cloud.config.service_url("sc") in sc.reason
    code, shown = cli(cloud)
    assert code == 1 and shown[f"sc-{zone}"].state == "BROKEN"


def test_without_the_clc_the_command_asks_each_service_itself(cloud: Cloud) -> None:
    stop(cloud, "clc")
    code, shown = cli(cloud)
    assert code == 1
    assert shown["clc"].state == "BROKEN" and "not answering" in shown["clc"].reason
    assert shown["walrus"].state == "ENABLED"
