"""The zone's network follows the API, in simulated mode (the `plan` driver): launching puts
the group's network and the instance's lease in the CC's plan, AuthorizeSecurityGroupIngress
adds its rule (and the rule appears in that request's trace on the CC), an elastic IP adds its
DNAT/SNAT, terminating frees it all; `eucasim network show` prints it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from services.cli import app as cli
from services.messages.network import CC_NETWORK_ROUTE, NetworkPlanView
from services.tracing import Trace
from tests.support.cloud import Cloud, running_cloud, wait_until

FAST = {"Delay": 0.5, "MaxAttempts": 60}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("cloud"), nodes=1,
                       VNET_PUBLICIPS="10.111.200.1-10.111.200.9") as c:
        yield c


def plan(cloud: Cloud) -> NetworkPlanView:
    client = cloud.internal("cc")
    try:
        return client.call("GET", CC_NETWORK_ROUTE, response=NetworkPlanView)
    finally:
        client.close()


def rules(cloud: Cloud) -> list[str]:
    return [line for line in plan(cloud).iptables.splitlines() if line.startswith("-A ")]


def test_the_plan_follows_launch_rules_addresses_and_termination(cloud: Cloud) -> None:
    ec2 = cloud.ec2()
    group = ec2.create_security_group(GroupName="net-web", Description="web")["GroupId"]
    image = cloud.register_image()
    [instance] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                   SecurityGroupIds=[group])["Instances"]
    instance_id = instance["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    wait_until(lambda: any(lease.instance_id == instance_id for lease in plan(cloud).leases),
               timeout=30, what="the instance's lease in the CC's plan")
    [network] = [n for n in plan(cloud).networks if n.group_id == group]
    assert network.group_name == "net-web" and instance_id in network.instances
    [lease] = [lease for lease in plan(cloud).leases if lease.instance_id == instance_id]
    assert lease.private_ip == described["PrivateIpAddress"]
    assert lease.public_ip == described["PublicIpAddress"]
    assert lease.node is not None

    authorized = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    rule = f"-A EU-{group} -s 0.0.0.0/0 -p tcp -m tcp --dport 22 -j ACCEPT"
    wait_until(lambda: rule in rules(cloud), timeout=30, what="the authorized rule in the plan")
    request_id = authorized["ResponseMetadata"]["RequestId"]
    client = cloud.internal("cc")
    try:
        steps = client.call("GET", f"/internal/trace/{request_id}", response=Trace).steps
    finally:
        client.close()
    assert any(f"+ {rule}" in step.detail.get("rules", []) for step in steps), steps

    address = ec2.allocate_address()
    ec2.associate_address(InstanceId=instance_id, AllocationId=address["AllocationId"])
    dnat = f"-A EUCA-PREROUTING -d {address['PublicIp']}/32 -j DNAT --to-destination {lease.private_ip}"
    wait_until(lambda: dnat in rules(cloud), timeout=30, what="the elastic IP's DNAT in the plan")
    assert f"-A EUCA-PREROUTING -d {lease.public_ip}/32 -j DNAT --to-destination {lease.private_ip}" not in rules(cloud)

    env = {name: str(getattr(cloud.config, name)) for name in
           ("CLC_PORT", "WALRUS_PORT", "SC_PORT", "CC_PORT", "NC_PORT", "CLOUD_SECRET")}
    shown = CliRunner().invoke(cli, ["network", "show", "--group", "net-web", "--home", str(cloud.home)],
                               env=env)
    assert shown.exit_code == 0, shown.output
    assert instance_id in shown.output and address["PublicIp"] in shown.output and "--dport 22" in shown.output

    ec2.terminate_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=FAST)
    wait_until(lambda: not any(n.group_id == group for n in plan(cloud).networks), timeout=30,
               what="the group's network freed")
    assert not any(group in line for line in rules(cloud))
    ec2.release_address(AllocationId=address["AllocationId"])
