"""A real CLC on a port of its own (bound before it starts), and boto3 clients for its accounts."""

from __future__ import annotations

from tests.support import EMPTY_AWS_FILE

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from services.config import CloudConfig, load_config
from services.internal import InternalClient
from services.messages.admin import AccountCreated, NewAccount
from services.messages.identity import AccessKeyInfo

SECRET = "test-cloud-secret"
AWS = str(Path(sys.executable).parent / "aws")


@dataclass
class RunningClc:
    url: str
    config: CloudConfig
    admin: AccessKeyInfo

    def admin_client(self) -> InternalClient:
        return InternalClient(self.url, SECRET)

    def new_account(self, name: str) -> AccessKeyInfo:
        client = self.admin_client()
        try:
            return client.call("POST", "/internal/admin/accounts", NewAccount(name=name), AccountCreated).key
        finally:
            client.close()

    def ec2(self, key: AccessKeyInfo | None = None, **config: object):  # type: ignore[no-untyped-def]
        key = key or self.admin
        return boto3.client(
            "ec2", endpoint_url=self.url, region_name=self.config.REGION,
            aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key,
            config=Config(retries={"max_attempts": 1}, **config))  # type: ignore[arg-type]

    def cli_env(self, key: AccessKeyInfo | None = None) -> dict[str, str]:
        key = key or self.admin
        return {"AWS_ACCESS_KEY_ID": key.access_key, "AWS_SECRET_ACCESS_KEY": key.secret_key,
                "AWS_DEFAULT_REGION": self.config.REGION, "AWS_ENDPOINT_URL_EC2": self.url,
                "AWS_MAX_ATTEMPTS": "1", "AWS_CONFIG_FILE": EMPTY_AWS_FILE,
                "AWS_SHARED_CREDENTIALS_FILE": EMPTY_AWS_FILE}


@contextmanager
def running_clc(home: Path, **overrides: object) -> Iterator[RunningClc]:
    """The CLC as its own process (uvicorn, as `eucasim up` starts it) on a free port."""
    from services import credentials, launcher

    listener = launcher.listen()
    port = launcher.port_of(listener)
    settings = {key: str(value) for key, value in overrides.items()}
    config = load_config(EUCASIM_HOME=home, CLOUD_SECRET=SECRET, CLC_PORT=port, **overrides)
    spec = launcher.ServiceSpec("clc", "clc.app:create_app", port, env=settings, listener=listener)
    services = launcher.start(config, [spec])
    try:
        yield RunningClc(url=services[0].url, config=config, admin=credentials.read(home).key)
    finally:
        launcher.stop(services)


def aws_ec2(clc: "RunningClc", *args: str, key: AccessKeyInfo | None = None) -> subprocess.CompletedProcess[str]:
    """`aws ec2 ARGS --output json` as the AWS CLI user `key` (default: the admin)."""
    env = {**os.environ, **clc.cli_env(key)}
    return subprocess.run([AWS, "ec2", *args, "--output", "json"], env=env, capture_output=True,
                          text=True, timeout=60)


def error_of(excinfo: Any) -> tuple[int, str]:
    """(HTTP status, EC2 error code) of a boto3 ClientError caught by pytest.raises."""
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]
