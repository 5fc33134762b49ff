"""Where each zone's cluster controller and storage controller are: registered on a host of
their own (`eucasim register-cluster|register-sc`, kept in the CLC's database), or else where
the configuration says (CC_URL / SC_URL, this host when empty). Every CLC client of a zone's
services (clc/zone_service.py) and describe-services ask here.

Registering checks that a service of that type answers at the address, signed with this
cloud's secret, and (a CC) that it serves the zone named; a refusal registers nothing.
Deregistering gives the zone back to the configuration's address."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clc.models.zone_services import ZoneServiceRow
from clc.zones_client import ZoneError
from services.config import CloudConfig
from services.db import Database
from services.internal import InternalCallError, InternalClient
from services.messages.admin import (HEALTH_ROUTE, ServiceHealth, ZoneServiceSpec,
                                     ZoneServiceType, ZoneServiceView)
from services.messages.cluster import CC_NODES_ROUTE, NodeList

# The launcher's names of a zone's services, by Eucalyptus's component type.
SERVICE_OF: dict[str, str] = {"cluster": "cc", "storage": "sc"}
TITLE = {"cluster": "cluster controller", "storage": "storage controller"}
PROBE_TIMEOUT = 5.0
log = logging.getLogger("eucasim.clc.zone_directory")


class BadSpec(ValueError):
    pass


class Conflict(Exception):
    pass


class NotRegistered(LookupError):
    pass


@dataclass(frozen=True)
class Located:
    name: str
    url: str
    registered: bool


def _view(row: ZoneServiceRow) -> ZoneServiceView:
    return ZoneServiceView(type=row.type, name=row.name, zone=row.zone, host=row.host,  # type: ignore[arg-type]
                           port=row.port, url=f"http://{row.host}:{row.port}")


def split_host(text: str) -> tuple[str, int]:
    host, colon, port = text.strip().rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadSpec(f"'{text}' is not host:port (for example 10.0.0.2:8774)")
    return host.strip("[]"), int(port)


class ZoneDirectory:
    def __init__(self, config: CloudConfig, db: Database, transport: httpx.BaseTransport | None = None) -> None:
        # Told of each CC registered for a zone (the cloud's cluster.* properties go to it).
        self.on_cluster: Callable[[str], None] | None = None
        self._config = config
        self._db = db
        self._transport = transport
        self._lock = threading.Lock()
        # Read on every call to a zone's service: kept in memory, written through.
        with db.session() as session:
            self._rows = {(r.type, r.zone): _view(r) for r in session.scalars(select(ZoneServiceRow))}

    def locate(self, service: str, zone: str) -> Located:
        """The zone's `service` ("cc" or "sc"): its name and URL."""
        kind = next(k for k, s in SERVICE_OF.items() if s == service)
        found = self._rows.get((kind, zone))
        if found is not None:
            return Located(found.name, found.url, True)
        return Located(f"{service}-{zone}", self._config.service_url(service), False)

    def url(self, service: str, zone: str) -> str:
        return self.locate(service, zone).url

    def registered(self) -> list[ZoneServiceView]:
        return sorted(self._rows.values(), key=lambda v: (v.zone, v.type))

    def register(self, spec: ZoneServiceSpec) -> ZoneServiceView:
        if spec.zone not in self._config.zones:
            raise BadSpec(f"no zone '{spec.zone}' in this cloud (ZONES: {', '.join(self._config.zones)})")
        host, port = split_host(spec.host)
        url = f"http://{host}:{port}"
        with self._lock:
            for view in self._rows.values():
                if view.name == spec.name:
                    raise Conflict(f"a {view.type} named '{spec.name}' is registered already (zone {view.zone})")
            taken = self._rows.get((spec.type, spec.zone))
            if taken is not None:
                raise Conflict(f"zone {spec.zone} has its {TITLE[spec.type]} already: {taken.name} "
                               f"at {taken.host}:{taken.port}; deregister it first")
            # Asked outside the database, but under the lock: one registration at a time.
            self._probe(spec.type, spec.zone, url)
            row = ZoneServiceRow(name=spec.name, type=spec.type, zone=spec.zone, host=host, port=port)
            try:
                with self._db.session() as session:
                    session.add(row)
                    session.flush()
                    view = _view(row)
            except IntegrityError:
                raise Conflict(f"'{spec.name}' or zone {spec.zone}'s {TITLE[spec.type]} is registered already") from None
            self._rows[(spec.type, spec.zone)] = view
        if spec.type == "cluster" and self.on_cluster is not None:
            try:
                self.on_cluster(spec.zone)
            except ZoneError as exc:  # registered all the same; the log says what it lacks
                log.warning("the cluster controller %s of zone %s did not take the cloud's "
                            "cluster properties: %s", spec.name, spec.zone, exc)
        return view

    def deregister(self, kind: ZoneServiceType, name: str) -> ZoneServiceView:
        with self._lock:
            view = next((v for v in self._rows.values() if v.type == kind and v.name == name), None)
            if view is None:
                raise NotRegistered(f"no {TITLE.get(kind, kind)} named '{name}' is registered")
            with self._db.session() as session:
                row = session.get(ZoneServiceRow, name)
                if row is not None:
                    session.delete(row)
            del self._rows[(view.type, view.zone)]
            return view

    def _probe(self, kind: str, zone: str, url: str) -> None:
        """A service of `kind` answers at `url`, takes this cloud's signature and (a CC) serves
        `zone`; else BadSpec saying what was found instead."""
        title = TITLE[kind]
        try:
            with httpx.Client(timeout=PROBE_TIMEOUT, transport=self._transport) as http:
                health = ServiceHealth.model_validate_json(http.get(url + HEALTH_ROUTE).content)
        except (httpx.HTTPError, OSError) as exc:
            raise BadSpec(f"no {title} answers at {url}: {type(exc).__name__} {exc}") from None
        except ValidationError:
            raise BadSpec(f"what answers at {url} is not a eucasim service") from None
        if health.service != SERVICE_OF[kind]:
            raise BadSpec(f"the service at {url} is a {health.service}, not a {title}")
        if kind != "cluster":
            return
        client = InternalClient(url, self._config.CLOUD_SECRET, transport=self._transport,
                                timeout=PROBE_TIMEOUT)
        try:
            served = client.call("GET", CC_NODES_ROUTE, None, NodeList).zone
        except (InternalCallError, httpx.HTTPError, OSError) as exc:
            raise BadSpec(f"the {title} at {url} did not answer a signed call (is it of this "
                          f"cloud, with its CLOUD_SECRET?): {exc}") from None
        finally:
            client.close()
        if served != zone:
            raise BadSpec(f"the {title} at {url} serves zone {served}, not {zone} (its ZONES)")
