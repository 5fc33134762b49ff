"""`eucasim up`: start every service of the cloud on this machine as its own process, wait
until each answers, and stop them all cleanly on Ctrl-C.

Services start in dependency order: the CLC first (it owns the access keys Walrus checks),
then Walrus, the node controllers, and the cluster controller that polls them.

A port configured as 0 means "any free port": the launcher binds a listening socket for it
before any child starts (so every service's URL is known to the others, and no other process
can take the port in between) and hands the socket to the child (uvicorn --fd)."""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from services.config import SECRET_FILE, CloudConfig
from services.internal import InternalClient
from services.tls import ensure_tls
from services.messages.images import TINY_IMAGE_ROUTE, TinyImage


@dataclass
class ServiceSpec:
    name: str
    factory: str  # "package.module:create_app"
    port: int
    env: dict[str, str] = field(default_factory=dict)
    health_path: str = "/internal/health"
    public: bool = False  # a user-facing endpoint: served over HTTPS when PUBLIC_HTTPS is on
    # Already bound and listening (see listen()): the child serves it instead of binding `port`.
    listener: socket.socket | None = None


@dataclass
class RunningService:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    url: str


def ensure_home(config: CloudConfig) -> CloudConfig:
    """The state directory, the cloud's shared secret and (with PUBLIC_HTTPS) its CA and server
    certificate, created on the first start."""
    home = config.EUCASIM_HOME
    home.mkdir(parents=True, exist_ok=True)
    if config.PUBLIC_HTTPS:
        ensure_tls(config)
    secret_file = home / SECRET_FILE
    if not config.CLOUD_SECRET:
        if not secret_file.is_file():
            secret_file.write_text(secrets.token_hex(32) + "\n")
            secret_file.chmod(0o600)
        config.CLOUD_SECRET = secret_file.read_text().strip()
    return config


def available(factory: str) -> bool:
    """A service 'exists so far' when its app module can be found."""
    module = factory.split(":", 1)[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket for a service to inherit; port 0 lets the kernel choose one."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # uvicorn --fd wraps the socket as AF_UNIX, so asyncio never sets TCP_NODELAY on the
        # connections it accepts; Linux copies it from the listener instead. Without it a
        # response written in two parts waits for the client's delayed ACK (40 ms a request).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def uvicorn_command(factory: str, listener: socket.socket) -> list[str]:
    """Serve the app `factory` on an inherited listening socket: Popen it with
    pass_fds=(listener.fileno(),)."""
    return [sys.executable, "-m", "uvicorn", "--factory", factory, "--fd", str(listener.fileno()),
            "--log-level", "warning"]


def plan(config: CloudConfig, nodes: int) -> list[ServiceSpec]:
    """The services to start. Those whose port is configured as 0 get a listening socket now,
    and `config` learns the port the kernel chose (so the CC's node URLs below are right)."""
    specs = [
        ServiceSpec("clc", "clc.app:create_app", config.CLC_PORT, public=True),
        ServiceSpec("walrus", "walrus.app:create_app", config.WALRUS_PORT, public=True),
        ServiceSpec("sc", "sc.app:create_app", config.SC_PORT),
        ServiceSpec("nc", "nc.multi:create_app", config.NC_PORT,
                    env={"NC_SIMULATED_NODES": str(nodes)}, health_path="/node-1/internal/health"),
        ServiceSpec("cc", "cc.app:create_app", config.CC_PORT),
    ]
    specs = [s for s in specs if available(s.factory)]
    for spec in specs:
        if spec.port == 0:
            spec.listener = listen(config.BIND_ADDRESS)
            spec.port = port_of(spec.listener)
            setattr(config, f"{spec.name.upper()}_PORT", spec.port)
    nc_url = f"http://{config.PUBLIC_HOST}:{config.NC_PORT}"
    node_urls = " ".join(f"{nc_url}/node-{i}" for i in range(1, nodes + 1))
    for spec in specs:
        if spec.name == "cc":
            spec.env["NODES"] = config.NODES or node_urls
    return specs


def _wait_healthy(service: RunningService, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.spec.name} exited with code {service.process.returncode}; "
                               f"see {service.spec.name}.log in the state directory")
        try:
            if httpx.get(service.url + service.spec.health_path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{service.spec.name} did not answer on {service.url} within {timeout:.0f} s")


def start(config: CloudConfig, specs: list[ServiceSpec],
          on_started: Callable[[RunningService], None] | None = None,
          timeout: float = 60.0) -> list[RunningService]:
    """Start `specs` in order, each once the one before answers. A spec with a listener serves
    it (the launcher's copy is closed once the child has it, so the port dies with the child);
    every child is told every service's port, as chosen here."""
    started: list[RunningService] = []
    logs = config.EUCASIM_HOME / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ports = {f"{spec.name.upper()}_PORT": str(spec.port) for spec in specs}
    try:
        for spec in specs:
            env = {**os.environ, "EUCASIM_HOME": str(config.EUCASIM_HOME),
                   "CLOUD_SECRET": config.CLOUD_SECRET, **ports, **spec.env}
            if spec.listener is not None:
                command = uvicorn_command(spec.factory, spec.listener)
            else:
                command = [sys.executable, "-m", "uvicorn", "--factory", spec.factory, "--host",
                           config.BIND_ADDRESS, "--port", str(spec.port), "--log-level", "warning"]
            if spec.public and config.PUBLIC_HTTPS:
                files = ensure_tls(config)
                command += ["--ssl-certfile", str(files.certfile), "--ssl-keyfile", str(files.keyfile)]
            url = config.service_url(spec.name)  # before the child exists: nothing can orphan it
            inherited = (spec.listener.fileno(),) if spec.listener is not None else ()
            with open(logs / f"{spec.name}.log", "ab") as log:  # the child has its own copy
                process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, pass_fds=inherited)
            if spec.listener is not None:
                spec.listener.close()
                spec.listener = None
            service = RunningService(spec, process, url)
            started.append(service)
            _wait_healthy(service, timeout)
            if on_started:
                on_started(service)
    except BaseException:
        stop(started)
        raise
    finally:
        for spec in specs:  # those never started, when one before them failed
            if spec.listener is not None:
                spec.listener.close()
    return started


def register_tiny_image(config: CloudConfig, services: list[RunningService]) -> str | None:
    """A small public machine image, so a newcomer can run an instance at once (idempotent:
    later starts get the same id). Needs the CLC and Walrus."""
    names = {s.spec.name for s in services}
    if not {"clc", "walrus"} <= names:
        return None
    client = InternalClient(config.service_url("clc"), config.CLOUD_SECRET, timeout=120)
    try:
        return client.call("POST", TINY_IMAGE_ROUTE, response=TinyImage).image_id
    finally:
        client.close()


def stop(services: list[RunningService], grace: float = 10.0) -> None:
    """Stop in reverse order: SIGTERM, then SIGKILL whatever has not exited after `grace`."""
    for service in reversed(services):
        if service.process.poll() is None:
            service.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for service in reversed(services):
        try:
            service.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()


def wait_forever(services: list[RunningService]) -> int:
    """Block until Ctrl-C/SIGTERM or until a service dies; returns the exit code."""
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stopping:
        for service in services:
            if service.process.poll() is not None:
                print(f"{service.spec.name} exited with code {service.process.returncode}", file=sys.stderr)
                return 1
        time.sleep(0.2)
    return 0
