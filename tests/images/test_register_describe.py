"""RegisterImage, DescribeImages and DeregisterImage with boto3 against a real CLC reading
real manifests from a real Walrus."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.images.conftest import ImageCloud, unique


def _error(call, **kwargs) -> tuple[str, int, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    err = caught.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_register_kernel_ramdisk_and_machine(cloud: ImageCloud, tmp_path: Path) -> None:
    ec2 = cloud.ec2()
    eki = cloud.register(tmp_path / "k", kind="kernel")
    eri = cloud.register(tmp_path / "r", kind="ramdisk")
    name = unique("machine")
    emi = cloud.register(tmp_path / "m", Name=name, Description="a test image", KernelId=eki,
                         RamdiskId=eri, TagSpecifications=[{"ResourceType": "image",
                                                            "Tags": [{"Key": "role", "Value": "web"}]}])
    assert eki.startswith("eki-") and eri.startswith("eri-") and emi.startswith("emi-")
    assert len(emi) == len("emi-") + 8
    image = ec2.describe_images(ImageIds=[emi])["Images"][0]
    assert image["ImageId"] == emi and image["Name"] == name
    assert image["State"] == "available" and image["ImageType"] == "machine"
    assert image["OwnerId"] == cloud.admin.account_id and image["Public"] is False
    assert image["KernelId"] == eki and image["RamdiskId"] == eri
    assert image["Description"] == "a test image"
    assert image["RootDeviceType"] == "instance-store" and image["Architecture"] == "x86_64"
    assert image["ImageLocation"].endswith(".manifest.xml")
    assert image["Tags"] == [{"Key": "role", "Value": "web"}]
    assert image["CreationDate"].endswith("Z")
    kinds = {i["ImageId"]: i["ImageType"] for i in ec2.describe_images(ImageIds=[eki, eri])["Images"]}
    assert kinds == {eki: "kernel", eri: "ramdisk"}
    by_filter = ec2.describe_images(Filters=[{"Name": "tag:role", "Values": ["web"]},
                                             {"Name": "image-type", "Values": ["machine"]}])["Images"]
    assert [i["ImageId"] for i in by_filter] == [emi]
    named = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name[:-2] + "*"]}])
    assert emi in [i["ImageId"] for i in named["Images"]]


def test_describe_errors_and_paging(cloud: ImageCloud, tmp_path: Path) -> None:
    ec2 = cloud.ec2()
    for i in range(6):
        cloud.register(tmp_path / str(i))
    assert _error(ec2.describe_images, ImageIds=["emi-00000000"])[:2] == ("InvalidAMIID.NotFound", 400)
    assert _error(ec2.describe_images, ImageIds=["bogus"])[:2] == ("InvalidAMIID.Malformed", 400)
    assert _error(ec2.describe_images, Filters=[{"Name": "colour", "Values": ["x"]}])[0] == "InvalidParameterValue"
    everything = ec2.describe_images(Owners=["self"])["Images"]
    paged = [i for page in ec2.get_paginator("describe_images").paginate(Owners=["self"],
                                                                         PaginationConfig={"PageSize": 5})
             for i in page["Images"]]
    assert len(paged) == len(everything) >= 6
    assert [i["ImageId"] for i in paged] == [i["ImageId"] for i in everything]


def test_register_refuses_bad_manifests(cloud: ImageCloud, tmp_path: Path) -> None:
    ec2, s3 = cloud.ec2(), cloud.s3()
    built = cloud.bundle(tmp_path, name="honest")
    bucket = unique("forged")
    location = cloud.upload(built, bucket=bucket)
    key = location.split("/", 1)[1]
    forged = built.manifest_path.read_bytes().replace(b"<name>honest</name>", b"<name>forged</name>")
    s3.put_object(Bucket=bucket, Key=key, Body=forged)
    code, status, message = _error(ec2.register_image, ImageLocation=location, Name=unique("f"))
    assert (code, status) == ("InvalidManifest", 400) and "signature" in message
    assert _error(ec2.register_image, ImageLocation=f"{bucket}/missing.manifest.xml",
                  Name=unique("m"))[0] == "InvalidManifest"
    assert _error(ec2.register_image, ImageLocation="no-slash", Name=unique("m"))[0] == "InvalidManifest"
    s3.put_object(Bucket=bucket, Key="junk.manifest.xml", Body=b"<html>")
    assert _error(ec2.register_image, ImageLocation=f"{bucket}/junk.manifest.xml",
                  Name=unique("j"))[0] == "InvalidManifest"
    assert not ec2.describe_images(Filters=[{"Name": "manifest-location",
                                             "Values": [f"{bucket}/*"]}])["Images"]


def test_another_accounts_manifest_is_not_ours_to_register(cloud: ImageCloud, tmp_path: Path) -> None:
    other = cloud.new_account("signer")
    location = cloud.upload(cloud.bundle(tmp_path, key=other), key=other)
    # The admin can read the bucket, but the manifest is signed by the other account's user.
    code, _, message = _error(cloud.ec2().register_image, ImageLocation=location, Name=unique("x"))
    assert code == "InvalidManifest" and "signature" in message


def test_names_are_unique_per_account_and_checked(cloud: ImageCloud, tmp_path: Path) -> None:
    ec2 = cloud.ec2()
    name = unique("dup")
    cloud.register(tmp_path / "a", Name=name)
    location = cloud.upload(cloud.bundle(tmp_path / "b"))
    code, _, message = _error(ec2.register_image, ImageLocation=location, Name=name)
    assert code == "InvalidAMIName.Duplicate" and name in message
    assert _error(ec2.register_image, ImageLocation=location, Name="bad*name!")[0] == "InvalidAMIName.Malformed"
    assert _error(ec2.register_image, ImageLocation=location, Name=unique("k"),
                  KernelId="eki-00000000")[0] == "InvalidAMIID.NotFound"
    assert _error(ec2.register_image, ImageLocation=location, Name=unique("a"),
                  Architecture="sparc")[0] == "InvalidParameterValue"


def test_deregister(cloud: ImageCloud, tmp_path: Path) -> None:
    ec2 = cloud.ec2()
    emi = cloud.register(tmp_path)
    assert ec2.deregister_image(ImageId=emi)["Return"] is True
    assert _error(ec2.describe_images, ImageIds=[emi])[0] == "InvalidAMIID.NotFound"
    assert emi not in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    assert _error(ec2.deregister_image, ImageId=emi)[0] == "InvalidAMIID.NotFound"
    assert _error(ec2.deregister_image, ImageId="emi-nothex!")[0] == "InvalidAMIID.Malformed"


def test_aws_cli_describe_and_share(cloud: ImageCloud, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    emi = cloud.register(tmp_path)
    env = {**os.environ, **cloud.clc.cli_env()}
    aws = [str(Path(sys.executable).parent / "aws"), "ec2", "--output", "json"]
    subprocess.run([*aws, "modify-image-attribute", "--image-id", emi, "--launch-permission",
                    "Add=[{Group=all}]"], env=env, check=True, capture_output=True)
    described = subprocess.run([*aws, "describe-images", "--owners", "self", "--filters",
                                f"Name=image-id,Values={emi}"], env=env, check=True,
                               capture_output=True, text=True)
    [image] = json.loads(described.stdout)["Images"]
    assert image["ImageId"] == emi and image["Public"] is True
