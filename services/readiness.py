"""Whether a started cloud can do what its banner promises: every node up in the CC, the CLC's
capacity view of each zone counting them, and the tiny image registered. `eucasim up`, the
experiments and the benchmarks wait here after services.launcher has started the processes."""

from __future__ import annotations

import time

import httpx

from services.config import CloudConfig
from services.internal import InternalCallError, InternalClient
from services.launcher import RunningService
from services.messages.cluster import (CC_NODES_ROUTE, CLC_ZONE_CAPACITY_ROUTE, NodeList,
                                       ZoneCapacity)
from services.messages.images import TINY_IMAGE_ROUTE, TinyImage


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


def wait_nodes_up(config: CloudConfig, nodes: int, timeout: float = 60.0) -> None:
    """Until the CC reports `nodes` nodes up (a cloud of many simulated nodes, before the CLC
    has seen them all: the benchmarks and experiments start launching from here)."""
    client = InternalClient(config.service_url("cc"), config.CLOUD_SECRET, timeout=60)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            listed = client.call("GET", CC_NODES_ROUTE, None, NodeList).nodes
            if sum(1 for n in listed if n.state == "up") >= nodes:
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f"the CC did not report {nodes} nodes up within {timeout:.0f} s")


def wait_ready(config: CloudConfig, services: list[RunningService], nodes: int,
               timeout: float = 60.0) -> None:
    """Until the CLC's own capacity view of its zone (what RunInstances is admitted against)
    counts `nodes` nodes up and sized: before that, a launch can be refused with
    `InsufficientInstanceCapacity: only 0 fit` although the nodes are there."""
    if not {"clc", "cc"} <= {s.spec.name for s in services} or nodes < 1:
        return
    zone = config.zones[0]
    client = InternalClient(config.service_url("clc"), config.CLOUD_SECRET, timeout=10)
    deadline = time.monotonic() + timeout
    seen = "no answer"
    try:
        while True:
            for service in services:
                if service.process.poll() is not None:
                    raise RuntimeError(f"{service.spec.name} exited with code "
                                       f"{service.process.returncode} while the cloud started; "
                                       f"see logs/{service.spec.name}.log in the state directory")
            try:
                capacity = client.call("GET", CLC_ZONE_CAPACITY_ROUTE.format(zone=zone), None,
                                       ZoneCapacity)
                # Known to be up with a size (full ones count: a resumed cloud may be full).
                usable = [n.name for n in capacity.nodes if n.state == "up" and n.max.cores > 0]
                if len(usable) >= nodes:
                    return
                seen = f"{len(usable)} of {nodes} nodes usable"
            except (InternalCallError, httpx.HTTPError) as exc:
                seen = str(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cloud controller did not see the capacity of {zone}'s "
                                   f"{nodes} nodes within {timeout:.0f} s ({seen})")
            time.sleep(0.2)
    finally:
        client.close()

