"""A client's pooled connection stays usable between calls far enough apart: uvicorn's own
5 s keep-alive closed connections boto3 was about to reuse (ConnectionClosedError under the
50-client load, benchmarks/README.md)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from services.config import KEEP_ALIVE_SECONDS
from tests.support.cloud import Cloud

IDLE = 7.0  # past uvicorn's default of 5 s, well within ours


def _get(sock: socket.socket, host: str, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the service closed the connection")
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_an_idle_keep_alive_connection_is_still_served(isolation_cloud: Cloud) -> None:
    assert KEEP_ALIVE_SECONDS > IDLE
    urls = {name: urlsplit(isolation_cloud.config.service_url(name)) for name in ("clc", "walrus", "cc")}
    sockets = {name: socket.create_connection((url.hostname, url.port), timeout=30)
               for name, url in urls.items()}
    try:
        for name, sock in sockets.items():
            assert b" 200 " in _get(sock, urls[name].netloc, "/internal/health").split(b"\r\n")[0]
        time.sleep(IDLE)
        for name, sock in sockets.items():
            assert b" 200 " in _get(sock, urls[name].netloc, "/internal/health").split(b"\r\n")[0], name
    finally:
        for sock in sockets.values():
            sock.close()
