"""Profile the CLC's EC2 request path in one process: the real app (create_app) in a temporary
EUCASIM_HOME, N instances written straight into its database (each in the default group and
with one tag), and raw SigV4-signed requests sent through httpx's ASGI transport. The handler's
thread hop is made synchronous so cProfile sees the whole request.

    .venv/bin/python -m benchmarks.profile_ec2 [--instances 1000] [--calls 20]
        [--action DescribeInstances|DescribeInstances1|DescribeSecurityGroups] [--profile] [--top 40]

Without --profile it prints the mean wall and CPU time per call (in-process, no network, no
other services: the CLC's own cost of the request, client included; CPU time holds steadier
than wall time on a shared machine)."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from benchmarks.support import main_guard


async def _direct(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def _populate(config: Any, count: int) -> tuple[str, str, str]:
    from clc.models.instances import Instance, InstanceGroup
    from clc.models.resources import Tag
    from services import credentials
    from services.db import Database

    key = credentials.read(config.EUCASIM_HOME).key
    db = Database(config.database_url("clc"))
    with db.session() as session:
        for n in range(count):
            iid = f"i-{secrets.token_hex(4)}"
            session.add(Instance(
                id=iid, reservation_id=f"r-{n // 100:08x}", account_id=key.account_id,
                image_id="emi-12345678", instance_type="m1.small", zone="zone-1", key_name=None,
                launch_index=n % 100, user_data_b64="", state="running", desired_state="running",
                state_transition_reason="", node="http://127.0.0.1:1/node-1", mac="d0:0d:00:00:00:01",
                private_ip=f"172.31.{n // 250}.{n % 250 + 2}", public_ip=None, vlan=10))
            session.add(InstanceGroup(instance_id=iid, group_id="sg-00000001", group_name="default"))
            session.add(Tag(account_id=key.account_id, resource_type="instance", resource_id=iid,
                            key="Name", value=f"node {n}"))
        last = iid
    db.engine.dispose()
    return key.access_key, key.secret_key, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--action", default="DescribeInstances")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    main_guard()
    import clc.ec2_endpoint
    from clc.app import create_app
    from services.config import load_config

    clc.ec2_endpoint.run_in_threadpool = _direct  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as home:
        config = load_config(EUCASIM_HOME=Path(home), CLOUD_SECRET="profile-secret",
                             PUBLIC_HOST="127.0.0.1", CLC_PORT=18773)
        app = create_app(config)
        access, secret, one = _populate(config, args.instances)
        creds = Credentials(access, secret)
        url = "http://127.0.0.1:18773/"
        params = {"DescribeInstances1": ("DescribeInstances", {"InstanceId.1": one})}.get(
            args.action, (args.action, {}))

        def signed() -> tuple[bytes, dict[str, str]]:
            body = urlencode({"Action": params[0], "Version": "2016-11-15", **params[1]})
            request = AWSRequest(method="POST", url=url, data=body, headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
            SigV4Auth(creds, "ec2", config.REGION).add_auth(request)
            return body.encode(), dict(request.headers.items())

        async def run() -> tuple[float, float]:
            requests = [signed() for _ in range(args.calls + 1)]
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=url) as client:
                first = await client.post("/", content=requests[0][0], headers=requests[0][1])
                assert first.status_code == 200, first.text[:500]
                profiler = cProfile.Profile() if args.profile else None
                started, cpu = time.perf_counter(), time.process_time()
                if profiler:
                    profiler.enable()
                for body, headers in requests[1:]:
                    response = await client.post("/", content=body, headers=headers)
                    assert response.status_code == 200, response.text[:500]
                if profiler:
                    profiler.disable()
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                if profiler:
                    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
                return elapsed / args.calls, cpu / args.calls

        per_call, cpu_per_call = asyncio.run(run())
        print(f"{args.action} over {args.instances} instances, in-process: "
              f"{per_call * 1000:.1f} ms wall, {cpu_per_call * 1000:.1f} ms CPU per call "
              f"(mean of {args.calls})")


if __name__ == "__main__":
    main()
