"""The files and lines that point a user's tools at the cloud: eucarc and the credentials zip
(euca2ools and other Eucalyptus clients, as euca-get-credentials produced them), an AWS CLI
profile and shell exports. The CLC writes them at every start (under
EUCASIM_HOME/credentials: the zip's files unpacked, and the zip itself); `eucasim credentials`
and `eucasim env` print them."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import time
import zipfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel

from services import pki
from services.messages.identity import AccessKeyInfo


class Endpoints(BaseModel):
    ec2: str
    s3: str
    region: str
    ca_bundle: str | None = None


class UserCredentials(BaseModel):
    key: AccessKeyInfo
    endpoints: Endpoints


ZIP_NAME_PREFIX = "euca2-"


def credentials_dir(home: Path) -> Path:
    return home / "credentials"


# What euca-get-credentials put in a credentials zip: eucarc beside the files it names.
ZIP_COMMENT = b"To setup the environment run: source /path/to/eucarc"
KEY_DIR = "EUCA_KEY_DIR=$(cd $(dirname ${BASH_SOURCE:-$0}); pwd -P)"
# The services a Eucalyptus 3 cloud also ran; eucasim has none of them, and eucarc says so as
# Eucalyptus's did for a service not enabled.
ABSENT_SERVICES = ("EUARE URL", "TOKEN URL", "Auto Scaling service URL",
                   "Cloud Watch service URL", "Load Balancing service URL")


def key_base_name(user_name: str, cert_pem: bytes) -> str:
    """`euca2-<user>-<8 hex of the key's fingerprint>`: the name Eucalyptus gave a user's
    certificate and key files (`…-cert.pem`, `…-pk.pem`)."""
    public = x509.load_pem_x509_certificate(cert_pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"euca2-{user_name}-{hashlib.sha1(public).hexdigest()[:8]}"


def eucarc(creds: UserCredentials, base_name: str) -> str:
    """eucarc as euca-get-credentials wrote it (Eucalyptus 3): paths relative to the folder it
    is sourced from, the keys quoted, and the aliases for the EC2 bundling tools. Left out:
    EC2_JVM_ARGS (its Java trust store, for the Java API tools only) and EUSTORE_URL."""
    e, k = creds.endpoints, creds.key
    lines = [KEY_DIR, f"export EC2_URL={e.ec2}/services/Eucalyptus", f"export S3_URL={e.s3}"]
    lines += [f"echo WARN:  {name} is not configured. >&2" for name in ABSENT_SERVICES]
    lines += [
        f"export EC2_PRIVATE_KEY=${{EUCA_KEY_DIR}}/{base_name}-pk.pem",
        f"export EC2_CERT=${{EUCA_KEY_DIR}}/{base_name}-cert.pem",
        "export EUCALYPTUS_CERT=${EUCA_KEY_DIR}/cloud-cert.pem",
        f"export EC2_ACCOUNT_NUMBER='{k.account_id}'",
        f"export EC2_ACCESS_KEY='{k.access_key}'",
        f"export EC2_SECRET_KEY='{k.secret_key}'",
        f"export AWS_ACCESS_KEY='{k.access_key}'",
        f"export AWS_SECRET_KEY='{k.secret_key}'",
        "export AWS_CREDENTIAL_FILE=${EUCA_KEY_DIR}/iamrc",
        f"export EC2_USER_ID='{k.account_id}'",
        'alias ec2-bundle-image="ec2-bundle-image --cert ${EC2_CERT} --privatekey ${EC2_PRIVATE_KEY}'
        ' --user ${EC2_ACCOUNT_NUMBER} --ec2cert ${EUCALYPTUS_CERT}"',
        'alias ec2-upload-bundle="ec2-upload-bundle -a ${EC2_ACCESS_KEY} -s ${EC2_SECRET_KEY}'
        ' --url ${S3_URL}"',
    ]
    return "\n".join(lines) + "\n"


def iamrc(creds: UserCredentials) -> str:
    return f"AWSAccessKeyId={creds.key.access_key}\nAWSSecretKey={creds.key.secret_key}"


def credential_files(creds: UserCredentials, user_cert_pem: bytes, user_key_pem: bytes,
                     cloud_cert_pem: bytes) -> dict[str, bytes]:
    """The files of a credentials zip, by name, in Eucalyptus's order."""
    base = key_base_name(creds.key.user_name, user_cert_pem)
    return {"eucarc": eucarc(creds, base).encode(), "iamrc": iamrc(creds).encode(),
            "cloud-cert.pem": cloud_cert_pem, f"{base}-pk.pem": user_key_pem,
            f"{base}-cert.pem": user_cert_pem}


def credentials_zip(files: dict[str, bytes]) -> bytes:
    """The zip euca-get-credentials downloaded: every file private (0600)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.comment = ZIP_COMMENT
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            info.external_attr = (stat.S_IFREG | 0o600) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def user_credential_files(home: Path, creds: UserCredentials) -> dict[str, bytes]:
    """A user's credentials zip contents, with the certificate the cloud issues them (on the
    first call) and the cloud's certificate."""
    cloud = pki.ensure_cloud_ca(home)
    user = pki.ensure_user_certificate(home, creds.key.account_id, creds.key.user_name)
    return credential_files(creds, user.cert_path.read_bytes(), user.key_path.read_bytes(),
                            cloud.cert_path.read_bytes())


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
    euca = user_credential_files(home, creds)
    files: dict[str, bytes] = {
        **euca, "env": env_exports(creds).encode(), "aws-config": config.encode(),
        "aws-credentials": credentials.encode(),
        "admin.json": creds.model_dump_json(indent=2).encode(),
        f"{ZIP_NAME_PREFIX}{creds.key.user_name}-x509.zip": credentials_zip(euca)}
    for name, data in files.items():
        pki.write_atomic(folder / name, data, private=True)
    return folder


def read(home: Path) -> UserCredentials:
    path = credentials_dir(home) / "admin.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist yet: start the cloud once with `eucasim up`")
    return UserCredentials.model_validate(json.loads(path.read_text()))
