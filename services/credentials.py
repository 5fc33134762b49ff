"""The files and lines that point a user's tools at the cloud: eucarc (euca2ools), an AWS CLI
profile and shell exports. The CLC writes them at first start; `eucasim credentials` and
`eucasim env` print them."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from services.messages.identity import AccessKeyInfo


class Endpoints(BaseModel):
    ec2: str
    s3: str
    region: str
    ca_bundle: str | None = None


class UserCredentials(BaseModel):
    key: AccessKeyInfo
    endpoints: Endpoints


def credentials_dir(home: Path) -> Path:
    return home / "credentials"


def eucarc(creds: UserCredentials) -> str:
    e, k = creds.endpoints, creds.key
    lines = [
        f"export EC2_URL={e.ec2}/services/compute",
        f"export S3_URL={e.s3}",
        f"export EC2_ACCESS_KEY={k.access_key}",
        f"export EC2_SECRET_KEY={k.secret_key}",
        f"export AWS_ACCESS_KEY={k.access_key}",
        f"export AWS_SECRET_KEY={k.secret_key}",
        f"export EC2_ACCOUNT_NUMBER={k.account_id}",
        f"export EC2_USER_ID={k.account_id}",
    ]
    return "\n".join(lines) + "\n"


def env_exports(creds: UserCredentials) -> str:
    e, k = creds.endpoints, creds.key
    lines = [
        f"export AWS_ACCESS_KEY_ID={k.access_key}",
        f"export AWS_SECRET_ACCESS_KEY={k.secret_key}",
        f"export AWS_DEFAULT_REGION={e.region}",
        f"export AWS_ENDPOINT_URL_EC2={e.ec2}",
        f"export AWS_ENDPOINT_URL_S3={e.s3}",
    ]
    if e.ca_bundle:
        lines.append(f"export AWS_CA_BUNDLE={e.ca_bundle}")
    return "\n".join(lines) + "\n"


def aws_profile(creds: UserCredentials, name: str = "eucasim") -> tuple[str, str]:
    """(config section, credentials section) for ~/.aws/config and ~/.aws/credentials."""
    e, k = creds.endpoints, creds.key
    config = [f"[profile {name}]", f"region = {e.region}", "services = " + name, "",
              f"[services {name}]", "ec2 =", f"  endpoint_url = {e.ec2}", "s3 =",
              f"  endpoint_url = {e.s3}"]
    if e.ca_bundle:
        config.insert(2, f"ca_bundle = {e.ca_bundle}")
    creds_section = [f"[{name}]", f"aws_access_key_id = {k.access_key}",
                     f"aws_secret_access_key = {k.secret_key}"]
    return "\n".join(config) + "\n", "\n".join(creds_section) + "\n"


def write(home: Path, creds: UserCredentials) -> Path:
    folder = credentials_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    config, credentials = aws_profile(creds)
    files = {"eucarc": eucarc(creds), "env": env_exports(creds), "aws-config": config,
             "aws-credentials": credentials, "admin.json": creds.model_dump_json(indent=2)}
    for name, text in files.items():
        path = folder / name
        path.write_text(text)
        path.chmod(0o600)
    return folder


def read(home: Path) -> UserCredentials:
    path = credentials_dir(home) / "admin.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist yet: start the cloud once with `eucasim up`")
    return UserCredentials.model_validate(json.loads(path.read_text()))
