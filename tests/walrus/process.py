"""Walrus as a real process, started as the launcher starts it (uvicorn on a listening socket
bound here, TLS files from Walrus's own server options) and configured through the
environment; waits for /internal/health instead of sleeping."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from services.config import CloudConfig
from services.launcher import listen, port_of, uvicorn_command
from services.messages.identity import AccessKeyInfo
from tests.support.waiting import wait_for
from walrus.app import server_options


@contextmanager
def walrus_process(home: Path, keys: list[AccessKeyInfo], https: bool = False,
                   **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    home.mkdir(parents=True, exist_ok=True)
    keys_file = home / "access-keys.json"
    keys_file.write_text(json.dumps([k.model_dump() for k in keys]))
    listener = listen()
    port = port_of(listener)
    environment = {**os.environ, "EUCASIM_HOME": str(home), "CLOUD_SECRET": "test-secret",
                   "WALRUS_PORT": str(port), "WALRUS_ACCESS_KEYS": str(keys_file),
                   "PUBLIC_HTTPS": "true" if https else "false", **env}
    command = uvicorn_command("walrus.app:create_app", listener)
    # The certificate and key Walrus's own entry point would serve (made here when missing).
    options = server_options(CloudConfig(**{k: v for k, v in environment.items()
                                            if k in CloudConfig.model_fields}))
    if "ssl_certfile" in options:
        command += ["--ssl-certfile", str(options["ssl_certfile"]),
                    "--ssl-keyfile", str(options["ssl_keyfile"])]
    with listener, open(home / "walrus.log", "ab") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                   pass_fds=(listener.fileno(),))
    scheme = "https" if https else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    ca = home / "tls" / "ca.pem"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"walrus exited: {(home / 'walrus.log').read_text()[-2000:]}")
        try:
            verify = ssl.create_default_context(cafile=str(ca)) if https else True
            return httpx.get(f"{url}/internal/health", verify=verify, timeout=1).status_code == 200
        except (httpx.HTTPError, OSError):  # not listening yet, or its CA not written yet
            return False

    try:
        wait_for(healthy, timeout=30, what="walrus to answer /internal/health")
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
