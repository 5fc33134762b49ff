"""A real SC process (uvicorn, as `eucasim up` starts it) beside a real Walrus process, sharing
the cloud admin's key the way a cloud does: the CLC writes it under
$EUCASIM_HOME/credentials, Walrus accepts it (here from WALRUS_ACCESS_KEYS, with no CLC).

    with walrus_for_sc(tmp) as walrus:
        with sc_process(tmp / "zone-1", walrus, SC_MAX_STORAGE="40") as sc:
            sc.call("POST", SC_VOLUMES_ROUTE, CreateVolume(...), VolumeInfo)
            sc.kill(); sc.start()      # a crash and a restart on the same port and state"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from pydantic import BaseModel

from services import credentials
from services.internal import InternalCallError, InternalClient
from services.messages.identity import AccessKeyInfo
from services.launcher import uvicorn_command
from tests.support.servers import PortHold
from tests.support.volume_data import FileData, VolumeData
from tests.support.waiting import wait_for
from tests.walrus.process import walrus_process

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret"  # what tests/walrus/process.py gives Walrus


@dataclass
class Walrus:
    url: str
    admin: AccessKeyInfo
    pid: int

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.url, region_name="eucalyptus",
                            aws_access_key_id=self.admin.access_key,
                            aws_secret_access_key=self.admin.secret_key,
                            config=Config(s3={"addressing_style": "path"}))


@contextmanager
def walrus_for_sc(home: Path) -> Iterator[Walrus]:
    admin = AccessKeyInfo(access_key="AKIA" + secrets.token_hex(8).upper(),
                          secret_key=secrets.token_urlsafe(30), account_id="000000000001",
                          account_name="eucalyptus", user_name="admin", is_admin=True)
    with walrus_process(home / "walrus", [admin]) as (url, process):
        yield Walrus(url, admin, process.pid)


@dataclass
class ScProcess:
    home: Path
    walrus: Walrus
    settings: dict[str, str]
    # Chosen and held from the start to the end of sc_process: a restart comes back on it.
    hold: PortHold = field(default_factory=PortHold)
    # How tests reach a volume's bytes on this SC's backend (SC_BACKEND).
    data: VolumeData = field(default_factory=FileData)
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.hold.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def volumes(self) -> Path:
        return self.home / "volumes"

    @property
    def backend(self) -> str:
        return self.settings.get("SC_BACKEND", "file")

    def locator(self, volume_id: str) -> str:
        """Where this SC keeps a volume (what it reports as the volume's path)."""
        if self.backend == "rbd":
            return f"rbd:{self.settings['SC_CEPH_POOL']}/{volume_id}"
        return str(self.volumes / f"{volume_id}.img")

    def log(self) -> str:
        path = self.home / "sc.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        credentials.write(self.home, credentials.UserCredentials(
            key=self.walrus.admin, endpoints=credentials.Endpoints(
                ec2="http://127.0.0.1:1", s3=self.walrus.url, region="eucalyptus")))
        env = {**os.environ, "EUCASIM_HOME": str(self.home), "CLOUD_SECRET": SECRET,
               "EUCASIM_CONF": str(self.home / "none.conf"), "WALRUS_URL": self.walrus.url,
               **self.settings}
        with self.hold.listener() as listener, open(self.home / "sc.log", "ab") as log:
            self.process = subprocess.Popen(uvicorn_command("sc.app:create_app", listener),
                                            cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, pass_fds=(listener.fileno(),))
        process = self.process

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"SC exited with {process.returncode}: {self.log()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/internal/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        # Generous: on a machine shared by many test runs the imports alone can take 20 s.
        wait_for(healthy, 120, "the SC to answer /internal/health")

    def stop(self) -> None:
        """SIGTERM: a clean stop, as Ctrl-C on `eucasim up` gives."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def call(self, method: str, path: str, body: BaseModel | None = None,
             response: type[BaseModel] | None = None) -> Any:
        client = InternalClient(self.url, SECRET, timeout=120)
        try:
            return client.call(method, path, body, response)
        finally:
            client.close()

    def error(self, method: str, path: str, body: BaseModel | None = None) -> tuple[int, str]:
        """(status, EC2 code) of a call that must fail."""
        try:
            self.call(method, path, body)
        except InternalCallError as exc:
            return exc.status, exc.detail["code"] if isinstance(exc.detail, dict) else str(exc.detail)
        raise AssertionError(f"{method} {path} succeeded")


@contextmanager
def sc_process(home: Path, walrus: Walrus, data: VolumeData | None = None,
               **settings: str) -> Iterator[ScProcess]:
    sc = ScProcess(home, walrus, settings, data=data or FileData())
    try:
        sc.start()
        yield sc
    finally:
        try:
            sc.stop()
        finally:
            sc.hold.close()
