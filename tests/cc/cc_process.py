"""Start a real CC process (uvicorn on a listening socket bound here, its own EUCASIM_HOME) for
the tests, and wait for it to answer."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path


import httpx

from services.internal import InternalClient
from services.launcher import listen, port_of, uvicorn_command
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CcProcess:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    client: InternalClient
    settings: dict[str, str]

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.home.glob("cc-*.log"))

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"CC exited with {self.process.returncode}: {self.log()[-2000:]}")
            try:
                return httpx.get(f"{self.url}/internal/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 90, "the CC to answer")  # a cold start on a busy machine

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _die_with_parent() -> None:
    """Linux: the CC gets SIGTERM if the test process dies first, so no CC outlives a run."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_cc(home: Path, secret: str, wait: bool = True, **settings: str | float | int) -> CcProcess:
    """Start the CC; with wait=False, call `.wait_healthy()` later (so an NC can start meanwhile)."""
    home.mkdir(parents=True, exist_ok=True)
    listener = listen()
    port = port_of(listener)
    env = {**os.environ, "EUCASIM_HOME": str(home), "CLOUD_SECRET": secret, "CC_PORT": str(port),
           "EUCASIM_CONF": str(home / "none.conf")}
    env.update({k: str(v) for k, v in settings.items()})
    with listener, open(home / f"cc-{port}.log", "wb") as log:
        process = subprocess.Popen(uvicorn_command("cc.app:create_app", listener), cwd=ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=_die_with_parent, pass_fds=(listener.fileno(),))
    url = f"http://127.0.0.1:{port}"
    cc = CcProcess(url, home, process, InternalClient(url, secret),
                   {k: str(v) for k, v in settings.items()})
    if wait:
        cc.wait_healthy()
    return cc
