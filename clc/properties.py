"""Cloud properties, the way `euca-modify-property` worked: a few settings that may change
while the cloud runs, kept in the CLC's database (where they beat eucalyptus.conf, across
restarts) and applied at once, without restarting anything.

- `cluster.scheduling_policy`, `cluster.polling_period`: the CC's (SCHEDPOLICY,
  NC_POLLING_FREQUENCY), pushed to every zone's CC through its signed settings route before
  they are stored; a CC that does not take them leaves everything as it was.
- `cloud.vmstate.pending_timeout` (INSTANCE_PENDING_TIMEOUT), `cloud.network.public_ips`
  (VNET_PUBLICIPS): the CLC's own, set on its configuration object, which every part of the
  CLC reads at the moment it decides. A pool that would drop an address in use is refused.

Every refusal (an unknown name, a bad value, an address in use, a CC that did not answer)
changes nothing."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clc import addresses
from clc.models.properties import PropertyRow
from clc.zones_client import ZoneClient, ZoneError
from services.config import SCHED_POLICIES, CloudConfig
from services.db import Database
from services.messages.admin import PropertyView
from services.messages.cluster import ClusterSettings
from services.vnet import public_pool


class UnknownProperty(LookupError):
    pass


class BadValue(ValueError):
    pass


class InUse(Exception):
    """The change would take away something in use."""


class NotApplied(Exception):
    """A zone's CC did not take the change (it did not answer, or refused)."""


def _policy(raw: str) -> str:
    name = raw.strip().upper()
    if name not in SCHED_POLICIES:
        raise BadValue(f"'{raw}' is not a scheduling policy: one of {', '.join(SCHED_POLICIES)}")
    return name


def _seconds(low: float, high: float) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        try:
            value = float(raw)
        except ValueError:
            raise BadValue(f"'{raw}' is not a number of seconds") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise BadValue(f"{raw} is out of range: {low:g} to {high:g} seconds")
        return f"{value:g}"
    return parse


def _pool(raw: str) -> str:
    try:
        pool = public_pool(raw)
    except ValueError as exc:
        raise BadValue(f"'{raw}' is not an address pool (ranges a.b.c.d-a.b.c.e, single "
                       f"addresses or CIDRs, spaces or commas apart): {exc}") from None
    if not pool:
        raise BadValue("the public address pool may not be empty")
    return " ".join(raw.replace(",", " ").split())


@dataclass(frozen=True)
class Property:
    name: str
    key: str                       # the eucalyptus.conf key it overrides
    description: str
    parse: Callable[[str], str]    # the value as stored, or BadValue saying why not
    cluster_field: str | None = None   # the ClusterSettings field, for the CC's properties


PROPERTIES: dict[str, Property] = {p.name: p for p in (
    Property("cluster.scheduling_policy", "SCHEDPOLICY",
             "how each zone's CC places instances on its nodes", _policy, "scheduling_policy"),
    Property("cluster.polling_period", "NC_POLLING_FREQUENCY",
             "seconds between the CC's polls of its node controllers", _seconds(0.1, 3600),
             "polling_period"),
    Property("cloud.vmstate.pending_timeout", "INSTANCE_PENDING_TIMEOUT",
             "seconds an instance may stay pending before it fails", _seconds(1, 86400)),
    Property("cloud.network.public_ips", "VNET_PUBLICIPS",
             "the public address pool (elastic and dynamic addresses)", _pool),
)}


def _config_value(config: CloudConfig, key: str) -> str:
    value = getattr(config, key)
    return f"{value:g}" if isinstance(value, float) else str(value)


class Properties:
    def __init__(self, config: CloudConfig, db: Database, zones: ZoneClient) -> None:
        self._config = config
        self._db = db
        self._zones = zones
        # What eucalyptus.conf says, before any stored value is laid over it.
        self._defaults = {p.name: _config_value(config, p.key) for p in PROPERTIES.values()}

    def load(self) -> None:
        """At start: lay the stored values over the configuration. The CC keeps its own copy
        of the cluster.* ones (cc/cluster.py), so a CC restart does not need the CLC."""
        with self._db.session() as session:
            for row in session.scalars(select(PropertyRow)):
                prop = PROPERTIES.get(row.name)
                if prop is not None:
                    self._set_config(prop, row.value)

    def push_to_zone(self, zone: str) -> None:
        """Give a zone's newly registered CC the cluster.* values set so far (it has only its
        own configuration's). Raises ZoneError when it does not take them."""
        with self._db.session() as session:
            stored = {r.name: r.value for r in session.scalars(select(PropertyRow))}
        wanted = {p.cluster_field: stored[p.name] for p in PROPERTIES.values()
                  if p.cluster_field is not None and p.name in stored}
        if wanted:
            self._zones.change_settings(zone, ClusterSettings.model_validate(wanted))

    def describe(self, name: str | None = None) -> list[PropertyView]:
        props = [self._find(name)] if name else sorted(PROPERTIES.values(), key=lambda p: p.name)
        with self._db.session() as session:
            stored = {r.name: r.value for r in session.scalars(select(PropertyRow))}
        return [PropertyView(name=p.name, value=stored.get(p.name, self._defaults[p.name]),
                             description=p.description, default=self._defaults[p.name],
                             stored=p.name in stored) for p in props]

    def set(self, name: str, raw: str) -> PropertyView:
        prop = self._find(name)
        value = prop.parse(raw)
        if prop.cluster_field is not None:
            self._push(prop, value)
            with self._db.session() as session:
                self._store(session, prop, value)
        elif prop.name == "cloud.network.public_ips":
            # Under the address lock: no launch or AllocateAddress takes an address between
            # the check and the change.
            with addresses.LOCK, self._db.session() as session:
                self._check_pool(session, value)
                self._store(session, prop, value)
                session.commit()
                self._set_config(prop, value)
        else:
            with self._db.session() as session:
                self._store(session, prop, value)
            self._set_config(prop, value)
        return self.describe(name)[0]

    # -- inside --------------------------------------------------------------------------------

    def _find(self, name: str) -> Property:
        prop = PROPERTIES.get(name)
        if prop is None:
            raise UnknownProperty(f"no property '{name}' (the properties: {', '.join(sorted(PROPERTIES))})")
        return prop

    def _set_config(self, prop: Property, value: str) -> None:
        setattr(self._config, prop.key, float(value) if isinstance(getattr(self._config, prop.key), float)
                else value)

    @staticmethod
    def _store(session: Session, prop: Property, value: str) -> None:
        row = session.get(PropertyRow, prop.name)
        if row is None:
            session.add(PropertyRow(name=prop.name, value=value))
        else:
            row.value = value

    def _check_pool(self, session: Session, value: str) -> None:
        pool = set(public_pool(value))
        dropped = sorted(addresses.taken(session) - pool)
        if dropped:
            shown = ", ".join(dropped[:10]) + (" …" if len(dropped) > 10 else "")
            raise InUse(f"the new pool leaves out {len(dropped)} address(es) in use ({shown}): "
                        f"release them, or end their instances, first")

    def _push(self, prop: Property, value: str) -> None:
        """Every zone's CC takes the value, or none keeps it: those that took it get the old
        value back when a later one fails."""
        assert prop.cluster_field is not None
        old = self.describe(prop.name)[0].value
        done: list[str] = []
        for zone in self._config.zones:
            try:
                self._zones.change_settings(zone, ClusterSettings(**{prop.cluster_field: value}))
            except ZoneError as exc:
                for taken in done:
                    try:
                        self._zones.change_settings(taken, ClusterSettings(**{prop.cluster_field: old}))
                    except ZoneError:
                        pass  # it keeps the new value; the error below says the change failed
                raise NotApplied(f"the cluster controller of zone {zone} did not take "
                                 f"{prop.name}={value}: {exc.message}") from None
            done.append(zone)
        # The CLC's copy, for whatever reads it here (never the CC's value itself).
        self._set_config(prop, value)
