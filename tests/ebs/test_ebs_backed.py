"""EBS-backed instances end to end, with boto3 and the AWS CLI against the cloud as `make up`
starts it: volumes made and attached at launch from BlockDeviceMappings (and deleted or kept
at termination as DeleteOnTermination says), an image whose root is a snapshot, instances that
boot from a volume, stop and start again (with a new instance type, which the node's domain
shows), and CreateImage from such an instance. Every mistake gets EC2's code and changes
nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from services.cli_trace import gather
from services.messages.storage import SC_VOLUME_ROUTE, VolumeInfo
from tests.support.cloud import Cloud, running_cloud
from tests.support.volume_data import rbd_settings
from tests.support.waiting import wait_for

AWS = shutil.which("aws") or str(Path(sys.executable).parent / "aws")


@pytest.fixture(scope="module", params=["file", "rbd"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """Once on sparse files, once on RBD images (an EBS root from a snapshot still in the pool
    is then a clone, and the node defines the domain with an rbd network disk from the start)."""
    settings = rbd_settings(request.getfixturevalue("ceph")) if request.param == "rbd" else {}
    with running_cloud(tmp_path_factory.mktemp(f"ebs-boot-{request.param}"), nodes=2,
                       SC_MAX_STORAGE=200, **settings) as c:
        yield c


@pytest.fixture(scope="module")
def ec2(cloud: Cloud) -> Any:
    return cloud.ec2()


@pytest.fixture(scope="module")
def image(cloud: Cloud) -> str:
    return cloud.register_image()


@pytest.fixture(scope="module")
def snapshot(ec2: Any) -> str:
    """A completed snapshot of a fresh 2 GiB volume."""
    volume = ec2.create_volume(AvailabilityZone="zone-1", Size=2)["VolumeId"]
    wait_volume(ec2, volume, "available")
    snap = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    wait_for(lambda: ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["State"] == "completed",
             60, f"{snap} completed")
    return str(snap)


@pytest.fixture(scope="module")
def ebs_image(ec2: Any, snapshot: str) -> str:
    return str(ec2.register_image(
        Name="ebs-root-image", RootDeviceName="/dev/sda1", Architecture="x86_64",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot}}])["ImageId"])


# ----------------------------------------------------------------------------------- helpers

def code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def message(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Message"])


def instance(ec2: Any, instance_id: str) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def wait_instance(ec2: Any, instance_id: str, state: str, timeout: float = 60) -> dict:
    return wait_for(lambda: (i := instance(ec2, instance_id))["State"]["Name"] == state and i,
                    timeout, f"{instance_id} {state}")


def volume(ec2: Any, volume_id: str) -> dict:
    return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def wait_volume(ec2: Any, volume_id: str, state: str) -> dict:
    return wait_for(lambda: (v := volume(ec2, volume_id))["State"] == state and v, 60,
                    f"{volume_id} {state}")


def wait_volume_gone(ec2: Any, volume_id: str) -> None:
    def gone() -> bool:
        try:
            volume(ec2, volume_id)
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "InvalidVolume.NotFound"
        return False
    wait_for(gone, 60, f"{volume_id} deleted")


def mappings(ec2: Any, instance_id: str) -> dict[str, dict]:
    return {m["DeviceName"]: m["Ebs"] for m in instance(ec2, instance_id)["BlockDeviceMappings"]}


def counts(ec2: Any) -> tuple[int, int]:
    """Instances and volumes the account has (what a refused launch must leave as it was)."""
    live = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    return len(live), len(ec2.describe_volumes()["Volumes"])


def domain_xml(cloud: Cloud, request_id: str) -> ET.Element:
    """The domain the node defined for the request (the NC traces what it gave libvirt)."""
    def defined() -> str | None:
        steps, _ = gather(cloud.config, request_id)
        return next((str(s.detail["domain_xml"]) for s in reversed(steps)
                     if s.service == "nc" and "domain_xml" in s.detail), None)
    return ET.fromstring(wait_for(defined, 30, f"the domain defined for {request_id}"))


def disk_sources(domain: ET.Element) -> dict[str, str]:
    """target dev -> the file or export each disk reads."""
    found = {}
    for disk in domain.findall("./devices/disk"):
        source = disk.find("source")
        target = disk.find("target")
        assert source is not None and target is not None
        # Named as the SC names the volume: its file, or rbd:pool/image.
        found[target.get("dev", "")] = source.get("file") or (
            f"rbd:{source.get('name')}" if source.get("protocol") == "rbd" else source.get("name") or "")
    return found


def serials(domain: ET.Element) -> dict[str, str]:
    return {(d.find("target").get("dev", "")): d.findtext("serial") or ""  # type: ignore[union-attr]
            for d in domain.findall("./devices/disk") if d.findtext("serial")}


def sc_path(cloud: Cloud, volume_id: str) -> str:
    sc = cloud.internal("sc")
    try:
        return str(sc.call("GET", SC_VOLUME_ROUTE.format(volume_id=volume_id), response=VolumeInfo).path)
    finally:
        sc.close()


def aws(cloud: Cloud, *args: str) -> dict:
    done = subprocess.run([AWS, "ec2", *args, "--output", "json"], env=cloud.cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def aws_error(cloud: Cloud, *args: str) -> str:
    done = subprocess.run([AWS, "ec2", *args, "--output", "json"], env=cloud.cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout
    return done.stderr


# ------------------------------------------------------------------------- launch-time volumes

def test_run_instances_makes_and_attaches_mapped_volumes_before_the_domain_starts(
        cloud: Cloud, ec2: Any, image: str, snapshot: str) -> None:
    launched = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 1, "VolumeType": "gp3"}},
        {"DeviceName": "/dev/sdc", "Ebs": {"SnapshotId": snapshot, "VolumeSize": 3,
                                            "DeleteOnTermination": False}}])
    instance_id = launched["Instances"][0]["InstanceId"]
    assert launched["Instances"][0]["RootDeviceType"] == "instance-store"
    wait_instance(ec2, instance_id, "running")
    mapped = wait_for(lambda: (m := mappings(ec2, instance_id)) and all(
        e["Status"] == "attached" for e in m.values()) and len(m) == 2 and m, 30, "both attached")
    assert mapped["/dev/sdb"]["DeleteOnTermination"] is True          # EC2's default at launch
    assert mapped["/dev/sdc"]["DeleteOnTermination"] is False
    scratch, restored = mapped["/dev/sdb"]["VolumeId"], mapped["/dev/sdc"]["VolumeId"]
    assert volume(ec2, scratch)["Size"] == 1 and volume(ec2, scratch)["VolumeType"] == "gp3"
    made = volume(ec2, restored)
    assert (made["Size"], made["SnapshotId"], made["State"]) == (3, snapshot, "in-use")
    assert made["Attachments"][0]["InstanceId"] == instance_id

    # The node defined the domain with both disks from the start (the test driver cannot
    # hot-plug: they are in the definition the launch made), each named by its volume id.
    domain = domain_xml(cloud, launched["ResponseMetadata"]["RequestId"])
    assert serials(domain) == {"sdb": scratch, "sdc": restored}
    assert disk_sources(domain)["sdc"] == sc_path(cloud, restored)

    ec2.terminate_instances(InstanceIds=[instance_id])
    wait_instance(ec2, instance_id, "terminated")
    wait_volume_gone(ec2, scratch)                                    # DeleteOnTermination
    kept = wait_volume(ec2, restored, "available")                    # the other outlives it
    assert kept["Attachments"] == []


def test_mistakes_in_block_device_mappings_get_ec2s_answer_and_change_nothing(
        ec2: Any, image: str, snapshot: str) -> None:
    before = counts(ec2)

    def run(*mapping: dict) -> Any:
        return lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                         BlockDeviceMappings=list(mapping))
    assert code(run({"DeviceName": "/dev/floppy", "Ebs": {"VolumeSize": 1}})) == "InvalidBlockDeviceMapping"
    assert message(run({"DeviceName": "/dev/floppy", "Ebs": {"VolumeSize": 1}})) == \
        "Invalid device name /dev/floppy"
    too_small = message(run({"DeviceName": "/dev/sdb", "Ebs": {"SnapshotId": snapshot, "VolumeSize": 1}}))
    assert too_small == f"Volume of size 1GB is smaller than snapshot '{snapshot}', expect size >= 2GB"
    assert code(run({"DeviceName": "/dev/sdb", "Ebs": {"SnapshotId": snapshot, "VolumeSize": 1}})) == \
        "InvalidBlockDeviceMapping"
    assert code(run({"DeviceName": "/dev/sdb", "Ebs": {"SnapshotId": "snap-0badc0de"}})) == \
        "InvalidSnapshot.NotFound"
    assert code(run({"DeviceName": "/dev/sdb", "Ebs": {"DeleteOnTermination": True}})) == \
        "InvalidBlockDeviceMapping"
    assert code(run({"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 1}},
                    {"DeviceName": "sdb", "Ebs": {"VolumeSize": 2}})) == "InvalidBlockDeviceMapping"
    # The root of an instance-store image is not a volume.
    assert code(run({"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 1}})) == "InvalidBlockDeviceMapping"
    assert counts(ec2) == before


def test_a_launch_whose_volumes_the_sc_cannot_make_ends_with_the_reason(ec2: Any, image: str) -> None:
    """The SC's room (SC_MAX_STORAGE 200 GiB here) is only known off the request: the
    instance ends terminated saying why, and the volume made for it goes."""
    launched = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 900}}])
    instance_id = launched["Instances"][0]["InstanceId"]
    ended = wait_instance(ec2, instance_id, "terminated")
    assert ended["StateReason"]["Code"] == "Server.InternalError"
    assert "storage controller" in ended["StateReason"]["Message"]
    assert ended["BlockDeviceMappings"] == []
    left = ec2.describe_volumes(Filters=[{"Name": "size", "Values": ["900"]}])["Volumes"]
    assert [v["State"] for v in left] in ([], ["deleting"])


# ------------------------------------------------------------------------------ EBS-backed images

def test_an_image_registered_on_a_snapshot_is_ebs_backed(ec2: Any, ebs_image: str, snapshot: str) -> None:
    described = ec2.describe_images(ImageIds=[ebs_image])["Images"][0]
    assert (described["RootDeviceType"], described["RootDeviceName"], described["State"]) == \
        ("ebs", "/dev/sda1", "available")
    assert described["BlockDeviceMappings"] == [{"DeviceName": "/dev/sda1", "Ebs": {
        "SnapshotId": snapshot, "VolumeSize": 2, "DeleteOnTermination": True,
        "VolumeType": "standard"}}]
    found = ec2.describe_images(Filters=[{"Name": "root-device-type", "Values": ["ebs"]}])["Images"]
    assert ebs_image in {i["ImageId"] for i in found}
    # The root must be a snapshot; a duplicate name is refused as for any image.
    assert code(lambda: ec2.register_image(Name="no-root", RootDeviceName="/dev/sda1",
                                           BlockDeviceMappings=[{"DeviceName": "/dev/sdb",
                                                                 "Ebs": {"VolumeSize": 1}}])) == \
        "InvalidParameterValue"
    assert code(lambda: ec2.register_image(Name="ebs-root-image", RootDeviceName="/dev/sda1",
                                           BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                                                 "Ebs": {"SnapshotId": snapshot}}])) == \
        "InvalidAMIName.Duplicate"
    assert code(lambda: ec2.register_image(Name="unknown-root", RootDeviceName="/dev/sda1",
                                           BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                                                 "Ebs": {"SnapshotId": "snap-0badc0de"}}])) == \
        "InvalidSnapshot.NotFound"


@pytest.fixture(scope="module")
def booted(cloud: Cloud, ec2: Any, ebs_image: str) -> dict:
    """An instance of the EBS-backed image, running, with its root volume."""
    launched = ec2.run_instances(ImageId=ebs_image, MinCount=1, MaxCount=1, InstanceType="m1.small")
    instance_id = launched["Instances"][0]["InstanceId"]
    wait_instance(ec2, instance_id, "running")
    root = wait_for(lambda: (m := mappings(ec2, instance_id).get("/dev/sda1")) and
                    m["Status"] == "attached" and m, 30, "root attached")
    return {"id": instance_id, "root": root["VolumeId"], "request": launched["ResponseMetadata"]["RequestId"]}


def test_a_launch_may_resize_the_images_root_and_keep_it_after_termination(
        ec2: Any, ebs_image: str, snapshot: str) -> None:
    launched = ec2.run_instances(ImageId=ebs_image, MinCount=1, MaxCount=1, BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 4, "DeleteOnTermination": False}}])
    instance_id = launched["Instances"][0]["InstanceId"]
    wait_instance(ec2, instance_id, "running")
    root = wait_for(lambda: mappings(ec2, instance_id).get("/dev/sda1"), 30, "root attached")
    assert root["DeleteOnTermination"] is False
    made = volume(ec2, root["VolumeId"])
    assert (made["Size"], made["SnapshotId"]) == (4, snapshot)
    assert code(lambda: ec2.run_instances(ImageId=ebs_image, MinCount=1, MaxCount=1, BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 1}}])) == "InvalidBlockDeviceMapping"
    ec2.terminate_instances(InstanceIds=[instance_id])
    wait_instance(ec2, instance_id, "terminated")
    wait_volume(ec2, root["VolumeId"], "available")
    ec2.delete_volume(VolumeId=root["VolumeId"])


def test_an_instance_of_an_ebs_backed_image_boots_from_its_restored_root_volume(
        cloud: Cloud, ec2: Any, booted: dict, snapshot: str) -> None:
    described = instance(ec2, booted["id"])
    assert (described["RootDeviceType"], described["RootDeviceName"]) == ("ebs", "/dev/sda1")
    root = volume(ec2, booted["root"])
    assert (root["SnapshotId"], root["Size"], root["State"]) == (snapshot, 2, "in-use")
    assert described["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"] is True
    found = ec2.describe_instances(Filters=[{"Name": "root-device-type", "Values": ["ebs"]}])
    assert booted["id"] in {i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]}
    # The root disk (sda1, unit 0) is the volume's export, not a copy in the instance store.
    domain = domain_xml(cloud, booted["request"])
    assert disk_sources(domain)["sda1"] == sc_path(cloud, booted["root"])
    assert serials(domain)["sda1"] == booted["root"]


def test_an_instance_store_instance_cannot_be_stopped(cloud: Cloud, ec2: Any, image: str) -> None:
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    wait_instance(ec2, instance_id, "running")
    expected = (f"The instance '{instance_id}' does not have an 'ebs' root device type and "
                "cannot be stopped.")
    assert code(lambda: ec2.stop_instances(InstanceIds=[instance_id])) == "UnsupportedOperation"
    assert message(lambda: ec2.stop_instances(InstanceIds=[instance_id])) == expected
    assert "UnsupportedOperation" in aws_error(cloud, "stop-instances", "--instance-ids", instance_id)
    assert instance(ec2, instance_id)["State"]["Name"] == "running"
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_stop_modify_type_and_start_with_the_aws_cli(cloud: Cloud, ec2: Any, booted: dict) -> None:
    instance_id = booted["id"]
    # The type changes only while the instance is stopped.
    assert "IncorrectInstanceState" in aws_error(
        cloud, "modify-instance-attribute", "--instance-id", instance_id,
        "--instance-type", "Value=m1.xlarge")
    stopping = aws(cloud, "stop-instances", "--instance-ids", instance_id)["StoppingInstances"][0]
    assert (stopping["PreviousState"]["Name"], stopping["CurrentState"]["Name"]) == ("running", "stopping")
    stopped = wait_instance(ec2, instance_id, "stopped")
    assert stopped["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    # The domain is gone from its node; the root volume is kept, still attached.
    wait_for(lambda: instance_id not in cloud.nodes_of([instance_id], live=True), 30, "domain gone")
    assert volume(ec2, booted["root"])["Attachments"][0]["State"] == "attached"
    assert mappings(ec2, instance_id)["/dev/sda1"]["VolumeId"] == booted["root"]

    assert "InvalidParameterValue" in aws_error(
        cloud, "modify-instance-attribute", "--instance-id", instance_id, "--instance-type", "Value=m9.huge")
    aws(cloud, "modify-instance-attribute", "--instance-id", instance_id, "--instance-type", "Value=m1.xlarge")
    attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceType")
    assert attribute["InstanceType"]["Value"] == "m1.xlarge"

    started = aws(cloud, "start-instances", "--instance-ids", instance_id)
    change = started["StartingInstances"][0]
    assert (change["PreviousState"]["Name"], change["CurrentState"]["Name"]) == ("stopped", "pending")
    running = wait_instance(ec2, instance_id, "running")
    assert running["InstanceType"] == "m1.xlarge"
    assert mappings(ec2, instance_id)["/dev/sda1"]["VolumeId"] == booted["root"]


def test_the_restarted_domain_has_the_new_types_cores_memory_and_every_volume(
        cloud: Cloud, ec2: Any, booted: dict) -> None:
    instance_id = booted["id"]
    if instance(ec2, instance_id)["State"]["Name"] != "running":
        wait_instance(ec2, instance_id, "running")
    data = ec2.create_volume(AvailabilityZone="zone-1", Size=1)["VolumeId"]
    wait_volume(ec2, data, "available")
    ec2.stop_instances(InstanceIds=[instance_id])
    wait_instance(ec2, instance_id, "stopped")
    # A volume attached while it is stopped joins its domain at the next start.
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdd")
    wait_for(lambda: mappings(ec2, instance_id).get("/dev/sdd", {}).get("Status") == "attached",
             30, f"{data} attached to the stopped instance")
    ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": "c1.xlarge"})
    started = ec2.start_instances(InstanceIds=[instance_id])
    wait_instance(ec2, instance_id, "running")
    domain = domain_xml(cloud, started["ResponseMetadata"]["RequestId"])
    assert domain.findtext("vcpu") == "4"
    memory = domain.find("memory")
    assert memory is not None and (memory.text, memory.get("unit")) == ("2048", "MiB")
    assert disk_sources(domain)["sda1"] == sc_path(cloud, booted["root"])
    assert serials(domain) == {"sda1": booted["root"], "sdd": data}
    # It stays attached to the running instance; a detach now goes through its node.
    ec2.detach_volume(VolumeId=data)
    wait_volume(ec2, data, "available")
    ec2.delete_volume(VolumeId=data)
    # Stopping twice or starting a running instance changes nothing.
    assert ec2.start_instances(InstanceIds=[instance_id])["StartingInstances"][0]["CurrentState"]["Name"] == "running"


def test_create_image_from_an_ebs_backed_instance(cloud: Cloud, ec2: Any, booted: dict) -> None:
    made = ec2.create_image(InstanceId=booted["id"], Name="from-a-running-instance", NoReboot=True)
    image_id = made["ImageId"]
    described = wait_for(lambda: (i := ec2.describe_images(ImageIds=[image_id])["Images"][0])["State"]
                         == "available" and i, 60, f"{image_id} available")
    assert described["RootDeviceType"] == "ebs"
    [root] = described["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/sda1"
    snap = ec2.describe_snapshots(SnapshotIds=[root["Ebs"]["SnapshotId"]])["Snapshots"][0]
    assert snap["VolumeId"] == booted["root"]
    # An instance-store instance has no root volume to make an image of.
    plain = ec2.run_instances(ImageId=cloud.register_image(), MinCount=1, MaxCount=1)["Instances"][0]
    assert code(lambda: ec2.create_image(InstanceId=plain["InstanceId"], Name="nope")) == "InvalidParameterValue"
    ec2.terminate_instances(InstanceIds=[plain["InstanceId"]])
    # The new image boots too, from a new volume restored from its snapshot.
    child = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    wait_instance(ec2, child, "running")
    child_root = wait_for(lambda: mappings(ec2, child).get("/dev/sda1"), 30, "child root")
    assert volume(ec2, child_root["VolumeId"])["SnapshotId"] == root["Ebs"]["SnapshotId"]
    ec2.terminate_instances(InstanceIds=[child])
    wait_instance(ec2, child, "terminated")
    wait_volume_gone(ec2, child_root["VolumeId"])


def test_terminating_a_stopped_instance_deletes_its_root_volume(ec2: Any, booted: dict) -> None:
    instance_id = booted["id"]
    if instance(ec2, instance_id)["State"]["Name"] != "stopped":
        wait_instance(ec2, instance_id, "running")
        ec2.stop_instances(InstanceIds=[instance_id])
        wait_instance(ec2, instance_id, "stopped")
    ec2.terminate_instances(InstanceIds=[instance_id])
    wait_instance(ec2, instance_id, "terminated")
    wait_volume_gone(ec2, booted["root"])
