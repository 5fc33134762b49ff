"""Running the command-line clients (AWS CLI, s3cmd) against a Walrus, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.messages.identity import AccessKeyInfo

AWS = str(Path(sys.executable).parent / "aws")


def aws(server, who: AccessKeyInfo, *args: str, check: bool = True,  # type: ignore[no-untyped-def]
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": who.access_key,
           "AWS_SECRET_ACCESS_KEY": who.secret_key, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_MAX_ATTEMPTS": "1"}
    env.pop("AWS_PROFILE", None)
    if server.ca_bundle:
        env["AWS_CA_BUNDLE"] = server.ca_bundle
    result = subprocess.run([AWS, "--endpoint-url", server.url, *args], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def s3cmd_config(server, who: AccessKeyInfo, path: Path, *, v2: bool,  # type: ignore[no-untyped-def]
                 virtual_host: bool) -> Path:
    hostport = server.url.split("://", 1)[1]
    port = hostport.rsplit(":", 1)[1]
    path.write_text("\n".join([
        "[default]",
        f"access_key = {who.access_key}",
        f"secret_key = {who.secret_key}",
        f"host_base = {hostport}" if not virtual_host else f"host_base = localhost:{port}",
        f"host_bucket = %(bucket)s.localhost:{port}" if virtual_host else f"host_bucket = {hostport}",
        "use_https = False",
        f"signature_v2 = {'True' if v2 else 'False'}",
        "bucket_location = us-east-1",
        "check_ssl_certificate = False",
        "guess_mime_type = False",
        # *.localhost need not resolve here: s3cmd reaches Walrus as its "proxy", sending
        # absolute URLs and the virtual host in the Host header, exactly as it signs them.
        f"proxy_host = {'127.0.0.1' if virtual_host else ''}",
        f"proxy_port = {port if virtual_host else 0}",
        "",
    ]))
    return path


def s3cmd(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["/usr/bin/s3cmd", "-c", str(config), "--no-progress", *args],
                            capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"s3cmd {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result
