"""Walrus as a real process (`python -m walrus`), configured through the environment as the
launcher configures it; waits for /internal/health instead of sleeping."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from services.messages.identity import AccessKeyInfo
from tests.support.servers import free_port
from tests.support.waiting import wait_for


@contextmanager
def walrus_process(home: Path, keys: list[AccessKeyInfo], https: bool = False,
                   **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    home.mkdir(parents=True, exist_ok=True)
    keys_file = home / "access-keys.json"
    keys_file.write_text(json.dumps([k.model_dump() for k in keys]))
    port = free_port()
    environment = {**os.environ, "EUCASIM_HOME": str(home), "CLOUD_SECRET": "test-secret",
                   "WALRUS_PORT": str(port), "WALRUS_ACCESS_KEYS": str(keys_file),
                   "PUBLIC_HTTPS": "true" if https else "false", **env}
    log = open(home / "walrus.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "walrus"], env=environment, stdout=log,
                               stderr=subprocess.STDOUT)
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
        log.close()
