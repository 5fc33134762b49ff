"""A real CLC process (boto3 as the client) against a stand-in CC on a real port: pushed
ZoneEvents move instances at once, RunInstances is admitted from the CLC's own view of the
zone's capacity and answered before the CC places anything, a refusal the CC still makes ends
the launch terminated with the reason, and a hung CC stalls neither the answer nor another
zone. The reconcile period is an hour, so nothing here happens by polling."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clc.models.images import Image
from services.internal import InternalCallError, InternalClient
from services.messages.cluster import (CLC_ZONE_EVENTS_ROUTE, ZoneCapacity, ZoneEvents,
                                       ZoneEventsAnswer)
from tests.instances.conftest import make_state
from tests.instances.stand_in_cc import StandInCC
from tests.support.clc import SECRET, RunningClc, error_of, running_clc
from tests.support.servers import running
from tests.support.waiting import wait_for

IMAGE = "emi-0000beef"


@dataclass
class Setup:
    cc: StandInCC
    clc: RunningClc
    ec2: Any

    def instances(self, **filters: Any) -> list[dict]:
        reservations = self.ec2.describe_instances(**filters)["Reservations"]
        return [i for r in reservations for i in r["Instances"]]

    def instance(self, instance_id: str) -> dict:
        return self.instances(InstanceIds=[instance_id])[0]

    def run(self, count: int = 1, **extra: Any) -> list[dict]:
        return list(self.ec2.run_instances(ImageId=IMAGE, MinCount=count, MaxCount=count,
                                           InstanceType="m1.small", **extra)["Instances"])

    def sent_to_cc(self, instance_id: str) -> bool:
        return any(instance_id == launch.instance_id for run in self.cc.runs for launch in run.instances)


def _with_image(home: Path) -> None:
    """The CLC's database, bootstrapped, with one public machine image (simulated: no bundle)."""
    state = make_state(home)
    with state.db.session() as session:
        session.add(Image(id=IMAGE, account_id=state.account_id, kind="machine", name="stand-in",
                          location="images/stand-in.manifest.xml", is_public=True,
                          state="available"))
    state.db.engine.dispose()


def _setup(tmp_path: Path, cores: int) -> Iterator[Setup]:
    cc = StandInCC(SECRET, cores=cores)
    with running(cc.app) as cc_url:
        _with_image(tmp_path)
        try:
            with running_clc(tmp_path, CC_URL=cc_url, ZONES="zone-1 zone-2",
                             NC_POLLING_FREQUENCY=3600) as clc:
                yield Setup(cc, clc, clc.ec2())
        finally:
            cc.release.set()  # a hung placement must not outlive the test


@pytest.fixture
def roomy(tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(tmp_path, cores=8)


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(tmp_path, cores=2)


def test_a_pushed_event_moves_an_instance_to_running_at_once(roomy: Setup):
    instance = roomy.run()[0]
    assert instance["State"]["Name"] == "pending"
    wait_for(lambda: roomy.sent_to_cc(instance["InstanceId"]), what="the placement at the CC")
    roomy.cc.push([instance["InstanceId"]], "running")
    # The push is answered once the CLC has recorded it: no waiting, no reconcile round.
    assert roomy.instance(instance["InstanceId"])["State"]["Name"] == "running"
    roomy.cc.push([instance["InstanceId"]], "terminated")
    ended = roomy.instance(instance["InstanceId"])
    assert ended["State"]["Name"] == "terminated"
    assert ended["StateReason"]["Code"] == "Server.InternalError"
    assert "stopped on node node-1" in ended["StateReason"]["Message"]


def test_a_push_under_a_key_the_clc_never_gave_is_refused(roomy: Setup):
    instance_id = roomy.run()[0]["InstanceId"]
    wait_for(lambda: roomy.sent_to_cc(instance_id), what="the placement at the CC")
    with pytest.raises(InternalCallError) as refused:
        roomy.cc.push([instance_id], "running", key="zone-9")
    assert refused.value.status == 403
    assert roomy.instance(instance_id)["State"]["Name"] == "pending"


def test_run_instances_answers_while_the_cc_hangs_and_another_zone_goes_on(roomy: Setup):
    roomy.cc.hang.set()
    first = roomy.run()[0]
    assert first["State"]["Name"] == "pending"
    assert roomy.cc.hung.wait(20), "the placement never reached the stand-in CC"
    # zone-1's worker waits on the hung CC; the CLC still answers, in both zones.
    second = roomy.run()[0]
    other_zone = roomy.run(Placement={"AvailabilityZone": "zone-2"})[0]
    assert (second["State"]["Name"], other_zone["State"]["Name"]) == ("pending", "pending")
    wait_for(lambda: roomy.sent_to_cc(other_zone["InstanceId"]), what="zone-2's placement")
    assert not roomy.sent_to_cc(second["InstanceId"])  # queued behind zone-1's hung call
    # Ended before the CC ever saw it: terminated at once, and on the zone once placed there.
    ended = roomy.ec2.terminate_instances(InstanceIds=[second["InstanceId"]])["TerminatingInstances"]
    assert ended[0]["CurrentState"]["Name"] == "terminated"
    roomy.cc.release.set()
    wait_for(lambda: roomy.sent_to_cc(first["InstanceId"]) and roomy.sent_to_cc(second["InstanceId"]),
             what="zone-1's placements once the CC answers")
    wait_for(lambda: roomy.cc.instances[second["InstanceId"]].state == "terminated",
             what="the instance the user ended, ended on the zone too")
    assert roomy.instance(first["InstanceId"])["State"]["Name"] == "pending"


def test_min_count_beyond_the_view_is_refused_and_nothing_is_recorded(small: Setup):
    with pytest.raises(ClientError) as refused:
        small.run(3)
    assert error_of(refused) == (400, "InsufficientInstanceCapacity")
    assert "only 2 fit" in refused.value.response["Error"]["Message"]
    assert small.instances() == [] and small.cc.runs == []
    # MaxCount beyond the view: what fits is admitted, and the hold counts it at once.
    admitted = small.ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=3,
                                       InstanceType="m1.small")["Instances"]
    assert len(admitted) == 2
    with pytest.raises(ClientError) as full:
        small.run(1)
    assert error_of(full) == (400, "InsufficientInstanceCapacity")


def test_a_stale_view_ends_the_launch_terminated_with_the_reason_and_frees_its_addresses(
        roomy: Setup):
    roomy.cc.refuse = True
    refused = roomy.run()[0]
    assert refused["State"]["Name"] == "pending"

    def ended() -> dict | None:
        found = roomy.instance(refused["InstanceId"])
        return found if found["State"]["Name"] == "terminated" else None

    instance = wait_for(ended, what="the refused instance terminated")
    assert instance["StateReason"]["Code"] == "Server.InsufficientInstanceCapacity"
    assert "filled up meanwhile" in instance["StateReason"]["Message"]
    # Its addresses and its hold are free again: the next launch gets the same addresses.
    again = roomy.run()[0]
    assert (again["PrivateIpAddress"], again["PublicIpAddress"]) == (
        refused["PrivateIpAddress"], refused["PublicIpAddress"])


def test_a_capacity_view_the_clc_cannot_take_is_answered_stale(roomy: Setup):
    roomy.run()  # the CLC has subscribed and holds the zone's view
    wait_for(lambda: "zone-1" in roomy.cc.subscriptions, what="the CLC's subscription")
    held = roomy.cc.capacity()
    client = InternalClient(roomy.cc.subscriptions["zone-1"].url, SECRET)

    def stale(capacity: ZoneCapacity) -> bool | None:
        events = ZoneEvents(key="zone-1", zone="zone-1", instances=[], capacity=capacity)
        return client.call("POST", CLC_ZONE_EVENTS_ROUTE, events,
                           response=ZoneEventsAnswer).capacity_stale

    try:
        assert stale(ZoneCapacity(version=held.version + 10, nodes=held.nodes)) is False
        # A delta on the view held is taken; one on a view the CLC never held is not.
        assert stale(ZoneCapacity(version=held.version + 11, base=held.version + 10,
                                  nodes=held.nodes[:1])) is False
        assert stale(ZoneCapacity(version=held.version + 13, base=held.version + 12,
                                  nodes=held.nodes[:1])) is True
        # A whole view older than the one held (a push overtaken by a newer one).
        assert stale(ZoneCapacity(version=held.version + 5, nodes=held.nodes)) is True
    finally:
        client.close()
