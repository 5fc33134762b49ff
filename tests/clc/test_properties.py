"""Cloud properties (`eucasim property get|set`, the CLC's admin API): a real CLC and a real CC
(no nodes) as their own processes. Each property is applied at once: the CC's through its
settings route, the CLC's on its own configuration; every refusal changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from clc.models.properties import PropertyRow
from clc.properties import BadValue, Properties, UnknownProperty
from services.cli import app
from services.config import load_config
from services.db import Database
from services.internal import InternalCallError
from services.messages.admin import NewValue, PropertyList, PropertyView
from services.messages.cluster import CC_SETTINGS_ROUTE, ClusterSettings, NodeList
from tests.cc.cc_process import CcProcess, start_cc
from tests.support.clc import SECRET, RunningClc, running_clc

ROUTE = "/internal/admin/properties"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningClc, CcProcess]]:
    home = tmp_path_factory.mktemp("properties")
    cc = start_cc(home / "cc", SECRET, NODES="", SCHEDPOLICY="ROUNDROBIN", NC_POLLING_FREQUENCY="6")
    try:
        with running_clc(home / "clc", CC_URL=cc.url, VNET_PUBLICIPS="10.77.0.1-10.77.0.8") as clc:
            yield clc, cc
    finally:
        cc.stop()


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


def test_a_cc_that_does_not_answer_leaves_the_policy_as_it_was(cloud) -> None:
    clc, cc = cloud
    policy = values(clc)["cluster.scheduling_policy"]
    cc.stop()
    status, code, message = refused(clc, "cluster.scheduling_policy", "POWERSAVE")
    assert (status, code) == (503, "Unavailable") and "zone-1" in message
    assert values(clc)["cluster.scheduling_policy"] == policy


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
