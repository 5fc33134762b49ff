"""Every service's internal routes refuse a caller without the cloud's secret: unsigned, signed
with another secret, signed too long ago, or carrying a signature made for another path or
another body. Each answers 403 with a message that says which, and changes nothing.

The routes come from each service itself (its signed GET /internal/routes), not from a list
kept here: a route added tomorrow is tried tomorrow. Only the few routes that are public on
purpose are named below, and a test checks that nothing else is public."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from services.internal import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signed_headers
from services.messages.admin import ROUTES_ROUTE, RouteList
from tests.support.cloud import SECRET, Cloud

SERVICES = ("clc", "walrus", "sc", "cc", "nc")
FAST = {"Delay": 0.5, "MaxAttempts": 120}

# Internal routes anyone may call: the launcher's and `eucasim status`'s health checks, and
# Prometheus's scrape.
PUBLIC_INTERNAL = {("GET", "/internal/health"), ("GET", "/internal/metrics"),
                   ("GET", "/{node}/internal/health")}
# Routes outside /internal/, each with its own door: the EC2 API (signed per account), the
# metadata service (per instance), the web console (its own sign-in), and /metrics.
EC2_PATHS = {"/", "/services/Eucalyptus", "/services/Eucalyptus/", "/services/compute",
             "/services/compute/"}


def _public_outside(service: str, method: str, path: str) -> bool:
    if (method, path) == ("GET", "/metrics"):
        return True
    if service != "clc":
        return False
    return (path in EC2_PATHS and method in {"GET", "POST"}) or path.startswith("/console") \
        or path == "/latest/api/token" or path.startswith("/{version}/")


@pytest.fixture(scope="module")
def cloud(isolation_cloud: Cloud) -> Cloud:
    return isolation_cloud


@pytest.fixture(scope="module")
def routes(cloud: Cloud) -> dict[str, list[tuple[str, str]]]:
    """{service: [(method, path template)]} as each service lists them."""
    listed = {}
    for service in SERVICES:
        client = cloud.internal(service)
        try:
            answer = client.call("GET", ROUTES_ROUTE, response=RouteList)
        finally:
            client.close()
        listed[service] = [(r.method, r.path) for r in answer.routes]
    return listed


@pytest.fixture(scope="module")
def values(cloud: Cloud, isolation_image: str) -> dict[str, str]:
    """Real things to fill the routes' parameters with, so that a route that let a caller
    through would change something the test looks at: a running instance, a volume, the
    admin's key, a VM type, the node, the zone."""
    ec2 = cloud.ec2()
    [instance] = ec2.run_instances(ImageId=isolation_image, MinCount=1, MaxCount=1)["Instances"]
    zone = instance["Placement"]["AvailabilityZone"]
    volume = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]], WaiterConfig=FAST)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=FAST)
    return {"instance_id": instance["InstanceId"], "volume_id": volume, "snapshot_id": "snap-0badc0de",
            "access_key": cloud.admin.access_key, "name": "node-1", "node": "node-1",
            "zone": zone, "bucket": "test-images", "key": "probe.manifest.xml",
            "request_id": "probe", "type": "cluster"}


def _fill(path: str, values: dict[str, str], service: str) -> str:
    for name, value in values.items():
        if service == "clc" and name == "name":
            # The CLC's {name} is a property's, a zone service's or a VM type's; the CC's a node's.
            value = ("cluster.scheduling_policy" if "/properties/" in path
                     else "cc-zone-1" if "/zone-services/" in path else "m1.small")
        path = path.replace(f"{{{name}}}", value).replace(f"{{{name}:path}}", value)
    assert "{" not in path, f"no value for a parameter of {path}"
    return path


def _guarded(routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, p) for m, p in routes if "/internal/" in p and (m, p) not in PUBLIC_INTERNAL]


# -- the ways to call without the secret ---------------------------------------------------------

BODY = b"{}"
Forge = Callable[[str, str], dict[str, str]]


def _unsigned(method: str, path: str) -> dict[str, str]:
    return {}


def _wrong_secret(method: str, path: str) -> dict[str, str]:
    return signed_headers("not-" + SECRET, method, path, BODY)


def _stale(method: str, path: str) -> dict[str, str]:
    timestamp = str(int(time.time()) - 600)
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(SECRET, method, path, BODY, timestamp)}


def _replayed_from_another_path(method: str, path: str) -> dict[str, str]:
    # A signature seen on the wire for a harmless call, sent again on this one.
    seen = "/internal/trace/seen" if path == ROUTES_ROUTE else ROUTES_ROUTE
    return signed_headers(SECRET, "GET", seen)


def _replayed_with_another_body(method: str, path: str) -> dict[str, str]:
    return signed_headers(SECRET, method, path, b'{"seen": "another body"}')


FORGERIES: dict[str, tuple[Forge, str]] = {
    "unsigned": (_unsigned, "need a signed call"),
    "wrong-secret": (_wrong_secret, "signature does not match"),
    "stale": (_stale, "away from this host's clock"),
    "replayed-path": (_replayed_from_another_path, "signature does not match"),
    "replayed-body": (_replayed_with_another_body, "signature does not match"),
}


# -- what must not change ------------------------------------------------------------------------

# What moves by itself on a loaded machine: the CC's view of its last poll of a node, and the
# CLC's live health view of every service.
# ... and "host": a node's real figures (free disk, memory) move with whatever else the
# machine runs, e.g. the other test worker.
VOLATILE = {"last_seen", "idle_since", "missed_polls", "last_error", "host"}
UNSTEADY_ROUTES = ("/trace", "/console", "/metrics", "/internal/admin/services")


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


def _state(cloud: Cloud, routes: dict[str, list[tuple[str, str]]], values: dict[str, str]) -> dict:
    """What every service answers, signed, to each of its internal GET routes (but those
    that move by themselves), and the admin's EC2 view."""
    state: dict[str, Any] = {}
    for service, listed in routes.items():
        client = cloud.internal(service)
        try:
            for method, path in _guarded(listed):
                if method != "GET" or any(word in path for word in UNSTEADY_ROUTES):
                    continue
                try:
                    answer = client.call("GET", _fill(path, values, service))
                except Exception as error:  # noqa: BLE001 - a 404 for a probe value is state too
                    answer = str(getattr(error, "status", error))
                state[f"{service} {path}"] = _steady(answer)
        finally:
            client.close()
    ec2 = cloud.ec2()
    state["ec2 instances"] = sorted((i["InstanceId"], i["State"]["Name"])
                                    for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])
    state["ec2 volumes"] = sorted((v["VolumeId"], v["State"]) for v in ec2.describe_volumes()["Volumes"])
    return state


@pytest.fixture(scope="module")
def http(cloud: Cloud) -> Iterator[dict[str, httpx.Client]]:
    clients = {s: httpx.Client(base_url=cloud.config.service_url(s), timeout=30) for s in SERVICES}
    yield clients
    for client in clients.values():
        client.close()


@pytest.mark.parametrize("service", SERVICES)
def test_internal_routes_refuse_callers_without_the_secret(cloud: Cloud, routes, values, http,
                                                            service: str) -> None:
    guarded = _guarded(routes[service])
    assert ("GET", ROUTES_ROUTE) in guarded and len(guarded) > 4, routes[service]
    before = _state(cloud, routes, values)
    wrong = []
    for forgery, (forge, message) in FORGERIES.items():
        for method, template in guarded:
            path = _fill(template, values, service)
            answer = http[service].request(method, path, content=BODY, headers={
                "content-type": "application/json", **forge(method, path)})
            detail = answer.json().get("detail", "") \
                if answer.headers.get("content-type") == "application/json" else ""
            if answer.status_code != 403 or message not in str(detail):
                wrong.append(f"{forgery}: {method} {path}: {answer.status_code} {answer.text[:200]}")
    assert wrong == [], f"{service} let a call without the secret through, or answered it unclearly"
    after = _state(cloud, routes, values)
    assert {k: v for k, v in after.items() if before.get(k) != v} == {}


def test_a_signed_call_still_passes(cloud: Cloud, routes, values) -> None:
    """The forgeries above fail for what is wrong with them, not because every call fails."""
    client = cloud.internal("sc")
    try:
        answer = client.call("GET", _fill("/internal/volumes/{volume_id}", values, "sc"))
    finally:
        client.close()
    assert answer["volume_id"] == values["volume_id"]


@pytest.mark.parametrize("service", SERVICES)
def test_only_the_listed_routes_are_public(cloud: Cloud, routes, http, service: str) -> None:
    public = [(m, p) for m, p in routes[service]
              if (m, p) not in PUBLIC_INTERNAL and "/internal/" not in p]
    assert [(m, p) for m, p in public if not _public_outside(service, m, p)] == []
    for method, path in PUBLIC_INTERNAL:
        if (method, path) in routes[service]:
            path = path.replace("{node}", "node-1")
            assert http[service].get(path).status_code == 200, path
    # No API description for whoever asks (FastAPI's /docs, /redoc, /openapi.json).
    for path in ("/docs", "/redoc", "/openapi.json"):
        answer = http[service].get(path, follow_redirects=True)
        described = ('"openapi"' in answer.text or "swagger" in answer.text.lower()
                     or "redoc.standalone" in answer.text)
        assert answer.status_code == 404 and not described, (path, answer.text[:200])
    # The routes' list itself is internal.
    assert http[service].get(ROUTES_ROUTE).status_code == 403
    assert json.loads(http[service].get(ROUTES_ROUTE).text)["detail"].startswith("internal routes need")
