"""Ports for the tests without races: every server listens on a socket bound before it starts.

    with running(app) as url:                 # an ASGI app in a thread, on a port of its own
        ...
    sock = listen()                           # the port is known (and ours) before the server runs
    config = make_config(..., CLC_PORT=port_of(sock))
    with running(create_clc(config), sock) as url:
        ...
    with refused_port() as port:              # a port where nothing listens, and nothing will
        ...

Subprocesses get their socket the same way (services.launcher.uvicorn_command, pass_fds)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from services.launcher import listen, port_of

__all__ = ["PortHold", "listen", "port_of", "refused_port", "running"]


@contextmanager
def running(app: object, sock: socket.socket | None = None) -> Iterator[str]:
    """Serve `app` on `sock` (default: a new socket on a free port) until the block ends;
    yields its base URL. The socket is closed at the end."""
    sock = sock or listen()
    port = port_of(sock)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {port} did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _bound(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


@contextmanager
def refused_port() -> Iterator[int]:
    """A port held by a socket that never listens: connections to it are refused, and no
    server asking the kernel for a free port is given it while the block runs."""
    with _bound(0) as sock:
        yield port_of(sock)


class PortHold:
    """One port for a service that is killed and started again on it (the others know its URL).

    A bound socket that never listens holds the port for the life of the hold, so between a
    kill and the next start connections are refused (as for a dead host) and the kernel gives
    the port to no one asking for a free one; `listener()` makes the socket each start hands to the new process —
    Linux lets it share the port with the holder because the holder never listens."""

    def __init__(self) -> None:
        self._holder = _bound(0)
        self.port = port_of(self._holder)

    def listener(self) -> socket.socket:
        """A listening socket on the port, for one process; the caller closes it."""
        return listen(port=self.port)

    def close(self) -> None:
        self._holder.close()
