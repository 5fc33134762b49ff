"""The admin's view of a running cloud, against a real CLC of two zones, zone-1's CC where the
configuration says, and a second CC and an SC (each its own process on its own port) for
zone-2, all without nodes; one set of processes for the module.

- Cloud properties (`eucasim property get|set`): each applied at once, the CC's through its
  settings route, the CLC's on its own configuration; every refusal changes nothing.
- A zone's services on hosts of their own (`eucasim register-cluster|register-sc`, and
  deregister): the CLC's calls for zone-2 then go to them, describe-services lists them, and
  `eucasim status` shows zone-2's CC with its nodes beside zone-1's."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import httpx
import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from clc.models.properties import PropertyRow
from clc.properties import BadValue, Properties, UnknownProperty
from clc.zone_directory import ZoneDirectory
from services.cli import app
from services.config import load_config
from services.db import Database
from services.internal import InternalCallError, InternalClient
from services.messages.admin import (NewValue, PropertyList, PropertyView, ServiceList,
                                     ZoneServiceList, ZoneServiceSpec, ZoneServiceView)
from services.messages.cluster import (CC_NODE_ROUTE, CC_NODES_ROUTE, CC_SETTINGS_ROUTE,
                                       ClusterSettings, NodeInfo, NodeList, RegisterNode)
from services.messages.identity import AccessKeyInfo
from services.messages.storage import SC_VOLUMES_ROUTE, VolumeList
from tests.cc.cc_process import CcProcess, start_cc
from tests.sc.process import ScProcess, Walrus, sc_process
from tests.support.clc import SECRET, RunningClc, running_clc

ROUTE = "/internal/admin/properties"
ZONE_SERVICES = "/internal/admin/zone-services"
runner = CliRunner()


@dataclass
class Zones:
    clc: RunningClc
    cc1: CcProcess
    cc2: CcProcess
    sc2: ScProcess

    def eucasim(self, *args: str, ok: bool = True, **settings: str) -> Any:
        env = {"CLOUD_SECRET": SECRET, "CLC_PORT": str(self.clc.config.CLC_PORT), "COLUMNS": "200",
               "EUCASIM_HOME": str(self.clc.config.EUCASIM_HOME), **settings}
        result = runner.invoke(app, list(args), env=env)
        assert (result.exit_code == 0) == ok, result.output
        return result

    def admin(self, method: str, body: Any = None, answer: type = ZoneServiceView, path: str = ZONE_SERVICES) -> Any:
        client = self.clc.admin_client()
        try:
            return client.call(method, path, body, answer)
        finally:
            client.close()

    def refused(self, spec: ZoneServiceSpec) -> tuple[int, str]:
        with pytest.raises(InternalCallError) as caught:
            self.admin("POST", spec)
        return caught.value.status, caught.value.detail["message"]


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zones]:
    home = tmp_path_factory.mktemp("admin")
    cc1 = start_cc(home / "cc1", SECRET, wait=False, NODES="", ZONES="zone-1",
                   SCHEDPOLICY="ROUNDROBIN", NC_POLLING_FREQUENCY="6")
    cc2 = start_cc(home / "cc2", SECRET, wait=False, NODES="", ZONES="zone-2")
    # The SC reaches Walrus only for snapshots, which these tests do not take.
    nowhere = Walrus(url="http://127.0.0.1:1", pid=0, admin=AccessKeyInfo(
        access_key="AKIA" + secrets.token_hex(8).upper(), secret_key="unused", account_id="000000000001",
        account_name="eucalyptus", user_name="admin", is_admin=True))
    try:
        with ExitStack() as stack, ThreadPoolExecutor(max_workers=1) as pool:
            # The SC and the CLC start side by side: each spends seconds on its imports.
            starting = pool.submit(stack.enter_context, sc_process(
                home / "sc2", nowhere, CLOUD_SECRET=SECRET, ZONES="zone-2", SC_MAX_STORAGE="4"))
            # zone-1's SC is nowhere: nothing here asks it, and no stray SC on 8776 is asked instead.
            clc = stack.enter_context(running_clc(
                home / "clc", ZONES="zone-1 zone-2", CC_URL=cc1.url, SC_URL="http://127.0.0.1:1",
                VNET_PUBLICIPS="10.77.0.1-10.77.0.8"))
            sc2 = starting.result()
            cc1.wait_healthy()
            cc2.wait_healthy()
            yield Zones(clc, cc1, cc2, sc2)
    finally:
        cc1.stop()
        cc2.stop()


@pytest.fixture(scope="module")
def cloud(zones: Zones) -> tuple[RunningClc, CcProcess]:
    return zones.clc, zones.cc1


def call(clc: RunningClc, method: str, path: str, body: Any = None, answer: type = PropertyView) -> Any:
    client = clc.admin_client()
    try:
        return client.call(method, path, body, answer)
    finally:
        client.close()


def put(clc: RunningClc, name: str, value: str) -> PropertyView:
    return call(clc, "PUT", f"{ROUTE}/{name}", NewValue(value=value))


def refused(clc: RunningClc, name: str, value: str) -> tuple[int, str, str]:
    with pytest.raises(InternalCallError) as caught:
        put(clc, name, value)
    detail = caught.value.detail
    return caught.value.status, detail["code"], detail["message"]


def values(clc: RunningClc) -> dict[str, str]:
    return {p.name: p.value for p in call(clc, "GET", ROUTE, answer=PropertyList).properties}


def cc_settings(cc: CcProcess) -> ClusterSettings:
    return cc.client.call("GET", CC_SETTINGS_ROUTE, None, ClusterSettings)


def test_properties_list_with_their_defaults(cloud) -> None:
    clc, _ = cloud
    listed = {p.name: p for p in call(clc, "GET", ROUTE, answer=PropertyList).properties}
    assert sorted(listed) == ["cloud.network.public_ips", "cloud.vmstate.pending_timeout",
                              "cluster.polling_period", "cluster.scheduling_policy"]
    assert listed["cloud.network.public_ips"].default == "10.77.0.1-10.77.0.8"
    assert listed["cluster.scheduling_policy"].value == "ROUNDROBIN"
    assert not any(p.stored for p in listed.values())


def test_scheduling_policy_and_polling_period_reach_the_cc_at_once(cloud) -> None:
    clc, cc = cloud
    shown = put(clc, "cluster.scheduling_policy", "greedy")
    assert (shown.value, shown.stored, shown.default) == ("GREEDY", True, "ROUNDROBIN")
    assert cc_settings(cc).scheduling_policy == "GREEDY"
    assert cc.client.call("GET", "/internal/nodes", None, NodeList).policy == "GREEDY"
    put(clc, "cluster.polling_period", "0.5")
    assert cc_settings(cc) == ClusterSettings(scheduling_policy="GREEDY", polling_period=0.5)
    put(clc, "cluster.scheduling_policy", "ROUNDROBIN")
    assert cc_settings(cc).scheduling_policy == "ROUNDROBIN"
    # The CC keeps them for its next start, in its own database.
    kept = sa.create_engine(f"sqlite:///{cc.home}/cc.db")
    try:
        with kept.connect() as connection:
            state = dict(connection.execute(sa.text("SELECT key, value FROM scheduler_state")).all())
    finally:
        kept.dispose()
    assert state["setting:scheduling_policy"] == "ROUNDROBIN" and state["setting:polling_period"] == "0.5"


def test_bad_names_and_values_are_refused_and_change_nothing(cloud) -> None:
    clc, cc = cloud
    before, cc_before = values(clc), cc_settings(cc)
    status, code, message = refused(clc, "cluster.no_such_thing", "1")
    assert (status, code) == (404, "InvalidProperty.NotFound") and "cluster.scheduling_policy" in message
    status, code, message = refused(clc, "cluster.scheduling_policy", "FASTEST")
    assert (status, code) == (400, "InvalidParameterValue") and "GREEDY" in message
    for name, bad in [("cluster.polling_period", "-1"), ("cluster.polling_period", "often"),
                      ("cloud.vmstate.pending_timeout", "nan"), ("cloud.network.public_ips", "10.1.1.9-10.1.1.2"),
                      ("cloud.network.public_ips", "not-an-address"), ("cloud.network.public_ips", " ")]:
        status, code, _ = refused(clc, name, bad)
        assert (status, code) == (400, "InvalidParameterValue"), (name, bad)
    # Admin-only: an unsigned caller is refused by the CLC and by the CC alike.
    unsigned = [httpx.put(f"{clc.url}{ROUTE}/cluster.scheduling_policy", json={"value": "GREEDY"}),
                httpx.put(f"{cc.url}{CC_SETTINGS_ROUTE}", json={"scheduling_policy": "GREEDY"}),
                httpx.post(f"{clc.url}{ZONE_SERVICES}", json={"type": "cluster", "name": "x",
                                                              "zone": "zone-1", "host": "127.0.0.1:1"})]
    assert [r.status_code for r in unsigned] == [403, 403, 403]
    assert values(clc) == before and cc_settings(cc) == cc_before


def test_the_pool_changes_allocate_address_at_once_and_keeps_addresses_in_use(cloud) -> None:
    clc, _ = cloud
    ec2 = clc.ec2()
    put(clc, "cloud.network.public_ips", "10.78.0.1, 10.78.0.2")
    first = ec2.allocate_address()
    second = ec2.allocate_address()
    assert {first["PublicIp"], second["PublicIp"]} == {"10.78.0.1", "10.78.0.2"}
    with pytest.raises(ClientError) as caught:
        ec2.allocate_address()
    assert caught.value.response["Error"]["Code"] == "AddressLimitExceeded"

    status, code, message = refused(clc, "cloud.network.public_ips", "10.78.0.2-10.78.0.9")
    assert (status, code) == (409, "InvalidAddress.InUse") and "10.78.0.1" in message
    assert values(clc)["cloud.network.public_ips"] == "10.78.0.1 10.78.0.2"

    ec2.release_address(AllocationId=first["AllocationId"])
    put(clc, "cloud.network.public_ips", "10.78.0.2-10.78.0.3")
    assert ec2.allocate_address()["PublicIp"] == "10.78.0.3"


def test_the_command_line(cloud) -> None:
    clc, _ = cloud
    env = {"CLOUD_SECRET": SECRET, "CLC_PORT": str(clc.config.CLC_PORT), "COLUMNS": "200",
           "EUCASIM_HOME": str(clc.config.EUCASIM_HOME)}
    runner = CliRunner()
    done = runner.invoke(app, ["property", "set", "cloud.vmstate.pending_timeout", "120"], env=env)
    assert done.exit_code == 0, done.output
    assert "PROPERTY\tcloud.vmstate.pending_timeout\t120" in done.output
    shown = runner.invoke(app, ["property", "get"], env=env)
    assert shown.exit_code == 0 and "cluster.polling_period" in shown.output and "120" in shown.output
    bad = runner.invoke(app, ["property", "set", "cloud.vmstate.pending_timeout", "soon"], env=env)
    assert bad.exit_code == 1 and "not a number of seconds" in bad.output


def test_stored_values_beat_the_configuration_at_start(tmp_path: Path) -> None:
    """In process: what `property set` stored is laid over eucalyptus.conf when the CLC starts."""
    from clc.app import MIGRATIONS

    db = Database(f"sqlite:///{tmp_path}/clc.db")
    db.upgrade(MIGRATIONS)
    with db.session() as session:
        session.add(PropertyRow(name="cloud.vmstate.pending_timeout", value="42"))
        session.add(PropertyRow(name="cloud.network.public_ips", value="10.5.0.1"))
        session.add(PropertyRow(name="retired.property", value="x"))  # a later version's, ignored
    config = load_config(EUCASIM_HOME=tmp_path, INSTANCE_PENDING_TIMEOUT=600)
    properties = Properties(config, db, zones=None)  # type: ignore[arg-type]
    properties.load()
    assert config.INSTANCE_PENDING_TIMEOUT == 42.0 and config.VNET_PUBLICIPS == "10.5.0.1"
    view = properties.describe("cloud.vmstate.pending_timeout")[0]
    assert (view.value, view.default, view.stored) == ("42", "600", True)
    with pytest.raises(UnknownProperty):
        properties.set("retired.property", "y")
    with pytest.raises(BadValue):
        properties.set("cloud.vmstate.pending_timeout", "0")
    db.engine.dispose()


# -- a zone's services on hosts of their own ----------------------------------------------

def host_of(url: str) -> str:
    return urlparse(url).netloc


def services(zones: Zones) -> dict[str, Any]:
    result = zones.eucasim("describe-services", "--json", ok=False)   # the CCs have no node up
    return {s.name: s for s in ServiceList.model_validate(json.loads(result.stdout)).services}


def test_registered_services_are_listed_and_kept(zones: Zones) -> None:
    shown = zones.eucasim("register-cluster", "cc-2", "-z", "zone-2", "-H", host_of(zones.cc2.url))
    assert shown.stdout.strip() == f"SERVICE\tcluster\tzone-2\tcc-2\t{host_of(zones.cc2.url)}"
    zones.eucasim("register-sc", "sc-2", "--zone", "zone-2", "--host", host_of(zones.sc2.url))
    # A newly registered CC is given the cloud's cluster.* properties set so far.
    assert cc_settings(zones.cc2) == ClusterSettings(scheduling_policy="ROUNDROBIN", polling_period=0.5)

    listed = services(zones)
    assert (listed["cc-2"].type, listed["cc-2"].zone, listed["cc-2"].url) == ("cluster", "zone-2", zones.cc2.url)
    assert listed["cc-2"].state == "NOTREADY" and listed["cc-2"].reason == "no node controller is up"
    assert (listed["sc-2"].type, listed["sc-2"].zone, listed["sc-2"].state) == ("storage", "zone-2", "ENABLED")
    assert listed["cc-zone-1"].url == zones.cc1.url and "cc-zone-2" not in listed

    # Kept in the CLC's database: a CLC starting on it finds them.
    db = Database(zones.clc.config.database_url("clc"))
    try:
        kept = ZoneDirectory(zones.clc.config, db)
        assert [(v.type, v.name, v.url) for v in kept.registered()] == [
            ("cluster", "cc-2", zones.cc2.url), ("storage", "sc-2", zones.sc2.url)]
        assert kept.url("cc", "zone-1") == zones.cc1.url
    finally:
        db.engine.dispose()


def test_the_clc_calls_zone_2s_registered_services(zones: Zones) -> None:
    zones.eucasim("property", "set", "cluster.scheduling_policy", "GREEDY")
    for cc in (zones.cc1, zones.cc2):
        assert cc.client.call("GET", CC_SETTINGS_ROUTE, None, ClusterSettings).scheduling_policy == "GREEDY"
    volume = zones.clc.ec2().create_volume(AvailabilityZone="zone-2", Size=1)["VolumeId"]
    sc2 = InternalClient(zones.sc2.url, SECRET)
    try:
        assert volume in [v.volume_id for v in sc2.call("GET", SC_VOLUMES_ROUTE, None, VolumeList).volumes]
    finally:
        sc2.close()


def test_status_shows_every_zones_cluster_controller_and_its_nodes(zones: Zones) -> None:
    # A node of zone-2's own CC; nothing answers at its address, so it is listed down.
    node = "http://127.0.0.1:9/node-z2"
    zones.cc2.client.call("POST", CC_NODES_ROUTE, RegisterNode(url=node), NodeInfo)
    try:
        # The command's own configuration names zone-1 alone: zone-2's CC is found through
        # the CLC's list of registered services.
        shown = " ".join(zones.eucasim("status", CC_URL=zones.cc1.url).stdout.split())
    finally:
        zones.cc2.client.call("DELETE", CC_NODE_ROUTE.format(name=quote(node, safe="")), None, NodeInfo)
    # rich wraps a table's title to the table's width: the words are compared, not the lines.
    assert "cc cc-2 (zone-2)" in shown      # the services table: its health too
    zone_1, zone_2 = shown.split("Nodes of zone-1 (", 1)[1].split("Nodes of zone-2 (", 1)
    assert f"the configured CC at {zones.cc1.url})" in zone_1 and node not in zone_1
    assert f"cc-2 at {zones.cc2.url})" in zone_2 and node in zone_2
    assert "Instances in zone-1" in zone_1 and "Instances in zone-2" in zone_2


def test_bad_registrations_are_refused_and_change_nothing(zones: Zones) -> None:
    before = zones.admin("GET", answer=ZoneServiceList)
    cc1, cc2, sc2 = host_of(zones.cc1.url), host_of(zones.cc2.url), host_of(zones.sc2.url)
    cases = [
        (ZoneServiceSpec(type="cluster", name="cc-9", zone="zone-9", host=cc1), 400, "no zone 'zone-9'"),
        (ZoneServiceSpec(type="cluster", name="cc-9", zone="zone-1", host="127.0.0.1"), 400, "not host:port"),
        (ZoneServiceSpec(type="cluster", name="cc-9", zone="zone-1", host="127.0.0.1:1"), 400, "no cluster controller answers"),
        (ZoneServiceSpec(type="storage", name="sc-9", zone="zone-1", host=cc1), 400, "is a cc, not a storage controller"),
        (ZoneServiceSpec(type="cluster", name="cc-9", zone="zone-1", host=sc2), 400, "is a sc, not a cluster controller"),
        (ZoneServiceSpec(type="cluster", name="cc-9", zone="zone-1", host=cc2), 400, "serves zone zone-2, not zone-1"),
        (ZoneServiceSpec(type="cluster", name="cc-2", zone="zone-1", host=cc1), 409, "named 'cc-2' is registered already"),
        (ZoneServiceSpec(type="cluster", name="cc-3", zone="zone-2", host=cc2), 409, "zone zone-2 has its cluster controller already"),
    ]
    for spec, status, words in cases:
        got_status, message = zones.refused(spec)
        assert got_status == status and words in message, (spec, got_status, message)
    with pytest.raises(ValueError):
        ZoneServiceSpec(type="cluster", name="bad name!", zone="zone-1", host=cc1)
    missing = zones.eucasim("deregister-sc", "sc-9", ok=False)
    assert "no storage controller named 'sc-9'" in missing.output
    assert zones.admin("GET", answer=ZoneServiceList) == before


def test_deregistering_gives_the_zone_back_to_the_configured_services(zones: Zones) -> None:
    assert "deregistered cluster cc-2 of zone zone-2" in zones.eucasim("deregister-cluster", "cc-2").output
    zones.eucasim("deregister-sc", "sc-2")
    listed = services(zones)
    assert "cc-2" not in listed and "sc-2" not in listed
    assert listed["cc-zone-2"].url == zones.cc1.url and listed["sc-zone-2"].state == "BROKEN"
    assert zones.admin("GET", answer=ZoneServiceList).services == []


# -- last: it stops zone-1's CC ----------------------------------------------------------------

def test_a_cc_that_does_not_answer_leaves_the_policy_as_it_was(cloud) -> None:
    clc, cc = cloud
    policy = values(clc)["cluster.scheduling_policy"]
    cc.stop()
    status, code, message = refused(clc, "cluster.scheduling_policy", "POWERSAVE")
    assert (status, code) == (503, "Unavailable") and "zone-1" in message
    assert values(clc)["cluster.scheduling_policy"] == policy
