"""One service's state as describe-services reads it from its health route: what the service
says of itself (services/service_app.py's health_check), an error answer, and no answer."""

from __future__ import annotations

import socket

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.service_app import make_service_app
from services.service_states import Probe, probe


def app_saying(state: str | None, reason: str = "") -> FastAPI:
    app, _ = make_service_app("sc", "secret")
    if state is not None:
        app.state.health_check = lambda: (state, reason)
    return app


def test_a_service_that_answers_is_enabled_unless_it_says_otherwise() -> None:
    target = Probe("storage", "sc-zone-1", "zone-1", "http://testserver")
    with TestClient(app_saying(None)) as client:
        status = probe(target, client.get)
    assert (status.state, status.reason, status.host) == ("ENABLED", "", "testserver")
    with TestClient(app_saying("NOTREADY", "Walrus does not answer")) as client:
        status = probe(target, client.get)
    assert (status.state, status.reason) == ("NOTREADY", "Walrus does not answer")


def test_an_error_answer_is_notready() -> None:
    app = FastAPI()

    @app.get("/internal/health")
    def failing() -> None:
        raise RuntimeError("disk gone")

    with TestClient(app, raise_server_exceptions=False) as client:
        status = probe(Probe("cluster", "cc-zone-1", "zone-1", "http://testserver"), client.get)
    assert (status.state, status.reason) == ("NOTREADY", "its health check answered HTTP 500")


def test_no_answer_is_broken() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=2) as client:
        status = probe(Probe("walrus", "walrus", "eucalyptus", url), client.get)
    assert status.state == "BROKEN" and status.reason.startswith(f"not answering at {url}")
