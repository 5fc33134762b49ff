"""`eucasim up`: start every service of the cloud on this machine as its own process, wait
until each answers, and stop them all cleanly on Ctrl-C.

Services start in dependency order: the CLC first (it owns the access keys Walrus checks),
then Walrus, the node controllers, and the cluster controller that polls them.

A port configured as 0 means "any free port": the launcher binds a listening socket for it
before any child starts (so every service's URL is known to the others, and no other process
can take the port in between) and hands the socket to the child (uvicorn --fd)."""

from __future__ import annotations

import errno
import fcntl
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

import httpx

from services import port_owner
from services.config import KEEP_ALIVE_SECONDS, SECRET_FILE, CloudConfig
from services.tls import ensure_tls


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
    # Run the child under this command (the lab's `nsenter --net=…`): it then binds its own
    # socket inside that namespace, since a socket bound here would belong to this one.
    prefix: list[str] = field(default_factory=list)


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


LOCK_FILE = "up.lock"


class HomeInUse(RuntimeError):
    """Another `eucasim up` runs on this state directory."""


def lock_home(config: CloudConfig) -> IO[str]:
    """Hold the state directory for this `eucasim up` (until the process ends): two clouds on
    one state would share its databases. The file says which process holds it."""
    handle = open(config.EUCASIM_HOME / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise HomeInUse(f"another `eucasim up` (pid {holder}) is running on the state in "
                        f"{config.EUCASIM_HOME}; nothing was started.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


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


UVICORN_OPTIONS = ["--log-level", "warning", "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS)]


def uvicorn_command(factory: str, listener: socket.socket) -> list[str]:
    """Serve the app `factory` on an inherited listening socket: Popen it with
    pass_fds=(listener.fileno(),)."""
    return [sys.executable, "-m", "uvicorn", "--factory", factory, "--fd", str(listener.fileno()),
            *UVICORN_OPTIONS]


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
    bind_all(config, specs)
    nc_url = f"http://{config.PUBLIC_HOST}:{config.NC_PORT}"
    node_urls = " ".join(f"{nc_url}/node-{i}" for i in range(1, nodes + 1))
    for spec in specs:
        if spec.name == "cc":
            spec.env["NODES"] = config.NODES or node_urls
    return specs


class PortsInUse(RuntimeError):
    """Ports the cloud needs are taken: nothing was started."""


def _busy_message(busy: list[tuple[ServiceSpec, OSError]], host: str) -> str:
    lines = []
    for spec, error in busy:
        holders = port_owner.owners(spec.port)
        held = "; ".join(h.describe() for h in holders) if holders else \
            f"{error.strerror or error} (its holder is not visible to this user)"
        lines.append(f"port {spec.port} ({spec.name}) on {host} is already in use by {held}")
    return "\n".join(lines) + "\nNothing was started. Stop that program or choose other ports " \
        "(CLC_PORT, WALRUS_PORT, SC_PORT, NC_PORT, CC_PORT in eucalyptus.conf; 0 = any free port)."


def bind_all(config: CloudConfig, specs: list[ServiceSpec]) -> None:
    """Bind every service's port before any child starts, so that a port another program (or
    another cloud) holds is found now, with nothing started, rather than after a child fails
    to bind while the other program answers its health check. Ports configured as 0 get one
    the kernel chooses, and `config` learns it. PortsInUse names every busy port and its holder."""
    busy: list[tuple[ServiceSpec, OSError]] = []
    for spec in specs:
        if spec.prefix:  # it binds inside its own namespace
            continue
        try:
            spec.listener = listen(config.BIND_ADDRESS, spec.port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                _close_listeners(specs)
                raise
            busy.append((spec, exc))
            continue
        if spec.port == 0:
            spec.port = port_of(spec.listener)
            setattr(config, f"{spec.name.upper()}_PORT", spec.port)
    if busy:
        _close_listeners(specs)
        raise PortsInUse(_busy_message(busy, config.BIND_ADDRESS))


def _close_listeners(specs: list[ServiceSpec]) -> None:
    for spec in specs:
        if spec.listener is not None:
            spec.listener.close()
            spec.listener = None


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
          timeout: float = 60.0, started: list[RunningService] | None = None) -> list[RunningService]:
    """Start `specs` in order, each once the one before answers. A spec with a listener serves
    it (the launcher's copy is closed once the child has it, so the port dies with the child);
    every child is told every service's port, as chosen here. Each child is appended to
    `started` (given by a caller that must stop them whatever happens) the moment it exists."""
    started = [] if started is None else started
    logs = config.EUCASIM_HOME / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ports = {f"{spec.name.upper()}_PORT": str(spec.port) for spec in specs}
    try:
        for spec in specs:
            # Two malloc arenas, not eight per core: the services' worker threads otherwise
            # each spread freed memory over arenas of their own, and resident memory crept up
            # under many clients (benchmarks/README.md, "Load": Walrus +5 MiB instead of +22
            # over four minutes of 50 clients).
            env = {"MALLOC_ARENA_MAX": "2", **os.environ, "EUCASIM_HOME": str(config.EUCASIM_HOME),
                   "CLOUD_SECRET": config.CLOUD_SECRET, **ports, **spec.env}
            if spec.listener is not None:
                command = uvicorn_command(spec.factory, spec.listener)
            else:
                command = [sys.executable, "-m", "uvicorn", "--factory", spec.factory, "--host",
                           config.BIND_ADDRESS, "--port", str(spec.port), *UVICORN_OPTIONS]
            if spec.public and config.PUBLIC_HTTPS:
                files = ensure_tls(config)
                command += ["--ssl-certfile", str(files.certfile), "--ssl-keyfile", str(files.keyfile)]
            command = [*spec.prefix, *command]
            url = config.service_url(spec.name)  # before the child exists: nothing can orphan it
            inherited = (spec.listener.fileno(),) if spec.listener is not None else ()
            # A stop signal between fork and append would orphan the child: it waits until the
            # child is in `started`.
            with stop_signals_held(), open(logs / f"{spec.name}.log", "ab") as log:
                process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, pass_fds=inherited)
                service = RunningService(spec, process, url)
                started.append(service)
            if spec.listener is not None:
                spec.listener.close()
                spec.listener = None
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


# -- stop signals ------------------------------------------------------------------------------

_held = {"depth": 0, "pending": 0}


def _interrupt(signum: int, _frame: object) -> None:
    if _held["depth"]:
        _held["pending"] = signum
        return
    raise KeyboardInterrupt(signal.Signals(signum).name)


def handle_stop_signals() -> None:
    """SIGTERM and SIGHUP end `eucasim up` as Ctrl-C (SIGINT) does, by KeyboardInterrupt, so
    whatever the launcher is doing (starting a child, waiting for one, printing the banner),
    the code that stops its children runs."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """A stop signal that arrives inside is raised on leaving (not masked: a mask would be
    inherited by the children started inside)."""
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        if _held["depth"] == 0 and _held["pending"]:
            signum, _held["pending"] = _held["pending"], 0
            raise KeyboardInterrupt(signal.Signals(signum).name)


def stop(services: list[RunningService], grace: float = 10.0) -> None:
    """Stop in reverse order: SIGTERM, then SIGKILL whatever has not exited after `grace`.
    A second stop signal meanwhile does not cut this short."""
    _held["depth"] += 1
    try:
        _stop(services, grace)
    finally:
        _held["depth"] -= 1
        _held["pending"] = 0  # already stopping: a signal received meanwhile asks nothing more


def _stop(services: list[RunningService], grace: float) -> None:
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
    """Block until a stop signal (0; see handle_stop_signals) or until a service dies (1)."""
    try:
        while True:
            for service in services:
                if service.process.poll() is not None:
                    print(f"{service.spec.name} exited with code {service.process.returncode}",
                          file=sys.stderr)
                    return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
