"""Eucalyptus's own clients against the cloud as `make up` starts it: Apache libcloud's
Eucalyptus driver (SigV2 on /services/Eucalyptus, Eucalyptus's DescribeInstanceTypes) lists
sizes, images and nodes, creates and destroys a node and goes through a volume's life; the
credentials zip unpacks and `source eucarc` points that driver at the cloud; and AWS clients
asking the same action still get AWS's answer."""

from __future__ import annotations

import stat
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from libcloud.compute.base import NodeLocation
from libcloud.compute.drivers.ec2 import EC2NodeLocation, EucNodeDriver, ExEC2AvailabilityZone
from libcloud.compute.types import NodeState

from services import pki
from services.ec2query.eucalyptus import namespace
from tests.support.cloud import Cloud, running_cloud
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("euca-clients"), nodes=2) as c:
        yield c


def driver_for(url: str, access_key: str, secret_key: str, **extra: Any) -> EucNodeDriver:
    parts = urlsplit(url)
    return EucNodeDriver(access_key, secret_key, secure=parts.scheme == "https",
                         host=parts.hostname, port=parts.port, path=parts.path or None, **extra)


@pytest.fixture(scope="module")
def euca(cloud: Cloud) -> EucNodeDriver:
    return driver_for(cloud.clc_url, cloud.admin.access_key, cloud.admin.secret_key)


@pytest.fixture(scope="module")
def image_id(cloud: Cloud) -> str:
    return cloud.register_image()


def zone_location(cloud: Cloud, euca: EucNodeDriver) -> NodeLocation:
    """The Eucalyptus driver has no list_locations (and ex_list_availability_zones filters on
    AWS's region us-east-1), so its users name a volume's zone with a location of their own."""
    name = cloud.config.zones[0]
    zone = ExEC2AvailabilityZone(name=name, zone_state="available", region_name=cloud.config.REGION)
    return EC2NodeLocation(name, name, "", euca, zone)


def test_sizes_are_the_vm_types_in_eucalyptus_shape(cloud: Cloud, euca: EucNodeDriver) -> None:
    sizes = {s.id: s for s in euca.list_sizes()}
    aws = {t["InstanceType"]: t for t in cloud.ec2().describe_instance_types()["InstanceTypes"]}
    assert set(sizes) == set(aws) and "m1.small" in sizes
    for name, size in sizes.items():
        assert size.ram == aws[name]["MemoryInfo"]["SizeInMiB"]
        assert size.disk == aws[name]["InstanceStorageInfo"]["TotalSizeInGB"]
        assert size.extra["cpu"] == aws[name]["VCpuInfo"]["DefaultVCpus"]


def _eucalyptus_types(euca: EucNodeDriver, version: str, **params: str) -> ET.Element:
    """DescribeInstanceTypes sent with `version` (libcloud's signer sets Version itself)."""
    signer = euca.connection.signer
    before, signer.version = signer.version, version
    try:
        return euca.connection.request(euca.path, params={"Action": "DescribeInstanceTypes",
                                                          **params}).object
    finally:
        signer.version = before


def test_a_eucalyptus_version_is_answered_in_its_namespace_with_availability(
        cloud: Cloud, euca: EucNodeDriver) -> None:
    answer = _eucalyptus_types(euca, "3.4.2", Verbose="true", **{"InstanceType.1": "m1.small"})
    ns = namespace("3.4.2")
    assert answer.tag == f"{{{ns}}}DescribeInstanceTypesResponse"
    items = answer.findall(f"{{{ns}}}instanceTypeDetails/{{{ns}}}item")
    assert [i.findtext(f"{{{ns}}}name") for i in items] == ["m1.small"]
    zones = items[0].findall(f"{{{ns}}}availability/{{{ns}}}item")
    assert [z.findtext(f"{{{ns}}}zoneName") for z in zones] == cloud.config.zones
    most, free = (int(zones[0].findtext(f"{{{ns}}}{tag}") or -1) for tag in ("max", "available"))
    # 2 nodes of 8 cores and an m1.small of 1 core (some may be booked by another test).
    assert most == 16 and 0 <= free <= most
    plain = _eucalyptus_types(euca, "3.4.2")
    assert plain.find(f"{{{ns}}}instanceTypeDetails/{{{ns}}}item/{{{ns}}}availability") is None


def test_an_unknown_type_is_refused_in_either_dialect(euca: EucNodeDriver) -> None:
    from libcloud.common.exceptions import BaseHTTPError
    from libcloud.common.types import LibcloudError

    with pytest.raises((BaseHTTPError, LibcloudError)) as caught:
        _eucalyptus_types(euca, "3.3.0", **{"InstanceType.1": "m9.huge"})
    assert "InvalidInstanceType" in str(caught.value)


def test_aws_clients_still_get_aws_shape(cloud: Cloud) -> None:
    types = cloud.ec2().describe_instance_types(InstanceTypes=["m1.small"])["InstanceTypes"]
    assert types[0]["VCpuInfo"]["DefaultVCpus"] == 1


def test_images_and_a_node_from_create_to_destroy(cloud: Cloud, euca: EucNodeDriver,
                                                 image_id: str) -> None:
    image = next(i for i in euca.list_images() if i.id == image_id)
    size = next(s for s in euca.list_sizes() if s.id == "m1.small")
    node = euca.create_node(name="libcloud-one", size=size, image=image)
    assert node.id.startswith("i-")

    def running() -> Any:
        found = [n for n in euca.list_nodes() if n.id == node.id]
        return found and found[0].state == NodeState.RUNNING and found[0]

    seen = wait_for(running, 60, f"{node.id} running")
    assert seen.name == "libcloud-one" and seen.extra["instance_type"] == "m1.small"
    assert seen.private_ips and seen.extra["image_id"] == image_id
    assert euca.destroy_node(seen)
    wait_for(lambda: [n.state for n in euca.list_nodes() if n.id == node.id]
             in ([NodeState.TERMINATED], []), 60, f"{node.id} terminated")


def test_a_volume_created_attached_detached_and_destroyed(cloud: Cloud, euca: EucNodeDriver,
                                                          image_id: str) -> None:
    image = next(i for i in euca.list_images() if i.id == image_id)
    size = next(s for s in euca.list_sizes() if s.id == "m1.small")
    node = euca.create_node(name="with-volume", size=size, image=image)
    wait_for(lambda: [n.state for n in euca.list_nodes() if n.id == node.id] == [NodeState.RUNNING],
             60, f"{node.id} running")
    volume = euca.create_volume(1, "data", location=zone_location(cloud, euca))
    assert volume.size == 1

    def state_of() -> str | None:
        found = [v for v in euca.list_volumes() if v.id == volume.id]
        return found[0].extra["state"] if found else None

    wait_for(lambda: state_of() == "available", 60, f"{volume.id} available")
    assert [v.name for v in euca.list_volumes() if v.id == volume.id] == ["data"]
    assert euca.attach_volume(node, volume, "/dev/sdf")
    wait_for(lambda: state_of() == "in-use", 60, f"{volume.id} in use")
    assert [v.id for v in euca.list_volumes(node=node)] == [volume.id]
    assert euca.detach_volume(volume)
    wait_for(lambda: state_of() == "available", 60, f"{volume.id} detached")
    assert euca.destroy_volume(volume)
    wait_for(lambda: state_of() in (None, "deleted"), 60, f"{volume.id} deleted")
    euca.destroy_node(node)


def test_the_credentials_zip_is_what_euca_get_credentials_gave(cloud: Cloud,
                                                               tmp_path: Path) -> None:
    archive = cloud.home / "credentials" / "euca2-admin-x509.zip"
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        assert zipped.comment == b"To setup the environment run: source /path/to/eucarc"
        assert all(stat.S_IMODE(i.external_attr >> 16) == 0o600 for i in zipped.infolist())
        zipped.extractall(tmp_path)
    base = next(n for n in names if n.endswith("-pk.pem"))[: -len("-pk.pem")]
    assert names == ["eucarc", "iamrc", "cloud-cert.pem", f"{base}-pk.pem", f"{base}-cert.pem"]
    assert base.startswith("euca2-admin-") and len(base) == len("euca2-admin-") + 8
    cert = pki.load_certificate(tmp_path / f"{base}-cert.pem")
    assert pki.issued_by(cert, pki.load_certificate(tmp_path / "cloud-cert.pem"))
    assert (tmp_path / "iamrc").read_text() == (f"AWSAccessKeyId={cloud.admin.access_key}\n"
                                                f"AWSSecretKey={cloud.admin.secret_key}")
    # Sourced from another directory, as a user does: the paths follow the file.
    shown = subprocess.run(
        ["bash", "-c", f"cd / && source {tmp_path}/eucarc 2>/dev/null && "
                       "printf '%s\\n' \"$EC2_URL\" \"$EC2_ACCESS_KEY\" \"$EC2_SECRET_KEY\" "
                       "\"$EC2_CERT\" \"$EC2_PRIVATE_KEY\" \"$EUCALYPTUS_CERT\" \"$EC2_USER_ID\" "
                       "\"$AWS_CREDENTIAL_FILE\" \"$S3_URL\""],
        capture_output=True, text=True, check=True).stdout.splitlines()
    url, access, secret, user_cert, user_key, cloud_cert, user_id, iamrc, s3 = shown
    assert (access, secret, user_id) == (cloud.admin.access_key, cloud.admin.secret_key,
                                         cloud.admin.account_id)
    assert url == f"{cloud.clc_url}/services/Eucalyptus"
    assert s3 == cloud.config.service_url("walrus")
    for path in (user_cert, user_key, cloud_cert, iamrc):
        assert Path(path).is_file() and Path(path).parent == tmp_path.resolve()
    # What a Eucalyptus user then does: point libcloud at EC2_URL with the keys.
    assert "m1.small" in {s.id for s in driver_for(url, access, secret).list_sizes()}


def test_get_credentials_writes_the_zip(cloud: Cloud, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from services.cli import app

    target = tmp_path / "admin.zip"
    result = CliRunner().invoke(app, ["get-credentials", str(target), "--home", str(cloud.home)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(target) as zipped:
        assert "eucarc" in zipped.namelist()
        eucarc = zipped.read("eucarc").decode()
    assert f"export EC2_ACCESS_KEY='{cloud.admin.access_key}'" in eucarc
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    again = CliRunner().invoke(app, ["get-credentials", str(target), "--home", str(cloud.home)])
    assert again.exit_code == 1

