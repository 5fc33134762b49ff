"""Bad input on the EC2 side: hypothesis writes requests for every action the CLC implements
from botocore's own input shapes, then breaks them on the wire (wrong types, out of range, too
long, missing, repeated and unknown parameters, bytes that are not UTF-8). Over 10,000 signed
requests against one real cloud: no answer is a 5xx, every answer is a well-formed EC2
success or error, and a batch of requests that were all refused changes nothing any Describe
shows."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.ec2query import model
from tests.hardening.ec2_fuzz import NS, Known, Signer, check_answer, requests
from tests.support.cloud import Cloud, running_cloud

pytestmark = pytest.mark.timeout(900)

import clc.app  # noqa: E402,F401 (registers every action)
from clc.api.registry import implemented_actions  # noqa: E402

ACTIONS = sorted(implemented_actions())
BATCH = 25
EXAMPLES = 8  # 52 actions x 8 batches x 25 requests = 10,400 requests
SENT: Counter[str] = Counter()

# What a Describe shows that moves on by itself (a launch becoming running, a volume
# available, a terminated instance dropping its address): left out of the comparison.
VOLATILE = {"requestId", "instanceState", "state", "status", "progress", "stateReason", "reason",
            "dnsName", "privateDnsName", "ipAddress", "privateIpAddress", "attachmentSet",
            "attachTime", "instanceStatus", "systemStatus", "volumeStatus", "startTime",
            "publicIp", "instanceId", "associationId", "networkInterfaceId", "privateIpAddress",
            "blockDeviceMapping", "launchTime", "stateMessage"}
TRANSITIONAL = re.compile(rb"<(name|status|state)>(pending|shutting-down|stopping|creating|deleting|"
                          rb"attaching|detaching|in-use-pending)</\1>")
SNAPSHOT_CALLS = [("DescribeInstances", {}), ("DescribeImages", {"Owner.1": "self"}),
                  ("DescribeKeyPairs", {}), ("DescribeSecurityGroups", {}),
                  ("DescribeVolumes", {}), ("DescribeSnapshots", {"Owner.1": "self"}),
                  ("DescribeAddresses", {}), ("DescribeTags", {}),
                  ("DescribeImages", {"ExecutableBy.1": "all"})]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("fuzz"), nodes=1, MAX_CORES=2,
                       VNET_PUBLICIPS="10.98.0.1-10.98.0.20") as c:
        yield c


@pytest.fixture(scope="module")
def known(cloud: Cloud) -> Known:
    """Resources of every kind, so that generated values sometimes name a real one."""
    ec2 = cloud.ec2()
    image = cloud.register_image()
    group = ec2.create_security_group(GroupName="fuzzed", Description="fuzz target")["GroupId"]
    ec2.create_key_pair(KeyName="fuzz-key")
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName="fuzz-key",
                                 SecurityGroupIds=[group])["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance],
                                            WaiterConfig={"Delay": 0.5, "MaxAttempts": 60})
    volume = ec2.create_volume(Size=1, AvailabilityZone="zone-1")["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume],
                                            WaiterConfig={"Delay": 0.5, "MaxAttempts": 60})
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    address = ec2.allocate_address()
    ec2.create_tags(Resources=[instance, volume], Tags=[{"Key": "fuzz", "Value": "target"}])
    return Known((image, group, "fuzzed", "fuzz-key", instance, volume, snapshot,
                  address["PublicIp"], address.get("AllocationId") or "eipalloc-0", "zone-1",
                  "eucalyptus", "m1.small", "default", cloud.admin.account_id, "self", "all",
                  "launchPermission", "kernel", "ramdisk", "description", "instanceType",
                  "userData", "createVolumePermission", "/dev/sdf", "/dev/vdb", "tcp", "udp",
                  "icmp", "-1", "0.0.0.0/0", "10.0.0.0/33", "fuzz", "target"))


@pytest.fixture(scope="module")
def signer(cloud: Cloud) -> Iterator[Signer]:
    client = Signer(cloud.clc_url, cloud.admin.access_key, cloud.admin.secret_key,
                    cloud.config.REGION)
    yield client
    client.close()


def _strip(element: ElementTree.Element) -> None:
    for child in list(element):
        if child.tag.removeprefix(NS) in VOLATILE:
            element.remove(child)
        else:
            _strip(child)


def snapshot(signer: Signer) -> tuple[list[bytes], bytes]:
    """What the Describe actions show, less what moves by itself; and their raw bodies."""
    shown, raw = [], b""
    for action, params in SNAPSHOT_CALLS:
        response = signer.call(action, **params)
        assert response.status_code == 200, response.text
        raw += response.content
        root = ElementTree.fromstring(response.content)
        _strip(root)
        shown.append(ElementTree.canonicalize(ElementTree.tostring(root)).encode())
    return shown, raw


@pytest.mark.parametrize("action", ACTIONS)
def test_fuzzed_requests_get_well_formed_answers_and_refusals_change_nothing(
        action: str, signer: Signer, known: Known):
    shown, raw = snapshot(signer)
    baseline = {"shown": shown, "moving": bool(TRANSITIONAL.search(raw))}

    # No shrinking: a failing batch is reported as sent (shrinking 25 nested requests against
    # a live cloud takes minutes); the assertion names the request that failed.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.lists(requests(action, known), min_size=BATCH, max_size=BATCH))
    def batch(wires: list) -> None:  # noqa: ANN001
        accepted = []
        for wire in wires:
            response = signer.send(wire)
            SENT[action] += 1
            if check_answer(wire, response):
                accepted.append(wire)
        shown, raw = snapshot(signer)
        moving = bool(TRANSITIONAL.search(raw))
        if accepted or baseline["moving"] or moving:
            # Something was accepted, or is still settling: this is the new baseline.
            baseline.update(shown=shown, moving=moving)
            return
        changed = [name for (name, _), before, after in
                   zip(SNAPSHOT_CALLS, baseline["shown"], shown) if before != after]
        assert not changed, (f"{action}: a batch of refused requests changed {changed}: "
                             f"{[(w.what, w.pairs[:6]) for w in wires]}")

    batch()
    assert SENT[action] >= EXAMPLES * BATCH


def test_the_run_sends_at_least_ten_thousand_signed_requests():
    """Every action's test sends EXAMPLES batches of BATCH (each asserts its own count), so the
    whole run sends at least this many; the actions that ran here sent their share."""
    assert len(ACTIONS) * EXAMPLES * BATCH >= 10_000
    assert all(sent >= EXAMPLES * BATCH for sent in SENT.values()), SENT
    assert model.api_version()
