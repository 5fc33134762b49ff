"""What the EC2 benchmarks share: a cloud started as `eucasim up` starts it, a moto_server beside
it, boto3 clients for both, raw SigV4-signed HTTP (no boto3 parsing) and percentiles.

Each benchmark starts its own processes on free ports with its own EUCASIM_HOME and stops them
when it ends, even when it is interrupted (SIGTERM is turned into SystemExit by `main_guard`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services import credentials, launcher, readiness  # noqa: E402
from services.config import CloudConfig, load_config  # noqa: E402
from tests.support.servers import listen, port_of  # noqa: E402


def free_port() -> int:
    """A port free now, for a server process started next (a benchmark may lose the race to
    another program and fail; a test never uses this: tests/support/servers.py)."""
    with listen() as sock:
        return port_of(sock)


# eucalyptus.conf keys the benchmark process may carry in its environment; the services inherit
# the environment, so these are removed to get `eucasim up`'s defaults.
_CONFIG_KEYS = frozenset(CloudConfig.model_fields)


def main_guard() -> None:
    """A stopped benchmark still runs its `finally` blocks (and so stops what it started)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    for key in _CONFIG_KEYS & set(os.environ):
        del os.environ[key]


@dataclass
class Endpoint:
    """One EC2 endpoint under test: its URL, credentials, region, an image to launch, and the
    server process (for its CPU time)."""

    name: str
    url: str
    access_key: str
    secret_key: str
    region: str
    image_id: str
    instance_type: str
    pid: int

    def ec2(self) -> Any:
        return boto3.client("ec2", endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(retries={"max_attempts": 1}, read_timeout=600))

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def eucasim_cloud(nodes: int = 2, **settings: object) -> Iterator[Endpoint]:
    """The cloud as `eucasim up` starts it (its defaults: 2 simulated nodes, NC_POLLING_FREQUENCY
    6 s, cores and memory as this machine has), on free ports in a temporary EUCASIM_HOME, with
    its sample image registered as `eucasim up` registers it. `settings` override
    eucalyptus.conf keys where a benchmark needs more capacity than the defaults give."""
    with tempfile.TemporaryDirectory(prefix="bench-eucasim-") as home:
        env = {"EUCASIM_HOME": home, "PUBLIC_HOST": "127.0.0.1", "BIND_ADDRESS": "127.0.0.1",
               **{k: str(v) for k, v in settings.items()}}
        any_port = {name: 0 for name in ("CLC_PORT", "WALRUS_PORT", "SC_PORT", "CC_PORT", "NC_PORT")}
        config = launcher.ensure_home(load_config(**any_port, **env))
        # plan() binds every port now and writes it into config; start() tells each child all of them.
        specs = launcher.plan(config, nodes)
        for spec in specs:
            spec.env = {**env, **spec.env}
        services = launcher.start(config, specs, timeout=120)
        try:
            readiness.wait_nodes_up(config, nodes)
            image = readiness.register_tiny_image(config, services)
            assert image is not None
            key = credentials.read(Path(home)).key
            clc = next(s for s in services if s.spec.name == "clc")
            yield Endpoint("eucasim", config.service_url("clc"), key.access_key, key.secret_key,
                           config.REGION, image, "m1.small", clc.process.pid)
        finally:
            launcher.stop(services)



@contextmanager
def moto(region: str = "us-east-1") -> Iterator[Endpoint]:
    """moto_server (the test dependency) on a free port, with its first Amazon-owned AMI."""
    holder = listen()  # a free port, released just before moto_server binds it
    port = port_of(holder)
    holder.close()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        endpoint = Endpoint("moto_server", url, "testing", "testing", region, "", "t2.micro", server.pid)
        images = endpoint.ec2().describe_images(Owners=["amazon"])["Images"]
        endpoint.image_id = images[0]["ImageId"]
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


class RawEc2:
    """EC2 Query calls signed with botocore's SigV4Auth and sent with httpx: what a call costs
    without boto3's parameter validation and response parsing."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._credentials = Credentials(endpoint.access_key, endpoint.secret_key)
        self._http = httpx.Client(timeout=600)

    def call(self, action: str, **params: str) -> httpx.Response:
        body = urlencode({"Action": action, "Version": "2016-11-15", **params})
        request = AWSRequest(method="POST", url=self._endpoint.url + "/", data=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(self._credentials, "ec2", self._endpoint.region).add_auth(request)
        response = self._http.post(self._endpoint.url + "/", content=body.encode(),
                                   headers=dict(request.headers.items()))
        if response.status_code != 200:
            raise RuntimeError(f"{action}: HTTP {response.status_code}: {response.text[:500]}")
        return response

    def close(self) -> None:
        self._http.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def load_note() -> str:
    return f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs, CPython {sys.version.split()[0]}"
