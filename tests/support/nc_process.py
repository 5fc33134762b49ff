"""Start a real NC process (uvicorn in a subprocess) for tests, kill it with SIGKILL, start it
again on the same port and state directory.

    with nc_process(tmp_path, "secret", max_cores=8, nodes=3, max_cores_per_node=[2, 4, 8]) as nc:
        client = InternalClient(nc.node_urls[0], "secret")
        ...
        nc.kill()          # SIGKILL: no shutdown, the test hypervisor forgets its domains
        nc.start()         # same port, same EUCASIM_HOME: the NC reconciles and restarts them

The port is chosen and held when the NcProcess is made (its URLs can be handed to a CC before
it starts) and kept until stop(): between a kill and a start, connections are refused.

`nodes=None` runs nc.app:create_app (one node at the base URL); a number runs
nc.multi:create_app with the nodes under /node-1 … /node-N."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from services.launcher import uvicorn_command
from tests.support.servers import PortHold

REPO = Path(__file__).resolve().parents[2]


def _csv(values: Sequence[int | None] | None) -> str:
    return ",".join("" if v is None else str(v) for v in values or [])


class NcProcess:
    def __init__(self, home: Path, secret: str, *, nodes: int | None = None,
                 max_cores: int | None = None, max_mem: int | None = None, max_disk: int | None = None,
                 max_cores_per_node: Sequence[int | None] | None = None,
                 max_mem_per_node: Sequence[int | None] | None = None,
                 max_disk_per_node: Sequence[int | None] | None = None,
                 cache_mb: int | None = None, node_id: str | None = None,
                 polling: float | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.home = Path(home).absolute()
        self.hold = PortHold()
        self.port = self.hold.port
        self.nodes = nodes
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.home / f"nc-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NC_", "MAX_", "EUCASIM_"))}
        env.update({"EUCASIM_HOME": str(self.home), "CLOUD_SECRET": secret,
                    "NC_PORT": str(self.port), "PUBLIC_HOST": "127.0.0.1",
                    "HYPERVISOR_URI": "test:///default", "PYTHONPATH": str(REPO)})
        optional = {"MAX_CORES": max_cores, "MAX_MEM": max_mem, "MAX_DISK": max_disk,
                    "NC_CACHE_SIZE": cache_mb, "NC_NODE_ID": node_id, "NC_POLLING_FREQUENCY": polling}
        env.update({k: str(v) for k, v in optional.items() if v is not None})
        if nodes is not None:
            env.update({"NC_SIMULATED_NODES": str(nodes),
                        "NC_SIMULATED_MAX_CORES": _csv(max_cores_per_node),
                        "NC_SIMULATED_MAX_MEM": _csv(max_mem_per_node),
                        "NC_SIMULATED_MAX_DISK": _csv(max_disk_per_node)})
        env.update(extra_env or {})
        self.env = env

    @property
    def node_urls(self) -> list[str]:
        """The base URL of each node this process serves."""
        if self.nodes is None:
            return [self.url]
        return [f"{self.url}/node-{n}" for n in range(1, self.nodes + 1)]

    def start(self, timeout: float = 30.0) -> NcProcess:
        factory = "nc.app:create_app" if self.nodes is None else "nc.multi:create_app"
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        with self.hold.listener() as listener:
            self.process = subprocess.Popen(uvicorn_command(factory, listener), env=self.env,
                                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                            pass_fds=(listener.fileno(),))
        log.close()
        health = f"{self.node_urls[-1]}/internal/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"NC exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"NC did not answer on {health} within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, nothing flushed — a crash or a pulled plug."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop the process for good and give up the port."""
        try:
            if self.process and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill()
        finally:
            self.hold.close()


@contextmanager
def nc_process(home: Path, secret: str, **options: object) -> Iterator[NcProcess]:
    """A started NC process, stopped at the end of the block (options: see NcProcess)."""
    process = NcProcess(home, secret, **options)  # type: ignore[arg-type]
    process.start()
    try:
        yield process
    finally:
        process.stop()
