"""A mixed workload against the whole cloud and what must hold after a service crashed under
it: used by tests/hardening/test_crashes.py and benchmarks/crash_convergence.py.

`Workload` runs three clients in threads (each its own boto3 clients): S3 (puts, multipart
uploads, deletes), instances (launches, terminations, an elastic IP moved between them) and
EBS (create, attach, snapshot, detach, delete). Every answer is written down in a `Ledger`:
only what the cloud answered as done is owed afterwards. A call that fails (the service is
down, or answers an error meanwhile) is counted and the loop goes on.

`converged(cloud)` says whether the CLC's view matches the CC's (instances and the volumes
their nodes hold) and the SC's (volumes, exports, snapshots), with nothing in a transitional
state; `check(cloud, ledger)` asserts that nothing the ledger owes is missing."""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.messages.storage import (SC_EXPORTS_ROUTE, SC_SNAPSHOTS_ROUTE, SC_VOLUMES_ROUTE,
                                       SnapshotList, VolumeExportList, VolumeList)
from tests.support.cloud import Cloud

BUCKET = "crash-workload"
PART = 5 * 1024 * 1024
TRANSITIONAL_INSTANCE = {"pending", "stopping", "shutting-down"}
TRANSITIONAL_VOLUME = {"creating", "deleting"}


def s3_client(cloud: Cloud, timeout: float = 10) -> Any:
    return boto3.client("s3", endpoint_url=cloud.config.service_url("walrus"),
                        region_name=cloud.config.REGION, aws_access_key_id=cloud.admin.access_key,
                        aws_secret_access_key=cloud.admin.secret_key,
                        config=Config(retries={"max_attempts": 1}, connect_timeout=timeout,
                                      read_timeout=timeout, s3={"addressing_style": "path"}))


def ec2_client(cloud: Cloud, timeout: float = 15) -> Any:
    return boto3.client("ec2", endpoint_url=cloud.clc_url, region_name=cloud.config.REGION,
                        aws_access_key_id=cloud.admin.access_key,
                        aws_secret_access_key=cloud.admin.secret_key,
                        config=Config(retries={"max_attempts": 1}, connect_timeout=timeout,
                                      read_timeout=timeout))


@dataclass
class Ledger:
    """What the cloud answered as done."""
    objects: dict[str, str] = field(default_factory=dict)      # key -> sha256 of its body
    deleted_objects: set[str] = field(default_factory=set)
    # Deletes whose answer was lost (the connection broke as Walrus died): Walrus may have
    # deleted the object before it died, or not; either is right, a changed body is not.
    maybe_deleted: set[str] = field(default_factory=set)
    uploads_ended: set[str] = field(default_factory=set)       # completed or aborted
    instances: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)
    deleted_volumes: set[str] = field(default_factory=set)
    snapshots: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)     # operation -> failed calls
    done: dict[str, int] = field(default_factory=dict)         # operation -> answered calls
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, operation: str) -> None:
        with self.lock:
            self.failures[operation] = self.failures.get(operation, 0) + 1

    def answered(self, operation: str) -> None:
        with self.lock:
            self.done[operation] = self.done.get(operation, 0) + 1


class Workload:
    def __init__(self, cloud: Cloud, image_id: str, ledger: Ledger, address: dict[str, str],
                 zone: str) -> None:
        self.cloud, self.image_id, self.ledger = cloud, image_id, ledger
        self.address, self.zone = address, zone
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(step,), name=step.__name__, daemon=True)
                        for step in (self._s3, self._instances, self._ebs)]
        self._s3_client = s3_client(cloud)
        self._ec2 = {step: ec2_client(cloud) for step in ("instances", "ebs")}
        self.running: list[str] = []          # instances this workload launched and saw running
        self._turn = 0

    def start(self) -> Workload:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(120)

    def _loop(self, step: Callable[[], None]) -> None:
        while not self.stopping.is_set():
            try:
                step()
            except (ClientError, BotoCoreError) as exc:
                code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
                self.ledger.failed(f"{step.__name__}:{code}")
                time.sleep(0.2)

    def _call(self, operation: str, call: Callable[[], Any]) -> Any:
        answer = call()
        self.ledger.answered(operation)
        return answer

    # -- S3 -----------------------------------------------------------------------------------

    def _s3(self) -> None:
        s3, ledger = self._s3_client, self.ledger
        self._turn += 1
        key = f"object-{secrets.token_hex(6)}"
        if self._turn % 4 == 0:
            upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
            bodies = [secrets.token_bytes(PART), secrets.token_bytes(1000)]
            parts = [{"PartNumber": n, "ETag": s3.upload_part(
                Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]}
                for n, body in enumerate(bodies, 1)]
            self._call("complete", lambda: s3.complete_multipart_upload(
                Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}))
            with ledger.lock:
                ledger.uploads_ended.add(upload)
                ledger.objects[key] = hashlib.sha256(b"".join(bodies)).hexdigest()
            return
        body = secrets.token_bytes(1024 * (1 + self._turn % 64))
        self._call("put", lambda: s3.put_object(Bucket=BUCKET, Key=key, Body=body))
        with ledger.lock:
            ledger.objects[key] = hashlib.sha256(body).hexdigest()
            victims = [k for k in ledger.objects if k not in ledger.deleted_objects]
        if self._turn % 3 == 0 and len(victims) > 4:
            victim = victims[0]
            try:
                self._call("delete", lambda: s3.delete_object(Bucket=BUCKET, Key=victim))
            except BotoCoreError:
                with ledger.lock:
                    ledger.maybe_deleted.add(victim)
                raise
            with ledger.lock:
                ledger.deleted_objects.add(victim)

    # -- instances and an elastic IP ------------------------------------------------------------

    def _instances(self) -> None:
        ec2 = self._ec2["instances"]
        [instance] = self._call("run", lambda: ec2.run_instances(
            ImageId=self.image_id, MinCount=1, MaxCount=1, InstanceType="m1.small"))["Instances"]
        with self.ledger.lock:
            self.ledger.instances.add(instance["InstanceId"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.stopping.is_set():
            [found] = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"]
            if found["State"]["Name"] == "running":
                self.running.append(instance["InstanceId"])
                break
            time.sleep(0.2)
        if self.running:
            target = self.running[-1]
            self._call("associate", lambda: ec2.associate_address(
                AllocationId=self.address["AllocationId"], InstanceId=target, AllowReassociation=True))
        while len(self.running) > 3:
            old = self.running.pop(0)
            self._call("terminate", lambda: ec2.terminate_instances(InstanceIds=[old]))

    # -- EBS ----------------------------------------------------------------------------------

    def _wait_volume(self, ec2: Any, volume_id: str, ready: Callable[[dict], bool]) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.stopping.is_set():
            if ready(ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]):
                return True
            time.sleep(0.2)
        return False

    def _ebs(self) -> None:
        ec2, ledger = self._ec2["ebs"], self.ledger
        volume = self._call("create-volume", lambda: ec2.create_volume(
            Size=1, AvailabilityZone=self.zone))["VolumeId"]
        with ledger.lock:
            ledger.volumes.add(volume)
        if not self._wait_volume(ec2, volume, lambda v: v["State"] == "available"):
            return
        if self.running:
            target = self.running[-1]
            self._call("attach", lambda: ec2.attach_volume(VolumeId=volume, InstanceId=target,
                                                           Device="/dev/sdf"))
            self._wait_volume(ec2, volume, lambda v: bool(v["Attachments"]) and
                              v["Attachments"][0]["State"] == "attached")
        snapshot = self._call("snapshot", lambda: ec2.create_snapshot(VolumeId=volume))["SnapshotId"]
        with ledger.lock:
            ledger.snapshots.add(snapshot)
        if self.running:
            self._call("detach", lambda: ec2.detach_volume(VolumeId=volume, Force=True))
            if not self._wait_volume(ec2, volume, lambda v: v["State"] == "available"):
                return
        self._call("delete-volume", lambda: ec2.delete_volume(VolumeId=volume))
        with ledger.lock:
            ledger.deleted_volumes.add(volume)


# ---------------------------------------------------------------------------- the checks

def _internal(cloud: Cloud, service: str, path: str, response: Any) -> Any:
    client = cloud.internal(service)
    try:
        return client.call("GET", path, response=response)
    finally:
        client.close()


def _all_instances(ec2: Any) -> list[dict]:
    return [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]


def differences(cloud: Cloud) -> list[str]:
    """Where the CLC's view and the other services' differ now; [] once converged."""
    ec2 = ec2_client(cloud, timeout=5)
    problems: list[str] = []
    instances = _all_instances(ec2)
    moving = [i["InstanceId"] for i in instances if i["State"]["Name"] in TRANSITIONAL_INSTANCE]
    if moving:
        problems.append(f"instances still moving: {moving}")
    clc_running = {i["InstanceId"] for i in instances if i["State"]["Name"] == "running"}
    zone = cloud.zone_instances().instances
    cc_running = [i.instance_id for i in zone if i.state == "running"]
    if sorted(cc_running) != sorted(clc_running):
        problems.append(f"running: CLC {sorted(clc_running)} != nodes {sorted(cc_running)}")
    node_disks = {(d.volume_id, i.instance_id) for i in zone if i.state == "running" for d in i.volumes}
    volumes = ec2.describe_volumes()["Volumes"]
    clc_disks = {(v["VolumeId"], a["InstanceId"]) for v in volumes for a in v["Attachments"]}
    if node_disks != clc_disks:
        problems.append(f"attachments: CLC {sorted(clc_disks)} != nodes {sorted(node_disks)}")
    moving = [v["VolumeId"] for v in volumes if v["State"] in TRANSITIONAL_VOLUME
              or any(a["State"] in ("attaching", "detaching") for a in v["Attachments"])]
    if moving:
        problems.append(f"volumes still moving: {moving}")
    sc_volumes = {v.volume_id: v for v in _internal(cloud, "sc", SC_VOLUMES_ROUTE, VolumeList).volumes
                  if v.state != "deleted"}
    clc_volumes = {v["VolumeId"] for v in volumes}
    if set(sc_volumes) != clc_volumes:
        problems.append(f"volumes: CLC {sorted(clc_volumes)} != SC {sorted(sc_volumes)}")
    for volume in volumes:
        exports = _internal(cloud, "sc", SC_EXPORTS_ROUTE.format(volume_id=volume["VolumeId"]),
                            VolumeExportList).exports if volume["VolumeId"] in sc_volumes else []
        if len(exports) != len(volume["Attachments"]):
            problems.append(f"{volume['VolumeId']}: {len(exports)} exports for "
                            f"{len(volume['Attachments'])} attachments")
    snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    pending = [s["SnapshotId"] for s in snapshots if s["State"] == "pending"]
    if pending:
        problems.append(f"snapshots pending: {pending}")
    sc_snapshots = {s.snapshot_id for s in _internal(cloud, "sc", SC_SNAPSHOTS_ROUTE, SnapshotList).snapshots
                    if s.state != "deleted"}
    clc_snapshots = {s["SnapshotId"] for s in snapshots}
    if sc_snapshots != clc_snapshots:
        problems.append(f"snapshots: CLC {sorted(clc_snapshots)} != SC {sorted(sc_snapshots)}")
    return problems


def converge(cloud: Cloud, since: float, timeout: float = 60) -> float:
    """Seconds from `since` until the views agree; fails with the differences after `timeout`."""
    problems: list[str] = []
    last: list[str] = []
    while time.monotonic() < since + timeout:
        try:
            problems = differences(cloud)
        except (ClientError, BotoCoreError, OSError) as exc:
            problems = [f"asking failed: {exc}"]
        if problems != last and os.environ.get("CRASH_VERBOSE"):
            print(f"{time.monotonic() - since:6.2f} s: {problems}")
        last = problems
        if not problems:
            return time.monotonic() - since
        time.sleep(0.1)
    raise AssertionError(f"not converged {timeout:g} s after the restart: {problems}")


def check(cloud: Cloud, ledger: Ledger) -> None:
    """Nothing the cloud answered as done is missing, nothing is there twice, and nothing is
    half-written."""
    s3, ec2 = s3_client(cloud), ec2_client(cloud)
    for key, digest in ledger.objects.items():
        if key in ledger.deleted_objects:
            try:
                s3.head_object(Bucket=BUCKET, Key=key)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] in ("404", "NoSuchKey"), exc
            else:
                raise AssertionError(f"{key} was deleted (answered 204) yet reads back")
            continue
        try:
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except ClientError as exc:
            if key in ledger.maybe_deleted and exc.response["Error"]["Code"] == "NoSuchKey":
                continue
            raise
        assert hashlib.sha256(body).hexdigest() == digest, f"{key} reads back other bytes"
    left = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert not {u["UploadId"] for u in left} & ledger.uploads_ended, left
    tmp = cloud.home / "walrus" / "objects" / "tmp"
    assert not list(tmp.iterdir()) if tmp.is_dir() else True, "half-written blobs left in Walrus"
    stored, named = walrus_bytes(cloud)
    assert stored == named, f"Walrus holds {stored - named} bytes no object or part names"

    instances = _all_instances(ec2)
    ids = [i["InstanceId"] for i in instances]
    assert len(ids) == len(set(ids)), "an instance is listed twice"
    assert ledger.instances <= set(ids), f"launched but gone: {ledger.instances - set(ids)}"
    on_nodes = [i.instance_id for i in cloud.zone_instances().instances if i.state != "terminated"]
    assert len(on_nodes) == len(set(on_nodes)), f"an instance runs twice: {on_nodes}"

    volumes = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert ledger.volumes - ledger.deleted_volumes <= volumes, \
        f"volumes gone: {ledger.volumes - ledger.deleted_volumes - volumes}"
    snapshots = {s["SnapshotId"]: s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert ledger.snapshots <= set(snapshots), f"snapshots gone: {ledger.snapshots - set(snapshots)}"


def walrus_bytes(cloud: Cloud) -> tuple[int, int]:
    """(bytes in Walrus's blob files, bytes its objects, versions and parts name) as an
    operator counts them: the files on disk, and what S3 lists for every bucket."""
    root = cloud.home / "walrus" / "objects"
    stored = sum(f.stat().st_size for folder in root.iterdir() if folder.name != "tmp"
                 for f in folder.iterdir())
    s3 = s3_client(cloud)
    named = 0
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            named += sum(v["Size"] for v in page.get("Versions", []))
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            parts = s3.list_parts(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
            named += sum(p["Size"] for p in parts.get("Parts", []))
    return stored, named


def prepare(cloud: Cloud) -> tuple[str, dict[str, str], str]:
    """The image, elastic IP, zone and bucket every run of the workload uses."""
    ec2 = ec2_client(cloud)
    image = cloud.register_image()
    address = ec2.allocate_address()
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    s3_client(cloud).create_bucket(Bucket=BUCKET)
    return image, {"AllocationId": address["AllocationId"], "PublicIp": address["PublicIp"]}, zone


def crash_and_restart(cloud: Cloud, service: str, image: str, address: dict[str, str], zone: str,
                      before: float = 2.0, outage: float = 1.0,
                      graceful: bool = False) -> tuple[Ledger, float]:
    """The workload runs; `service` is killed with SIGKILL (SIGTERM with `graceful`), stays
    down `outage` seconds and is started again on its port and state; the workload stops.
    Returns the ledger and the seconds from the restart (the service answering again) until
    the cloud converged."""
    ledger = Ledger()
    workload = Workload(cloud, image, ledger, address, zone).start()
    try:
        time.sleep(before)
        (cloud.stop if graceful else cloud.kill)(service)
        time.sleep(outage)
        cloud.restart(service)
        restarted = time.monotonic()
    finally:
        workload.stop()
    seconds = converge(cloud, restarted)
    return ledger, seconds


def end_instances(cloud: Cloud, ledger: Ledger) -> None:
    """Terminate what the workload launched, so the next run has the zone's room again."""
    ec2 = ec2_client(cloud)
    live = [i["InstanceId"] for i in _all_instances(ec2)
            if i["InstanceId"] in ledger.instances and i["State"]["Name"] not in ("terminated", "shutting-down")]
    if live:
        ec2.terminate_instances(InstanceIds=live)
        ec2.get_waiter("instance_terminated").wait(InstanceIds=live,
                                                   WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
