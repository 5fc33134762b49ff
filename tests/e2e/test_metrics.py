"""/metrics on every service of the cloud as `make up` starts it, scraped after a user's
session (boto3: an instance, a volume and its snapshot, objects in a bucket, a mistake) and
read with prometheus_client's own parser: requests by action and outcome with latencies,
instances by state, booked vs max per node, Walrus's bytes and objects, the SC's volumes and
snapshots. Then each service's log: JSON lines where the RequestId of an EC2 answer is found on
the lines of the CLC, CC, NC and SC for that request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.cloud import Cloud, running_cloud
from tests.support.waiting import wait_for

Samples = list[Sample]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("metrics"), nodes=2) as c:
        yield c


@pytest.fixture(scope="module")
def session(cloud: Cloud) -> dict[str, str]:
    """What a user did before the scrapes."""
    ec2 = cloud.ec2()
    ec2.describe_regions()
    ec2.describe_regions()
    with pytest.raises(ClientError):
        ec2.describe_instances(InstanceIds=["i-00000000"])
    image = cloud.register_image()
    launched = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m1.small")
    instance = launched["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance],
                                            WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    zone = cloud.config.zones[0]
    created = ec2.create_volume(Size=1, AvailabilityZone=zone)
    volume = created["VolumeId"]
    wait_for(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available",
             60, f"{volume} available")
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    wait_for(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["State"]
             == "completed", 60, f"{snapshot} completed")
    s3 = boto3.client("s3", endpoint_url=cloud.config.service_url("walrus"),
                      region_name=cloud.config.REGION, aws_access_key_id=cloud.admin.access_key,
                      aws_secret_access_key=cloud.admin.secret_key,
                      config=Config(retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="counted")
    for key, size in (("a", 1000), ("b", 24)):
        s3.put_object(Bucket="counted", Key=key, Body=b"x" * size)
    s3.get_object(Bucket="counted", Key="a")["Body"].read()
    with pytest.raises(ClientError):
        s3.get_object(Bucket="counted", Key="missing")
    return {"instance": instance, "volume": volume, "snapshot": snapshot, "image": image,
            "run_request": launched["ResponseMetadata"]["RequestId"],
            "volume_request": created["ResponseMetadata"]["RequestId"]}


def scrape(cloud: Cloud, service: str, path: str = "/metrics") -> Samples:
    response = httpx.get(cloud.config.service_url(service) + path, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def value(samples: Samples, name: str, **labels: str) -> float | None:
    found = [s.value for s in samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, f"{name}{labels} names {len(found)} series"
    return found[0] if found else None


def test_clc_counts_ec2_actions_by_outcome_with_latency(cloud: Cloud, session: dict[str, str]) -> None:
    samples = scrape(cloud, "clc")
    assert (value(samples, "eucasim_requests_total", service="clc", action="DescribeRegions",
                  outcome="ok") or 0) >= 2
    failed = [s for s in samples if s.name == "eucasim_requests_total"
              and s.labels["action"] == "DescribeInstances" and s.labels["outcome"] != "ok"]
    assert [s.labels["outcome"] for s in failed] == ["InvalidInstanceID.NotFound"]
    assert value(samples, "eucasim_requests_total", action="RunInstances", outcome="ok") == 1
    count = value(samples, "eucasim_request_duration_seconds_count", action="RunInstances")
    total = value(samples, "eucasim_request_duration_seconds_sum", action="RunInstances")
    assert count == 1 and total is not None and 0 < total < 30
    # The internal routes (the CC's pushes, the admin API) are counted by route template.
    assert any(s.name == "eucasim_requests_total" and s.labels["action"].startswith("POST /internal/")
               for s in samples)


def test_clc_counts_instances_by_state(cloud: Cloud, session: dict[str, str]) -> None:
    zone = cloud.config.zones[0]
    assert value(scrape(cloud, "clc"), "eucasim_instances", zone=zone, state="running") == 1


def test_cc_shows_booked_against_max_per_node(cloud: Cloud, session: dict[str, str]) -> None:
    samples = scrape(cloud, "cc")
    booked = {s.labels["node"]: s.value for s in samples
              if s.name == "eucasim_node_cores" and s.labels["kind"] == "booked"}
    most = {s.labels["node"]: s.value for s in samples
            if s.name == "eucasim_node_cores" and s.labels["kind"] == "max"}
    assert set(booked) == set(most) == set(cloud.booked_cores())
    assert set(most.values()) == {8.0}
    assert booked == {node: float(cores) for node, cores in cloud.booked_cores().items()}
    assert sum(booked.values()) == 1.0  # one m1.small
    memory = {s.labels["kind"]: s.value for s in samples if s.name == "eucasim_node_memory_mebibytes"
              and s.labels["node"] == next(n for n, c in booked.items() if c)}
    assert memory["max"] == 16384 and memory["booked"] == 256
    assert {s.value for s in samples if s.name == "eucasim_node_up"} == {1.0}


def test_walrus_counts_objects_and_bytes_and_s3_operations(cloud: Cloud,
                                                           session: dict[str, str]) -> None:
    samples = scrape(cloud, "walrus", "/internal/metrics")
    assert value(samples, "eucasim_walrus_objects", bucket="counted", version="current") == 2
    assert value(samples, "eucasim_walrus_bytes", bucket="counted", version="current") == 1024
    assert (value(samples, "eucasim_requests_total", service="walrus", action="get_object",
                  outcome="ok") or 0) >= 1
    assert value(samples, "eucasim_requests_total", action="get_object", outcome="NoSuchKey") == 1
    # /metrics on Walrus is S3's: a bucket may be called "metrics".
    assert httpx.get(cloud.config.service_url("walrus") + "/metrics").status_code in (403, 404)


def test_sc_shows_volumes_and_snapshots(cloud: Cloud, session: dict[str, str]) -> None:
    samples = scrape(cloud, "sc")
    assert value(samples, "eucasim_sc_volumes", state="available") == 1
    assert value(samples, "eucasim_sc_volume_gibibytes", state="available") == 1
    assert value(samples, "eucasim_sc_snapshots", state="completed") == 1
    # Only a snapshot being taken has a progress series; this one is done.
    assert not [s for s in samples if s.name == "eucasim_sc_snapshot_progress_percent"]


def test_nc_counts_its_routes(cloud: Cloud, session: dict[str, str]) -> None:
    samples = scrape(cloud, "nc")
    routes = {s.labels["action"] for s in samples if s.name == "eucasim_requests_total"
              and s.labels["service"] == "nc" and s.labels["outcome"] == "200"}
    assert any("{node}" in route for route in routes), routes


def log_lines(cloud: Cloud, service: str) -> list[dict[str, Any]]:
    text = (cloud.config.EUCASIM_HOME / "logs" / f"{service}.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line]  # every line is JSON


def test_logs_are_json_lines_carrying_the_ec2_request_id(cloud: Cloud, session: dict[str, str]) -> None:
    """The RequestId of an EC2 answer is on the lines of every service that worked on it."""
    run, volume = session["run_request"], session["volume_request"]
    for service, request_id, what in [("clc", run, "EC2 RunInstances -> ok"),
                                      ("cc", run, "POST /internal/instances -> 200"),
                                      ("nc", run, "/internal/instances -> 200"),
                                      ("clc", volume, "EC2 CreateVolume -> ok"),
                                      ("sc", volume, "POST /internal/volumes -> 200")]:
        lines = log_lines(cloud, service)
        assert {"time", "level", "service", "logger", "message"} <= set(lines[0])
        assert {line["service"] for line in lines} == {service}
        messages = [line["message"] for line in lines if line.get("request_id") == request_id]
        assert any(what in m for m in messages), (service, request_id, messages)
