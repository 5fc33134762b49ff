"""Every service of the cloud and its state, as Eucalyptus's describe-services showed them:
asked of each service's own health route now, not read from a record. The CLC's admin API
answers with it (clc/service_status.py), and `eucasim describe-services` falls back to it when
the CLC itself does not answer.

A service that answers its health route says its state itself (ENABLED unless it says
otherwise); one that answers an error is NOTREADY; one that does not answer is BROKEN. A
cluster controller with no node up is NOTREADY: it cannot place an instance."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from services.config import CloudConfig
from services.internal import InternalCallError, InternalClient
from services.messages.admin import HEALTH_ROUTE, ServiceHealth, ServiceState, ServiceStatus
from services.messages.cluster import CC_NODES_ROUTE, NodeList

TIMEOUT = 2.0


@dataclass(frozen=True)
class Probe:
    type: str
    name: str
    zone: str
    url: str
    health_path: str = HEALTH_ROUTE


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def probe(target: Probe, get: Callable[[str], httpx.Response]) -> ServiceStatus:
    """One service's state from its health route."""
    state: ServiceState
    try:
        response = get(target.url + target.health_path)
    except httpx.TimeoutException:
        state, reason = "BROKEN", f"no answer from {target.url} within {TIMEOUT:g} s"
    except (httpx.HTTPError, OSError) as exc:
        state, reason = "BROKEN", f"not answering at {target.url}: {exc}"
    else:
        if response.status_code != 200:
            state, reason = "NOTREADY", f"its health check answered HTTP {response.status_code}"
        else:
            try:
                health = ServiceHealth.model_validate_json(response.content)
            except ValidationError:
                state, reason = "NOTREADY", "its health check answered something unreadable"
            else:
                state, reason = health.state, health.reason
    return ServiceStatus(type=target.type, name=target.name, zone=target.zone,
                         host=_host(target.url), url=target.url, state=state, reason=reason)


def _nodes(config: CloudConfig, cc_url: str) -> NodeList | str:
    """The nodes the cluster controller at `cc_url` knows, or why they cannot be known."""
    client = InternalClient(cc_url, config.CLOUD_SECRET, timeout=TIMEOUT)
    try:
        return client.call("GET", CC_NODES_ROUTE, None, NodeList)
    except (InternalCallError, httpx.HTTPError, OSError, ValidationError) as exc:
        return f"the cluster controller cannot list its nodes: {exc}"
    finally:
        client.close()


# (service, zone) -> (its name, its URL): where a zone's CC ("cc") or SC ("sc") is.
Locate = Callable[[str, str], tuple[str, str]]


def describe_services(config: CloudConfig, *, self_url: str | None = None,
                      locate: Locate | None = None) -> list[ServiceStatus]:
    """Every service: the CLC and Walrus, each zone's cluster and storage controllers (where
    `locate` says: the CLC knows those registered on other hosts; else the configured ones),
    and the node controllers each CC knows (or, when the configured CC cannot say, those of
    NODES). `self_url` is the caller's own URL, answered ENABLED without asking itself."""
    def configured(service: str, zone: str) -> tuple[str, str]:
        return f"{service}-{zone}", config.service_url(service)
    where = locate or configured
    region = config.REGION
    targets = [Probe("eucalyptus", "clc", region, config.service_url("clc")),
               Probe("walrus", "walrus", region, config.service_url("walrus"))]
    clusters: dict[str, list[str]] = {}   # CC URL -> the names it goes by
    for zone in config.zones:
        cc_name, cc_url = where("cc", zone)
        sc_name, sc_url = where("sc", zone)
        targets += [Probe("cluster", cc_name, zone, cc_url), Probe("storage", sc_name, zone, sc_url)]
        clusters.setdefault(cc_url, []).append(cc_name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        listings = dict(zip(clusters, pool.map(lambda url: _nodes(config, url), clusters), strict=True))
    known = [n for n in listings.values() if isinstance(n, NodeList)]
    node_targets = [(n.name, n.url, listing.zone) for listing in known for n in listing.nodes]
    if isinstance(listings.get(config.service_url("cc")), str):
        zone = config.zones[0] if config.zones else region
        node_targets += [(url, url, zone) for url in config.nodes]
    targets += [Probe("node", name, zone, url.rstrip("/")) for name, url, zone in node_targets]

    with httpx.Client(timeout=TIMEOUT) as http, ThreadPoolExecutor(max_workers=8) as pool:
        def one(target: Probe) -> ServiceStatus:
            if self_url is not None and target.url == self_url.rstrip("/"):
                return ServiceStatus(type=target.type, name=target.name, zone=target.zone,
                                     host=_host(target.url), url=target.url, state="ENABLED")
            return probe(target, http.get)
        found = list(pool.map(one, targets))

    nodes = {n.name: n for listing in known for n in listing.nodes}
    for status in found:
        listing = listings.get(status.url) if status.type == "cluster" else None
        if isinstance(listing, NodeList) and status.state == "ENABLED":
            # An asleep node (POWERSAVE) wakes for a launch: it counts as one the zone can use.
            if not [n for n in listing.nodes if n.state in ("up", "asleep")]:
                status.state, status.reason = "NOTREADY", "no node controller is up"
        elif status.type == "node" and status.state == "ENABLED" and status.name in nodes:
            node = nodes[status.name]
            if node.state == "asleep":
                status.reason = "asleep (POWERSAVE): woken for the next launch that needs it"
            elif node.state != "up":
                status.state = "NOTREADY"
                status.reason = (f"the cluster controller has it {node.state}"
                                 + (f": {node.last_error}" if node.last_error else ""))
    return found
