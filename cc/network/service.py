"""The zone's network as the CC keeps it: the CLC's latest intent, the plan built from it,
and the driver that applies it. A new intent that plans the same as the last changes nothing
(the CLC sends the whole intent on every change and every reconcile round, level-triggered);
a different one is applied and its rule diff recorded in the trace of the request that caused
it, so a student sees which rules AuthorizeSecurityGroupIngress added."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path

from cc.network import plan as planner
from cc.network.drivers import LinuxDriver, NetworkDriver, RecordingDriver
from services.messages.network import NetworkIntent, NetworkPlanView, NetworkSettings
from services.tracing import TraceRecorder

log = logging.getLogger("eucasim.cc.network")


def make_driver(name: str, state_dir: Path, underlay: str) -> NetworkDriver:
    if name == "linux":
        return LinuxDriver(state_dir, underlay)
    if name == "plan":
        return RecordingDriver()
    raise ValueError(f"VNET_DRIVER={name}: expected plan or linux")


class ZoneNetwork:
    def __init__(self, driver: NetworkDriver, recorder: TraceRecorder) -> None:
        self.driver = driver
        self._recorder = recorder
        self._lock = threading.Lock()  # one apply at a time; never held across a remote call
        self.plan = planner.build(NetworkIntent(settings=NetworkSettings(), groups=[], instances=[]))
        self._applied_peers: dict[str, str] = {}

    def update(self, intent: NetworkIntent, peers: Mapping[str, str],
               request_id: str | None = None) -> NetworkPlanView:
        """Plan `intent`; apply it when it differs from what is applied (or the nodes' underlay
        addresses, `peers`, changed). Blocking: call it from a worker thread, never on the loop."""
        new = planner.build(intent)
        peers = dict(peers)
        with self._lock:
            same = (new.model_dump(exclude={"version", "diff"})
                    == self.plan.model_dump(exclude={"version", "diff"}))
            if same and peers == self._applied_peers:
                return self.plan
            changes = planner.diff(self.plan.iptables, new.iptables)
            done = self.driver.apply(new, intent.settings, peers)
            self.plan = new.model_copy(update={"version": self.plan.version + 1, "diff": changes})
            self._applied_peers = peers
        what = (f"network plan v{self.plan.version}: {len(new.networks)} network(s), "
                f"{len(new.leases)} address(es), {len(changes)} rule change(s)")
        for traced in dict.fromkeys([request_id or "cc-network", *intent.for_requests]):
            self._recorder.record("decided", what, request_id=traced,
                                  rules=changes, applied=done, driver=self.driver.name)
        log.info("%s", what)
        return self.plan
