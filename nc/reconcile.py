"""Make the hypervisor and the NC's records agree. On start: a domain that still runs is adopted; a
record whose domain is gone is restarted if it should run (the test driver forgets every
domain when its process ends, which is what a host reboot looks like) or reported with a
reason; an instance left half-launched is launched again; one left half-terminated is finished.
While running, `watch` notices domains that died under a running instance.

Level-triggered and idempotent: running it twice does no harm."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from nc.booter import InstanceBooter
from nc.hypervisor import Hypervisor, HypervisorError, OurDomain
from nc.instances import InstanceManager
from services.messages.node import RunInstance


@dataclass
class Summary:
    adopted: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)


def _request_from_domain(domain: OurDomain) -> RunInstance | None:
    try:
        return RunInstance.model_validate_json(domain.metadata.get("request", ""))
    except ValidationError:
        return None


def reconcile_at_start(manager: InstanceManager, hypervisor: Hypervisor) -> Summary:
    summary = Summary()
    domains = {d.name: d for d in hypervisor.list_ours()}
    for record in manager.live_records():
        request = manager.request_of(record)
        domain = domains.pop(record.instance_id, None)
        if record.state == "pending":
            manager.resume(request)
            summary.resumed.append(record.instance_id)
        elif record.state == "shutting-down":
            manager.finish_teardown(request)
            summary.cleaned.append(record.instance_id)
        elif domain is not None and domain.state == "running":
            manager.note(request, "NC restarted; domain still running, adopted")
            summary.adopted.append(record.instance_id)
        else:
            why = ("domain was shut off while the NC was down; starting it again" if domain is not None
                   else "domain gone after the NC restarted (host reboot); defining and starting it again")
            manager.restart(request, why)
            summary.restarted.append(record.instance_id)
    for name, domain in domains.items():
        request = _request_from_domain(domain)
        state = manager.state_of(name)
        if state == "terminated":
            # Terminated here but the domain survived (crash mid-teardown): finish the job.
            try:
                hypervisor.destroy(name)
                hypervisor.undefine(name)
            except HypervisorError:
                pass
            summary.cleaned.append(name)
        elif state is None and request is not None and domain.state == "running":
            manager.adopt(request)
            manager.note(request, "running domain found without a record; adopted")
            summary.adopted.append(name)
    return summary


def watch(manager: InstanceManager, hypervisor: Hypervisor, booter: InstanceBooter) -> list[str]:
    """One pass of the running check: a running instance whose domain stopped or vanished
    while the NC was up is terminated with a reason (instance-store instances cannot stop)."""
    changed = []
    for record in manager.live_records():
        if record.state != "running" or manager.is_preparing(record.instance_id):
            continue    # a launch or restart in flight owns the domain for now
        try:
            state = hypervisor.state(record.instance_id)
        except HypervisorError:
            continue
        if state in ("running", "paused", "other"):
            continue
        request = manager.request_of(record)
        what = {"absent": "vanished from the hypervisor",
                "crashed": "crashed: its hypervisor process ended (killed or died)"}.get(state, f"is {state}")
        manager.lost(request, f"the instance's domain {what}")
        try:
            booter.teardown(request, keep_console=True)
        except HypervisorError:
            pass
        changed.append(record.instance_id)
    return changed
