"""Fifty concurrent clients for five minutes of mixed EC2 and S3 work against a cloud started by
`eucasim up` (as `make up` starts it, on a private EUCASIM_HOME and free ports): launches and
terminations, describes, tags, elastic IPs, volumes (the SC is up), and S3 puts, gets,
multipart uploads and deletes with SHA-256 checksums. Counts 5xx answers and other errors,
reads back every object the cloud said it stored, records p50/p99 per operation, and samples
each service's resident memory every 30 s (is it flat after the first minute?).

    nice .venv/bin/python benchmarks/load_mixed.py [--clients 50] [--seconds 300] [--json out.json]"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.support import load_note, main_guard, percentile  # noqa: E402
from tests.hardening.up_process import descendants, kill_leftovers, start_up  # noqa: E402

SERVICES = {"clc": "clc.app", "walrus": "walrus.app", "sc": "sc.app", "cc": "cc.app", "nc": "nc.multi"}
PART = 5 * 1024 * 1024
# Enough room for every client's instance at once: capacity is not what this measures.
SETTINGS = {"MAX_CORES": "40", "MAX_MEM": "65536", "MAX_DISK": "4000", "SC_MAX_STORAGE": "500"}
# Operation -> weight in each client's mix.
MIX = {"s3:put": 20, "s3:get": 15, "s3:delete": 5, "s3:multipart": 2, "ec2:describe-instances": 12,
       "ec2:run-or-terminate": 8, "ec2:tags": 10, "ec2:address": 8, "ec2:volume": 8,
       "ec2:describe-volumes": 6, "ec2:describe-addresses": 6}


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))       # "op code" -> n
    server_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # "op status code"
    objects: dict[str, str] = field(default_factory=dict)                            # key -> sha256
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, op: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            answer = call()
        except ClientError as error:
            status = error.response["ResponseMetadata"].get("HTTPStatusCode", 0)
            code = error.response["Error"].get("Code", "?")
            with self.lock:
                self.errors[f"{op} {code}"] += 1
                if status >= 500:
                    self.server_errors[f"{op} {status} {code}"] += 1
            raise
        except BotoCoreError as error:
            with self.lock:
                self.errors[f"{op} {type(error).__name__}"] += 1
            raise
        with self.lock:
            self.latencies[op].append(time.perf_counter() - started)
        return answer


class Client:
    """One user: its own boto3 clients, at most one instance, one address, one volume at a time."""

    def __init__(self, n: int, exports: dict[str, str], image: str, bucket: str, results: Results) -> None:
        region = exports.get("AWS_DEFAULT_REGION", "eucalyptus")
        keys = {"aws_access_key_id": exports["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": exports["AWS_SECRET_ACCESS_KEY"], "region_name": region}
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=60, read_timeout=120,
                        s3={"addressing_style": "path"})
        self.ec2 = boto3.client("ec2", endpoint_url=exports["AWS_ENDPOINT_URL_EC2"], config=config, **keys)
        self.s3 = boto3.client("s3", endpoint_url=exports["AWS_ENDPOINT_URL_S3"], config=config, **keys)
        self.n, self.image, self.bucket, self.r = n, image, bucket, results
        self.random = random.Random(n)
        self.keys: list[str] = []
        self.instance: str | None = None
        self.eip: dict[str, str] | None = None
        self.associated = False
        self.vol: str | None = None
        self.zone: str | None = None

    def run(self, deadline: float) -> None:
        ops, weights = list(MIX), list(MIX.values())
        while time.monotonic() < deadline:
            op = self.random.choices(ops, weights)[0]
            try:
                getattr(self, op.split(":")[1].replace("-", "_"))()
            except (ClientError, BotoCoreError):
                time.sleep(0.1)      # counted in Results; the client goes on, as a user would
        self.clean_up()

    # -- S3 -----------------------------------------------------------------------------------

    def put(self) -> None:
        body = secrets.token_bytes(self.random.randint(1, 256) * 1024)
        key = f"c{self.n}/{secrets.token_hex(6)}"
        self.r.timed("s3:put", lambda: self.s3.put_object(Bucket=self.bucket, Key=key, Body=body,
                                                          ChecksumAlgorithm="SHA256"))
        self.keys.append(key)
        with self.r.lock:
            self.r.objects[key] = hashlib.sha256(body).hexdigest()

    def get(self) -> None:
        if not self.keys:
            return self.put()
        key = self.random.choice(self.keys)
        answer = self.r.timed("s3:get", lambda: self.s3.get_object(Bucket=self.bucket, Key=key,
                                                                   ChecksumMode="ENABLED"))
        if hashlib.sha256(answer["Body"].read()).hexdigest() != self.r.objects[key]:
            with self.r.lock:
                self.r.errors["s3:get corrupt"] += 1

    def delete(self) -> None:
        if len(self.keys) < 3:
            return self.put()
        key = self.keys.pop(0)
        self.r.timed("s3:delete", lambda: self.s3.delete_object(Bucket=self.bucket, Key=key))
        with self.r.lock:
            del self.r.objects[key]

    def multipart(self) -> None:
        key = f"c{self.n}/mp-{secrets.token_hex(6)}"
        bodies = [secrets.token_bytes(PART), secrets.token_bytes(self.random.randint(1, 512) * 1024)]

        def upload() -> Any:
            upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key,
                                                        ChecksumAlgorithm="SHA256")["UploadId"]
            parts = [{"PartNumber": n, **{k: v for k, v in self.s3.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=body,
                ChecksumAlgorithm="SHA256").items() if k in ("ETag", "ChecksumSHA256")}}
                for n, body in enumerate(bodies, 1)]
            return self.s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                     MultipartUpload={"Parts": parts})
        self.r.timed("s3:multipart", upload)
        self.keys.append(key)
        with self.r.lock:
            self.r.objects[key] = hashlib.sha256(b"".join(bodies)).hexdigest()

    # -- EC2 ----------------------------------------------------------------------------------

    def describe_instances(self) -> None:
        if self.instance and self.random.random() < 0.5:
            self.r.timed("ec2:describe-instances", lambda: self.ec2.describe_instances(InstanceIds=[self.instance]))
        else:
            self.r.timed("ec2:describe-instances", lambda: self.ec2.describe_instances(
                Filters=[{"Name": "instance-state-name", "Values": ["running", "pending"]}]))

    def run_or_terminate(self) -> None:
        if self.instance is None:
            [found] = self.r.timed("ec2:run-instances", lambda: self.ec2.run_instances(
                ImageId=self.image, MinCount=1, MaxCount=1, InstanceType="m1.small"))["Instances"]
            self.instance, self.zone = found["InstanceId"], found["Placement"]["AvailabilityZone"]
            self.associated = False
        else:
            instance, self.instance, self.associated = self.instance, None, False
            self.r.timed("ec2:terminate-instances", lambda: self.ec2.terminate_instances(InstanceIds=[instance]))

    def tags(self) -> None:
        if self.instance is None:
            return self.run_or_terminate()
        tag = [{"Key": f"k{self.random.randint(0, 3)}", "Value": secrets.token_hex(4)}]
        self.r.timed("ec2:create-tags", lambda: self.ec2.create_tags(Resources=[self.instance], Tags=tag))
        self.r.timed("ec2:describe-tags", lambda: self.ec2.describe_tags(
            Filters=[{"Name": "resource-id", "Values": [self.instance]}]))

    def address(self) -> None:
        """One step of allocate -> associate -> disassociate -> release."""
        if self.eip is None:
            self.eip = self.r.timed("ec2:allocate-address", lambda: self.ec2.allocate_address(Domain="vpc"))
        elif not self.associated and self.instance is not None:
            self.r.timed("ec2:associate-address", lambda: self.ec2.associate_address(
                AllocationId=self.eip["AllocationId"], InstanceId=self.instance, AllowReassociation=True))
            self.associated = True
        elif self.associated:
            self.associated = False
            self.r.timed("ec2:disassociate-address", lambda: self.ec2.disassociate_address(
                PublicIp=self.eip["PublicIp"]))
        else:
            address, self.eip = self.eip, None
            self.r.timed("ec2:release-address", lambda: self.ec2.release_address(
                AllocationId=address["AllocationId"]))

    def volume(self) -> None:
        if self.vol is None:
            zone = self.zone or "zone-1"
            self.vol = self.r.timed("ec2:create-volume", lambda: self.ec2.create_volume(
                Size=1, AvailabilityZone=zone))["VolumeId"]
        else:
            volume, self.vol = self.vol, None
            state = self.ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"]
            if state != "available":
                self.vol = volume
                return
            self.r.timed("ec2:delete-volume", lambda: self.ec2.delete_volume(VolumeId=volume))

    def describe_volumes(self) -> None:
        self.r.timed("ec2:describe-volumes", lambda: self.ec2.describe_volumes())

    def describe_addresses(self) -> None:
        self.r.timed("ec2:describe-addresses", lambda: self.ec2.describe_addresses())

    def clean_up(self) -> None:
        for step in (lambda: self.instance and self.ec2.terminate_instances(InstanceIds=[self.instance]),
                     lambda: self.eip and self.ec2.release_address(AllocationId=self.eip["AllocationId"]),
                     lambda: self.vol and self.ec2.delete_volume(VolumeId=self.vol)):
            try:
                step()
            except (ClientError, BotoCoreError):
                pass


def service_pids(root: int) -> dict[str, list[int]]:
    """{service: its process and theirs below it} among `eucasim up`'s descendants."""
    found: dict[str, list[int]] = {name: [] for name in SERVICES}
    for pid in descendants(root):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        for name, module in SERVICES.items():
            if module in command:
                found[name] += [pid, *descendants(pid)]
    return found


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def sample_memory(pids: dict[str, list[int]], started: float, stop: threading.Event,
                  samples: list[dict[str, float]], every: float = 30) -> None:
    while True:
        samples.append({"t": round(time.monotonic() - started),
                        **{name: round(rss_mib(p), 1) for name, p in pids.items()}})
        if stop.wait(every):
            samples.append({"t": round(time.monotonic() - started),
                            **{name: round(rss_mib(p), 1) for name, p in pids.items()}})
            return


def verify(exports: dict[str, str], bucket: str, objects: dict[str, str]) -> list[str]:
    """Every object the cloud said it stored reads back with its SHA-256: the keys that do not."""
    s3 = boto3.client("s3", endpoint_url=exports["AWS_ENDPOINT_URL_S3"],
                      region_name=exports.get("AWS_DEFAULT_REGION", "eucalyptus"),
                      aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
                      config=Config(retries={"max_attempts": 3}, s3={"addressing_style": "path"},
                                    max_pool_connections=16))

    def bad(item: tuple[str, str]) -> str | None:
        key, digest = item
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            return f"{key}: {error.response['Error']['Code']}"
        return None if hashlib.sha256(body).hexdigest() == digest else f"{key}: checksum differs"
    with ThreadPoolExecutor(16) as pool:
        return [b for b in pool.map(bad, objects.items()) if b]


def table(results: Results, seconds: float) -> str:
    lines = ["| operation | calls | errors | 5xx | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|"]
    ops = sorted(set(results.latencies) | {e.split(" ")[0] for e in results.errors})
    for op in ops:
        done = results.latencies.get(op, [])
        errors = sum(n for e, n in results.errors.items() if e.split(" ")[0] == op)
        fives = sum(n for e, n in results.server_errors.items() if e.split(" ")[0] == op)
        p50 = f"{percentile(done, 0.5) * 1000:.0f}" if done else "-"
        p99 = f"{percentile(done, 0.99) * 1000:.0f}" if done else "-"
        lines.append(f"| {op} | {len(done) + errors} | {errors} | {fives} | {p50} | {p99} |")
    total = sum(len(v) for v in results.latencies.values())
    lines.append(f"\n{total} answered calls in {seconds:.0f} s ({total / seconds:.1f}/s)")
    return "\n".join(lines)


def memory_table(samples: list[dict[str, float]]) -> str:
    lines = ["| t (s) | " + " | ".join(SERVICES) + " |", "|---:|" + "---:|" * len(SERVICES)]
    lines += [f"| {s['t']} | " + " | ".join(f"{s[name]:.0f}" for name in SERVICES) + " |" for s in samples]
    return "\n".join(lines)


def main() -> None:
    main_guard()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--logs", type=Path, help="keep the services' logs here (e.g. to read a 5xx's traceback)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eucasim-load-") as home:
        up = start_up(Path(home), nodes=args.nodes, settings={"NC_POLLING_FREQUENCY": "6", **SETTINGS})
        pids: set[int] = set()
        try:
            up.banner()
            pids = descendants(up.process.pid)
            assert up.image_id, up.output
            exports = up.exports
            bucket = f"load-{secrets.token_hex(4)}"
            boto3.client("s3", endpoint_url=exports["AWS_ENDPOINT_URL_S3"],
                         region_name=exports.get("AWS_DEFAULT_REGION", "eucalyptus"),
                         aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
                         config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=bucket)
            results = Results()
            clients = [Client(n, exports, up.image_id, bucket, results) for n in range(args.clients)]
            samples: list[dict[str, float]] = []
            stop = threading.Event()
            started = time.monotonic()
            sampler = threading.Thread(target=sample_memory, args=(service_pids(up.process.pid), started,
                                                                    stop, samples), daemon=True)
            sampler.start()
            deadline = started + args.seconds
            threads = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            stop.set()
            sampler.join()
            bad = verify(exports, bucket, results.objects)
            print(f"{args.clients} clients, {elapsed:.0f} s, {args.nodes} nodes; {load_note()}")
            print(table(results, elapsed))
            print(f"objects verified: {len(results.objects) - len(bad)} of {len(results.objects)}"
                  + (f"; bad: {bad[:10]}" if bad else ""))
            print("errors:", dict(sorted(results.errors.items())) or "none")
            print("5xx:", dict(sorted(results.server_errors.items())) or "none")
            print("resident memory (MiB):")
            print(memory_table(samples))
            if args.json:
                args.json.write_text(json.dumps({
                    "clients": args.clients, "seconds": elapsed, "load": load_note(),
                    "latencies": {op: {"n": len(v), "p50": percentile(v, 0.5), "p99": percentile(v, 0.99)}
                                  for op, v in results.latencies.items()},
                    "errors": results.errors, "server_errors": results.server_errors,
                    "objects": len(results.objects), "bad_objects": bad, "memory": samples}, indent=1))
        finally:
            if up.process.poll() is None:
                up.process.terminate()
                try:
                    up.finish(timeout=90)
                except Exception:  # noqa: BLE001 - what is left is killed below
                    pass
            kill_leftovers(pids)
            if args.logs:
                shutil.copytree(Path(home) / "logs", args.logs, dirs_exist_ok=True)


if __name__ == "__main__":
    main()
