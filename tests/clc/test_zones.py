"""Regions, zones and VM types, as boto3 and the AWS CLI see them."""

import json
import subprocess
import sys
from pathlib import Path

from tests.support.clc import RunningClc

AWS = str(Path(sys.executable).parent / "aws")


def test_regions_and_zones_come_from_configuration(ec2, clc: RunningClc):
    regions = ec2.describe_regions()["Regions"]
    assert [r["RegionName"] for r in regions] == ["eucalyptus"]
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["State"], z["RegionName"]) for z in zones] == [
        ("zone-1", "available", "eucalyptus")]


def test_zone_filters_and_unknown_filter(ec2):
    assert ec2.describe_availability_zones(
        Filters=[{"Name": "zone-name", "Values": ["zone-*"]}])["AvailabilityZones"]
    assert ec2.describe_availability_zones(
        Filters=[{"Name": "zone-name", "Values": ["nope"]}])["AvailabilityZones"] == []
    try:
        ec2.describe_availability_zones(Filters=[{"Name": "colour", "Values": ["red"]}])
    except ec2.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "InvalidParameterValue"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    else:
        raise AssertionError("an unknown filter must be refused")


def test_verbose_lists_every_vm_type_with_zero_capacity_before_nodes_exist(ec2):
    zones = ec2.describe_availability_zones(ZoneNames=["verbose"])["AvailabilityZones"]
    names = [z["ZoneName"] for z in zones]
    assert names[0] == "zone-1"
    assert "|- m1.small" in names and "|- c1.xlarge" in names
    small = next(z for z in zones if z["ZoneName"] == "|- m1.small")
    assert small["State"].split()[:3] == ["0000", "/", "0000"]
    assert small["State"].split()[3:] == ["1", "256", "5"]


def test_instance_types_are_eucalyptus_defaults_and_page(ec2):
    types = {t["InstanceType"]: t for t in ec2.describe_instance_types()["InstanceTypes"]}
    assert {"m1.small", "c1.medium", "m1.large", "m1.xlarge", "c1.xlarge"} <= set(types)
    assert types["m1.small"]["VCpuInfo"]["DefaultVCpus"] == 1
    assert types["m1.small"]["MemoryInfo"]["SizeInMiB"] == 256
    assert types["m1.small"]["InstanceStorageInfo"]["TotalSizeInGB"] == 5
    first = ec2.describe_instance_types(MaxResults=5)
    assert len(first["InstanceTypes"]) == 5
    pages = ec2.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 5})
    assert sum(len(p["InstanceTypes"]) for p in pages) == len(types)


def test_vm_type_changed_through_the_admin_api_shows_in_describe(clc: RunningClc, ec2):
    from services.messages.admin import ADMIN_VMTYPE_ROUTE, VmTypeSpec
    client = clc.admin_client()
    try:
        client.call("PUT", ADMIN_VMTYPE_ROUTE.format(name="m1.huge"),
                    VmTypeSpec(name="m1.huge", cpu=8, memory_mb=8192, disk_gb=40), VmTypeSpec)
    finally:
        client.close()
    huge = ec2.describe_instance_types(InstanceTypes=["m1.huge"])["InstanceTypes"][0]
    assert huge["VCpuInfo"]["DefaultVCpus"] == 8 and huge["MemoryInfo"]["SizeInMiB"] == 8192


def test_aws_cli_describes_zones(clc: RunningClc):
    result = subprocess.run([AWS, "ec2", "describe-availability-zones", "--output", "json"],
                            env=clc.cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["AvailabilityZones"][0]["ZoneName"] == "zone-1"
